"""Velocity rules, PIN keys, admin bearer tokens, log masking, and the alerts they raise.
May import config, metrics; the alert sinks use issuance.mailer.
"""

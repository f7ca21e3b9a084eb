"""The JSON admin API on the HTTP listener (twisted.web resources). May import config,
ledger, security, issuance, backoffice, metrics.
"""

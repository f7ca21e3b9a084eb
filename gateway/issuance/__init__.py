"""Making cards: CSV import batches, real-time issuing, derived draws, and mail.
May import config, ledger, security.
"""

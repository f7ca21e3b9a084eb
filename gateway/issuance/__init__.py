"""Making cards: CSV import batches, real-time issuing, derived draws, mail, and the card
printer's files and proof sheets (artwork, printfile, proofsheet, symbols).
May import config, ledger, security.
"""

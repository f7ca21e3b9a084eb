"""The member page for card holders, under `/m/` on the admin HTTP listener (docs/members.md):
sign in with a card's number and PIN (the tills' own PIN try counter) or with an e-mailed code,
see the card's value, history and codes, register the card, report it lost. Branded per
program. Imports config, ledger, security, issuance, backoffice and the shared web modules
(gateway/web/site.py, sessions.py), never the operators' portal; only app.py imports it.
"""

"""The web portal for operators and staff, under `/ui/` on the admin HTTP listener (docs/portal.md):
two-step login (password, then TOTP or an e-mailed code), sessions in Redis, CSRF tokens, roles,
and the pages (server-rendered Jinja2, plain forms; the camera QR scanner is the one script).
May import config, ledger, security, issuance, admin and backoffice; nothing but the wiring
(app.py) and the CLI imports it.
"""

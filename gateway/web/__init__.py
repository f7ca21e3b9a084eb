"""The web pages, server-rendered (Jinja2): the portal for operators and staff (portal/, under
`/ui/`), and later the member page for card holders (`/m/`). Pages never call a Lua script
except through the Processor or the card services the CLI and admin API use. May import config,
ledger, security, issuance, backoffice, admin, metrics; nothing imports web/ but app.py and
the CLI.
"""

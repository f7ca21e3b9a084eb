"""`tillgate tokens list|create|enable|disable`: admin HTTP bearer tokens made at run time
(docs/security.md, gateway/security/tokenstore.py).

Works on the store of the config, whether or not a gateway is running; a running gateway sees
a change from its next request on (no restart). `create` prints the secret once: it is not kept.
The config's own tokens are listed too, but change only in the config.
"""

from __future__ import annotations

import json

from gateway.cli.config import load_or_report
from gateway.cli.main import fail
from gateway.cli.storecommand import run_command
from gateway.config.model import Config
from gateway.config.security import SCOPES
from gateway.ledger.storeconnect import store_session
from gateway.security import tokenstore


def register(subparsers, common) -> None:
    parser = subparsers.add_parser("tokens",
                                   help="list, create, enable or disable admin API tokens")
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("list", parents=[common], help="every token (never a secret), as JSON")
    create = actions.add_parser("create", parents=[common],
                                help="a new token; its secret is printed once")
    create.add_argument("--name", required=True, help="what the token is for (1-64 characters)")
    create.add_argument("--scope", action="append", required=True, dest="scopes",
                        metavar="SCOPE", help=f"repeat for each: {', '.join(SCOPES)}")
    create.add_argument("--expires", default=None,
                        help="ISO 8601 date-time with a zone, e.g. 2027-01-31T18:00:00Z")
    for action in ("enable", "disable"):
        switch = actions.add_parser(action, parents=[common], help=f"{action} a token by id")
        switch.add_argument("id", help="the token's id (from list or create)")
    parser.set_defaults(func=run_tokens)


def run_tokens(args) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 2
    try:
        expires = (tokenstore.parse_expiry(args.expires)
                   if getattr(args, "expires", None) is not None else None)
    except tokenstore.TokenProblem as e:
        return fail(str(e))
    return run_command(_act(config, args, expires))


async def _act(config: Config, args, expires: int | None) -> int:
    async with store_session(config) as store:
        client = store.client
        try:
            if args.action == "list":
                out: dict = {"tokens": await tokenstore.listing(client, config.security.tokens)}
            elif args.action == "create":
                token, secret = await tokenstore.create(
                    client, args.name, args.scopes, SCOPES,
                    taken_ids=[t.id for t in config.security.tokens], expires=expires)
                out = {"token": token.as_dict(), "secret": secret}
            else:
                token = await tokenstore.switch(client, args.id, args.action == "enable",
                                                config.security.tokens)
                out = {"token": token.as_dict()}
        except tokenstore.TokenProblem as e:
            return fail(str(e))
    print(json.dumps(out, indent=1 if args.action == "list" else None))
    return 0

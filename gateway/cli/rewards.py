"""`tillgate rewards list|add|update|disable|claims|void-claim`: a loyalty program's rewards
catalogue at run time (gateway/ledger/rewards.py, docs/ledger.md "Rewards").

Works on the store of the config, whether or not a gateway is running; a running gateway's
next claim sees the change (claims read the reward in their script).
"""

from __future__ import annotations

import getpass
import json
from typing import Any

from gateway.cli.config import load_or_report
from gateway.cli.main import fail
from gateway.cli.storecommand import run_command
from gateway.config.model import Config, Program
from gateway.ledger import rewards
from gateway.ledger.storeconnect import store_session


def register(subparsers, common) -> None:
    parser = subparsers.add_parser("rewards", parents=[common],
                                   help="the loyalty rewards catalogue and its claims")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", parents=[common], help="a program's rewards")
    listing.add_argument("--program", required=True)
    for name, helptext in (("add", "a new reward"), ("update", "change a reward")):
        p = actions.add_parser(name, parents=[common], help=helptext)
        p.add_argument("--program", required=True)
        p.add_argument("id")
        p.add_argument("--name")
        p.add_argument("--points", help="cost in points")
        p.add_argument("--stock", help="items left, or 'unlimited'")
        p.add_argument("--from", dest="valid_from", help="claimable from YYYY-MM-DD ('' = open)")
        p.add_argument("--to", dest="valid_to", help="claimable until YYYY-MM-DD ('' = open)")
        p.add_argument("--clubs", help="comma-separated merchant ids ('' = every merchant)")
        p.add_argument("--tier", help="tier required ('' = none)")
        if name == "update":
            p.add_argument("--enable", action="store_true", help="enable a disabled reward")
    disable = actions.add_parser("disable", parents=[common], help="stop claims of a reward")
    disable.add_argument("--program", required=True)
    disable.add_argument("id")
    claims = actions.add_parser("claims", parents=[common], help="claims in a period")
    claims.add_argument("--program", required=True)
    claims.add_argument("--from", dest="since", required=True, help="YYYY-MM-DD (UTC)")
    claims.add_argument("--to", dest="until", required=True, help="YYYY-MM-DD (UTC), inclusive")
    void = actions.add_parser("void-claim", parents=[common],
                              help="undo a claim: points and stock come back")
    void.add_argument("--program", required=True)
    void.add_argument("key", help="the claim's request key (`rewards claims` lists it)")
    parser.set_defaults(func=run_rewards)


OPTIONS = ("name", "points", "stock", "valid_from", "valid_to", "clubs", "tier")


def run_rewards(args) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 2
    try:
        program = rewards.loyalty_program(config, args.program)
        if args.action == "list":
            return run_command(_list(config, program))
        if args.action == "claims":
            since, until = rewards.claims_period(args.since, args.until, ("--from", "--to"))
            return run_command(_claims(config, program, since, until))
        if args.action == "void-claim":
            return run_command(_void(config, program, args.key))
        given: dict[str, Any] = {k: getattr(args, k) for k in OPTIONS
                                 if getattr(args, k, None) is not None}
        if args.action == "disable":
            given = {"enabled": False}
        elif args.action == "update" and args.enable:
            given["enabled"] = True
        if args.action == "add":
            rewards.new_reward(config, program, args.id, given)  # bad input before the store
        return run_command(_change(config, program, args.action, args.id, given))
    except rewards.RewardError as e:
        return fail(str(e))


async def _change(config: Config, program: Program, action: str, rid: str,
                  given: dict[str, Any]) -> int:
    async with store_session(config) as store:
        current = await rewards.get_reward(store, program, rid)
        if action == "add":
            if current is not None:
                return fail(f"reward {rid!r} exists in program {program.id!r}: use update")
            reward = rewards.new_reward(config, program, rid, given)
        elif current is None:
            return fail(f"no reward {rid!r} in program {program.id!r}")
        else:
            try:
                reward = rewards.changed(config, current, given)
            except rewards.RewardError as e:
                return fail(str(e))
        # a config reward copied into Redis keeps its (unlimited) stock unless one is given
        await rewards.put_reward(store, reward, "cli:" + getpass.getuser(),
                                 set_stock=action == "add" or "stock" in given)
        print(json.dumps((await rewards.get_reward(store, program, rid) or reward).as_dict()))
    return 0


async def _list(config: Config, program: Program) -> int:
    async with store_session(config) as store:
        found = await rewards.list_rewards(store, program)
    for reward in found:
        print(json.dumps(reward.as_dict()))
    return 0


async def _claims(config: Config, program: Program, since: float, until: float) -> int:
    async with store_session(config) as store:
        found = await rewards.list_claims(store, program.id, since, until - 0.001)
    for claim in found:
        print(json.dumps(claim.as_dict()))
    return 0


async def _void(config: Config, program: Program, key: str) -> int:
    async with store_session(config) as store:
        res = await rewards.void_claim(store, program, key, "cli:" + getpass.getuser())
    if res is None:
        return fail(f"no claim with key {key!r} in program {program.id!r}")
    print(json.dumps({"rc": res["rc"], "points": res.get("pts"), "message": res.get("msg")}))
    return 0 if res["rc"] == "00" else 1

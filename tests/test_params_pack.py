"""A card script's parameters as packed for Redis (gateway/ledger/params.py `params_packer`): a
loyalty program's fixed fields, made once per program, are in each request's map, which must be
the very map the scripts read (_prelude.lua `a`)."""

from __future__ import annotations

import time
import tomllib

import msgpack

from gateway.config.model import parse_config
from gateway.ledger import loyalty
from gateway.ledger.params import ScriptParams, params_packer
from gateway.ledger.resellers import ResellerRules
from protocols.model import Op, Request


def _config():
    with open("config/tillgate.toml", "rb") as f:
        data = tomllib.load(f)
    data["programs"]["loyalty"]["convert_points"] = 500  # every fixed field there is
    data["programs"]["loyalty"]["convert_value"] = 500
    return parse_config(data, "t")


def _request(op: Op, **kw) -> Request:
    return Request(op=op, terminal="TILL0001", merchant="STORE0000000001", key="k",
                   card="8800000001", **kw)


def test_the_fixed_fields_are_in_the_packed_map_and_only_once():
    config = _config()
    program = config.programs["loyalty"]
    params = ScriptParams(config, ResellerRules(config), time.time)
    pack = params_packer()
    p = params.build(_request(Op.EARN, amount=1000), program, "earn", "8800000001")
    fixed = loyalty.static_params(program)
    assert set(fixed) == {"lv", "tn", "tt", "trd", "tw", "cvp", "cvv"}
    assert {k: p[k] for k in fixed} == fixed
    p["xk"] = 6  # what the processor adds after build
    assert msgpack.unpackb(pack(p)) == p
    # the fixed lists are the program's, shared by every request, never changed by one
    again = params.build(_request(Op.EARN, amount=2000), program, "earn", "8800000001")
    assert again["tn"] is p["tn"] and again["tn"] == ["BRONZE", "SILVER"]
    # a program without lots or tiers: none of them
    gift = params.build(_request(Op.REDEEM, amount=100), config.programs["gift"], "redeem",
                        "6039540000000001")
    assert not set(fixed) & set(gift) and pack(gift) == msgpack.packb(gift)

"""A card script's parameters as packed for Redis (gateway/ledger/params.py `params_packer`): a
loyalty program's fixed fields are packed once and spliced into each request's map, which must
be the very map the scripts read (_prelude.lua `a`)."""

from __future__ import annotations

import time
import tomllib

import msgpack
import pytest

from gateway.config.model import parse_config
from gateway.ledger import loyalty
from gateway.ledger.params import ScriptParams, WithFixed, params_packer
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
    assert not set(fixed) & set(p)  # not in the dict: packed once, at start
    p["xk"] = 6  # what the processor adds after build
    got = msgpack.unpackb(pack(p))
    assert got == {**p, **fixed}
    assert len(got) == len(p) + len(fixed)
    # a program without lots or tiers: a plain map, as msgpack packs it
    gift = params.build(_request(Op.REDEEM, amount=100), config.programs["gift"], "redeem",
                        "6039540000000001")
    assert type(gift) is dict and pack(gift) == msgpack.packb(gift)


@pytest.mark.parametrize("own", [0, 3, 15, 16, 40])
def test_either_map_header_is_spliced(own):
    """fixmap (up to 15 pairs) and map 16, for the request's part and for the whole."""
    p = WithFixed({f"k{i}": i for i in range(own)})
    p.fixed = (3, msgpack.packb({"lv": 365, "tn": ["BRONZE", "SILVER"], "tw": 365})[1:])
    assert msgpack.unpackb(params_packer()(p)) == {
        **{f"k{i}": i for i in range(own)}, "lv": 365, "tn": ["BRONZE", "SILVER"], "tw": 365}

"""Key names of the rewards catalogue (gateway/ledger/rewards.py): apart from it so that the card
module (gateway/ledger/cards.py, an operator's rollback of a claim) needs no more than these."""

from __future__ import annotations


def reward_key(program: str, reward: str) -> str:
    return f"{{rw:{program}}}:{reward}"


def claims_key(program: str) -> str:
    return f"{{rw:{program}}}:cl"


def index_key(program: str) -> str:
    return f"{{rw:{program}}}:ids"


def claim_keys(program: str, reward: str) -> list[str]:
    """The reward's keys a claim or its undo is given after the card's (a.rwk, a.rwk + 1)."""
    return [reward_key(program, reward), claims_key(program)]


def keys_of(stored_reward_key: str) -> list[str]:
    """The claim keys again from the reward key a claim's record keeps (`rwk`)."""
    tag = stored_reward_key[:stored_reward_key.index("}") + 1]
    return [stored_reward_key, tag + ":cl"]


# A Redis Cluster's split claim (gateway/ledger/rewardsplit.py), in the reward's slot too:

def reservation_key(program: str, request_key: str) -> str:
    """The item a claim reserved before its card script ran (reward_reserve.lua)."""
    return f"{{rw:{program}}}:res:{request_key}"


def held_key(program: str) -> str:
    """The program's reservations not settled yet, by time (sorted set): the sweep's index."""
    return f"{{rw:{program}}}:held"


def returned_key(program: str, undo_key: str) -> str:
    """The mark that the undo `undo_key` gave its claim's item back (reward_return.lua)."""
    return f"{{rw:{program}}}:ret:{undo_key}"


def program_of(stored_reward_key: str) -> str:
    """The program of a reward key (`{rw:<program>}:<id>`)."""
    return stored_reward_key[4:stored_reward_key.index("}")]


def reward_of(stored_reward_key: str) -> str:
    """The reward id of a reward key."""
    return stored_reward_key[stored_reward_key.index("}") + 2:]

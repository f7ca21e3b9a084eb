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

"""Before a load run's clock starts: cards issued in the store and activated over the wire.

Cards get a large balance (below the program's maximum) so a long run of one-cent redemptions
never empties them; loyalty cards are issued only when the mix has points operations.

The cards are issued into the store the config names and activated through the gateway the
target names: the two must be one gateway's. A run started from another folder than the gateway
with an embedded store (data_dir is relative to the working directory) would issue into a store
of its own; that is refused before anything is issued, naming both, and a failed activation
names both too.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from gateway.config.model import Config, Program
from gateway.ledger.storeconnect import describe_store, embedded_for
from gateway.sim.issuer import issue_cards
from gateway.sim.target import Target
from gateway.sim.till import Till

ACTIVATE_WORKERS = 8


def load_tills(config: Config) -> list[tuple[str, str]]:
    """(terminal, merchant) of every terminal of a merchant that is not a reseller."""
    tills = [(t, m.id) for m in config.merchants.values() if not m.reseller for t in m.terminals]
    return tills or [(t, m.id) for m in config.merchants.values() for t in m.terminals]


def _program(config: Config, loyalty: bool) -> Program:
    for program in config.programs.values():
        if program.is_loyalty == loyalty and not program.pin_required \
                and not program.invoice_required and not program.face_values:
            return program
    kind = "loyalty" if loyalty else "gift"
    raise ValueError(f"the config has no {kind} program without PIN or invoice numbers")


def prepare_cards(config: Config, target: Target, count: int, *, loyalty: bool = False
                  ) -> list[str]:
    """Issue and activate `count` cards of the first suitable program; their numbers."""
    program = _program(config, loyalty)
    _check_store_is_the_gateways(config, target)
    cards = [c.number for c in issue_cards(config, program.id, count)]
    balance = 0 if loyalty else (program.max_balance or 10**8) * 9 // 10

    def activate(chunk: list[str]) -> list[str]:
        failed = []
        with Till(target, config=config, timeout=30) as till:
            for card in chunk:
                reply = till.activate(card, balance).reply
                if reply is None or not reply.approved:
                    failed.append(f"{reply.rc if reply else 'no answer'}")
        return failed

    chunks = [cards[i::ACTIVATE_WORKERS] for i in range(ACTIVATE_WORKERS)]
    with ThreadPoolExecutor(ACTIVATE_WORKERS) as pool:
        failed = [rc for result in pool.map(activate, [c for c in chunks if c]) for rc in result]
    if failed:
        unknown = (" (14: the gateway does not know the cards, so it uses another store)"
                   if failed[0] == "14" else "")
        raise RuntimeError(f"{len(failed)} of {count} card activations failed "
                           f"(first answer: {failed[0]}{unknown}); cards issued into "
                           f"{describe_store(config)}, activated at {target.describe()}")
    return cards


def _check_store_is_the_gateways(config: Config, target: Target) -> None:
    """With an embedded store, a gateway must be running on it: else the cards would be issued
    into a redis-server started for this run, which no gateway reads."""
    if config.redis.url is None and not embedded_for(config)._ping():
        raise RuntimeError(
            f"no gateway is running on {describe_store(config)}, the store this config names, "
            f"so the gateway at {target.describe()} keeps its cards elsewhere: start `sim load` "
            "in the gateway's working directory (data_dir is relative to it), or give both the "
            "same redis.url")

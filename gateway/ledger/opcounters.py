"""Prometheus counters of what the ledger did, for the same figures the portal's analytics
draws from the journal (docs/portal.md, "Analytics"): operations applied to a card, by program
and operation, and points accrued by program.

Counted once per operation when its card script applied it (a retransmission's replay of the
stored answer is not counted again) and approved it. Labels come from closed sets: the
config's program ids and the protocol's operations (protocols.model.Op values), with a reward
claim (`predeem` naming a reward) as `reward_claim`. Already there: tillgate_card_views_total
(gateway/ledger/cardviews.py), tillgate_messages_in_total / _out_total by listener, message
type and response code, tillgate_operation_seconds by operation. HotCounter: updated on the
reactor thread only, without prometheus_client's lock (gateway/metrics/hot.py).
"""

from __future__ import annotations

from typing import Any

from gateway.metrics.families import REGISTRY
from gateway.metrics.hot import HotCounter
from protocols.model import RC, Op, Request

OPERATIONS = HotCounter("tillgate_ledger_operations_total",
                        "Operations applied to cards and approved (replays not counted), by "
                        "program and operation (reward_claim: a reward claimed)",
                        ["program", "operation"], registry=REGISTRY)
POINTS_ACCRUED = HotCounter("tillgate_points_accrued_total",
                            "Points added to cards by earn and add-points operations, by program",
                            ["program"], registry=REGISTRY)
ACCRUING = frozenset({Op.EARN, Op.ADD_POINTS})


def count(program_id: str, req: Request, res: dict[str, Any]) -> None:
    """`res`: the card script's answer, applied by this call (not a replay)."""
    if res.get("rc") not in RC.APPROVALS:
        return
    operation = "reward_claim" if req.op is Op.REDEEM_POINTS and req.reward else req.op.value
    OPERATIONS.labels(program_id, operation).inc()
    if req.op in ACCRUING:
        points = int(res.get("ptsd") or 0)
        if points > 0:
            POINTS_ACCRUED.labels(program_id).inc(points)

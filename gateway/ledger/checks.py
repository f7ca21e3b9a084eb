"""The checks a program makes of a request before the store is asked: which operations it allows,
which need a PIN or an invoice number, the amount rules, and the points a purchase earns.

Pure functions of the config and the request: HTTP issuing asks them before it issues anything,
and the Processor (gateway/ledger/processor.py) before its store phases.
"""

from __future__ import annotations

import re

from gateway.config.model import Config, Program
from protocols.model import RC, Op, Request, Result

REWARD_ID = re.compile(r"^[A-Za-z0-9_.-]{1,20}$")  # gateway/ledger/rewards.py

GIFT_OPS = frozenset({
    Op.ACTIVATE, Op.ACTIVATE_PREVALUED, Op.PREVALIDATE, Op.RELOAD, Op.REDEEM, Op.REFUND,
    Op.CASHOUT, Op.BALANCE, Op.VOID, Op.REVERSAL, Op.TRANSFER,
})
LOYALTY_OPS = frozenset({
    Op.ACTIVATE, Op.PREVALIDATE, Op.EARN, Op.ADD_POINTS, Op.RETURN, Op.REDEEM_POINTS,
    Op.POINTS_BALANCE, Op.VOID, Op.REVERSAL, Op.TRANSFER,
})
# HOST-SPEC 2.3: the PIN guards operations that take value out or reveal it. A void of a load
# also needs it; the void script decides that, since only it knows what the original was.
PIN_OPS = frozenset({Op.REDEEM, Op.CASHOUT, Op.BALANCE, Op.POINTS_BALANCE, Op.TRANSFER,
                     Op.REDEEM_POINTS, Op.VOID})
# Operations that must carry an invoice number where the program requires one. Voids and
# reversals name their original instead and use up no number of their own.
INVOICE_OPS = frozenset({
    Op.ACTIVATE, Op.ACTIVATE_PREVALUED, Op.RELOAD, Op.REDEEM, Op.REFUND, Op.CASHOUT,
    Op.TRANSFER, Op.EARN, Op.ADD_POINTS, Op.RETURN, Op.REDEEM_POINTS,
})
POSITIVE_AMOUNT_OPS = frozenset({Op.RELOAD, Op.REDEEM, Op.REFUND, Op.EARN, Op.ADD_POINTS,
                                 Op.RETURN})
MONEY_LIMIT_OPS = frozenset({Op.ACTIVATE, Op.ACTIVATE_PREVALUED, Op.RELOAD, Op.REDEEM,
                             Op.REFUND})


PORTAL_CHANNEL = "portal"  # Request.channel of what the portal sends (web/portal/tilltx.py)

def points_for(program: Program, amount: int, rate: int | None = None) -> int:
    """Points a purchase of `amount` minor units earns, by the program's integer rules (at
    `rate` points per unit instead of the program's: a tier's rate)."""
    per_unit = program.points_per_unit if rate is None else rate
    q, r = divmod(amount * per_unit, program.unit)
    if program.rounding == "ceil" and r:
        q += 1
    elif program.rounding == "half_up" and 2 * r >= program.unit:
        q += 1
    if q < program.min_points:
        return 0
    if program.max_points:
        q = min(q, program.max_points)
    return q


def precheck(config: Config, req: Request) -> Result | Program:
    """Transport-independent refusals in the order of the issue; else the card's program."""
    merchant = config.merchant_of_terminal(req.terminal)
    if merchant is None or merchant.id != req.merchant:
        return Result(RC.TERMINAL_NOT_PERMITTED)
    # A merchant's portal terminal (merchants.<id>.portal_terminal) is the portal's alone: a
    # till that names it is refused as any terminal of another merchant is.
    if req.terminal == merchant.portal_terminal and req.channel != PORTAL_CHANNEL:
        return Result(RC.TERMINAL_NOT_PERMITTED)
    if not req.card:
        return Result(RC.FORMAT_ERROR, message="card missing")
    program = config.program_of_card(req.card)
    if program is None:
        return Result(RC.UNKNOWN_CARD)
    # the program's clubs, compiled at config load into the tills they admit (config/clubs.py)
    if program.club_terminals is not None and req.terminal not in program.club_terminals:
        return Result(RC.TERMINAL_NOT_PERMITTED)
    # A currency given on the wire must be the program's (13, "invalid amount": the amount
    # is in a currency the card does not hold). Channels without a currency skip this.
    if req.currency is not None and req.currency != program.currency:
        return Result(RC.INVALID_AMOUNT, message="currency")
    if program.invoice_required and req.op in INVOICE_OPS and not req.invoice:
        return Result(RC.FORMAT_ERROR, message="invoice number required")
    if req.op in (Op.VOID, Op.REVERSAL) and not req.original_key:
        return Result(RC.FORMAT_ERROR, message="original missing")
    if req.op is Op.TRANSFER and not req.target_card:
        return Result(RC.FORMAT_ERROR, message="target card missing")
    allowed = LOYALTY_OPS if program.is_loyalty else GIFT_OPS
    if req.op not in allowed:
        return Result(RC.INVALID_TRANSACTION)
    refused = amount_refusal(req, program)
    return refused or program

def amount_refusal(req: Request, program: Program) -> Result | None:
    """The refusal the operation's amount gets from the program's rules, if any (no store
    needed: HTTP issuing asks before it issues anything)."""
    op, amount = req.op, req.amount
    if amount < 0:
        return Result(RC.INVALID_AMOUNT)
    if op is Op.RELOAD and not program.reload:
        return Result(RC.INVALID_TRANSACTION, message="reload not allowed")
    if op is Op.ADD_POINTS and not program.points_only:
        return Result(RC.INVALID_TRANSACTION, message="points-only mode off")
    if op in POSITIVE_AMOUNT_OPS and amount == 0:
        return Result(RC.INVALID_AMOUNT)
    if op is Op.ACTIVATE:
        if program.is_loyalty and amount:
            return Result(RC.INVALID_AMOUNT)
        if amount < program.min_activation:
            return Result(RC.INVALID_AMOUNT)
    if op is Op.REDEEM_POINTS:
        if req.reward:
            # the catalogue in Redis decides whether the reward exists (claim_reward.lua);
            # an id that no catalogue can hold is refused here, before it names a key
            if not REWARD_ID.match(req.reward):
                return Result(RC.INVALID_TRANSACTION, message="unknown reward")
        elif amount == 0:
            return Result(RC.INVALID_AMOUNT)
    if op in MONEY_LIMIT_OPS and program.max_transaction and amount > program.max_transaction:
        return Result(RC.LIMIT_EXCEEDED)
    return None

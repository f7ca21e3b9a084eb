"""`tillgate sim`: the terminal simulator (HOST-SPEC 5), three ways.

    tillgate sim redeem --card 6039... --amount 12.50 [--pin 1234] [--json]   one request
    tillgate sim run scenarios/redeem.toml [--junit out.xml]                    scenario files
    tillgate sim load --terminals 8 --duration 30 --mix redeem=3,balance=1     a load run

Host, ports, framing, terminal and merchant default to the listeners and the HOST-SPEC 6 till
(TILL0001 of STORE0000000001) of `--config`; `--protocol tgl` speaks TGL/1 to the line listener.
Amounts are decimals in major units (`12.50`), parsed by gateway.ledger.amounts (never floats);
points are integers (`--points`).

Exit status: 0 approved (or all scenario steps passed), 1 declined, no answer or a failed step,
2 bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys

from gateway.cli.main import fail
from gateway.cli.sim_target import build_target
from gateway.config.model import DEFAULT_CONFIG_PATH
from gateway.ledger.amounts import parse_amount
from protocols.model import Op

# Operations a till can send on its own from the command line, with the options each takes.
ONE_SHOT_OPS = {
    Op.SIGNON: (), Op.SIGNOFF: (), Op.ECHO: (),
    Op.ACTIVATE: ("card", "amount"), Op.PREVALIDATE: ("card", "amount"),
    Op.RELOAD: ("card", "amount"), Op.REDEEM: ("card", "amount"), Op.REFUND: ("card", "amount"),
    Op.CASHOUT: ("card",), Op.BALANCE: ("card",), Op.POINTS_BALANCE: ("card",),
    Op.VOID: ("card", "amount", "orig"), Op.REVERSAL: ("card", "amount", "orig"),
    Op.TRANSFER: ("card", "target"), Op.EARN: ("card", "amount"),
    Op.ADD_POINTS: ("card", "points"), Op.RETURN: ("card", "amount"),
    Op.REDEEM_POINTS: ("card", "points"),
}
REQUIRED = {Op.RELOAD: "amount", Op.REDEEM: "amount", Op.REFUND: "amount", Op.EARN: "amount",
            Op.RETURN: "amount", Op.ADD_POINTS: "points", Op.TRANSFER: "target"}


def connection_options() -> argparse.ArgumentParser:
    """Options every `sim` mode takes (after the mode, like --config after a command)."""
    conn = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a --config given before the mode is not overwritten by this parser's default.
    conn.add_argument("--config", default=argparse.SUPPRESS,
                      help=f"configuration file (default {DEFAULT_CONFIG_PATH}, else built-in)")
    conn.add_argument("--protocol", choices=("iso", "tgl"),
                      help="ISO 8583 (default; a scenario file may choose) or TGL/1")
    conn.add_argument("--listener", help="the config listener to reach (default: the first "
                      "of the protocol, TCP first)")
    conn.add_argument("--host", help="override the listener's host")
    conn.add_argument("--port", type=int, help="override the listener's port")
    conn.add_argument("--device", help="a serial device (e.g. /dev/ttyUSB0): STX/ETX framing")
    conn.add_argument("--baud", type=int, help="serial line speed")
    conn.add_argument("--framing", choices=("len2b", "len4a", "tpdu", "stxetx"),
                      help="override the listener's framing")
    conn.add_argument("--no-ack", dest="ack", action="store_false", default=None,
                      help="STX/ETX over TCP without the ACK/NAK handshake")
    conn.add_argument("--tls-ca", metavar="PEM",
                      help="TLS: trust this certificate (default: the listener's own)")
    conn.add_argument("--tls-cert", metavar="PEM", help="TLS: client certificate")
    conn.add_argument("--tls-key", metavar="PEM", help="TLS: client key")
    conn.add_argument("--tls-no-verify", dest="tls_verify", action="store_false", default=None,
                      help="TLS: do not verify the gateway's certificate (tests only)")
    conn.add_argument("--terminal", help="terminal id (default TILL0001)")
    conn.add_argument("--merchant", help="merchant id (default STORE0000000001)")
    conn.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer")
    return conn


def register(subparsers, common) -> None:
    sim = subparsers.add_parser("sim", parents=[common], help="terminal simulator",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = sim.add_subparsers(dest="sim_mode", required=True, metavar="MODE")
    conn = connection_options()
    for op, options in ONE_SHOT_OPS.items():
        p = modes.add_parser(op.value, parents=[conn], help=f"send one {op.value} request")
        _add_request_options(p, op, options)
        p.set_defaults(func=run_one, op=op)
    from gateway.cli import sim_modes as cli_modes

    cli_modes.register_run(modes, conn)
    cli_modes.register_load(modes, conn)


def _add_request_options(p: argparse.ArgumentParser, op: Op, options: tuple[str, ...]) -> None:
    if "card" in options:
        source = p.add_mutually_exclusive_group(required=True)
        source.add_argument("--card", help="card number")
        source.add_argument("--track2", help="track 2 data as read (ISO field 35)")
        source.add_argument("--track1", help="track 1 data as read (ISO field 45)")
        source.add_argument("--swipe", help="a whole keyboard-wedge swipe (TGL/1)")
        source.add_argument("--barcode", help="a scanned barcode or QR payload")
    if "amount" in options:
        p.add_argument("--amount", help="amount in major units, e.g. 12.50")
    if "points" in options:
        p.add_argument("--points", type=int, help="points (whole number)")
    if "target" in options:
        p.add_argument("--target", help="card receiving the balance")
    if "orig" in options:
        p.add_argument("--orig", required=True,
                       help="the original's STAN (ISO) or id (TGL/1), as printed by its run")
        p.add_argument("--orig-time", help="ISO: the original's field 7 (MMDDhhmmss)")
        p.add_argument("--orig-op", default="redeem",
                       help="ISO: the original's operation (default redeem)")
        p.add_argument("--orig-mti", default="0200", help="ISO: the original's MTI")
    if options:
        p.add_argument("--pin", help="PIN (sent as an ISO 9564 format 0 block over ISO)")
        p.add_argument("--invoice", help="invoice number (field 63 IN / inv)")
        p.add_argument("--operator", help="operator id")
        p.add_argument("--partial", action="store_true", help="accept partial approval")
        p.add_argument("--reward", help="reward id (predeem)")
        p.add_argument("--mti", help="ISO: the MTI (e.g. 0100 for an authorisation inquiry)")
    p.add_argument("--json", action="store_true", help="print the decoded response as JSON")


def run_one(args) -> int:
    from gateway.config.model import ConfigError
    from gateway.sim.links import LinkClosed
    from gateway.sim.render import as_json, as_table
    from gateway.sim.target import TargetError
    from gateway.sim.till import Till, default_till_ids

    try:
        config, target = build_target(args)
        terminal, merchant = default_till_ids(config)
        args.terminal, args.merchant = args.terminal or terminal, args.merchant or merchant
        call = _call_from_args(args, target.protocol)
    except ConfigError as e:
        return fail(str(e).splitlines()[0])
    except (TargetError, ValueError) as e:
        return fail(str(e))
    try:
        with Till(target, terminal=args.terminal, merchant=args.merchant, config=config,
                  timeout=args.timeout) as till:
            exchange = till.request(call)
    except (OSError, LinkClosed) as e:
        print(f"tillgate: {target.describe()}: {e}", file=sys.stderr)
        return 1
    except (TimeoutError, ValueError) as e:  # no answer, or an unreadable one
        print(f"tillgate: {e}", file=sys.stderr)
        return 1
    print(as_json(exchange) if args.json else as_table(exchange))
    return 0 if exchange.reply is not None and exchange.reply.approved else 1


def _call_from_args(args, protocol: str):
    from gateway.sim.messages import Call

    op: Op = args.op
    need = REQUIRED.get(op)
    if need and getattr(args, need, None) is None:
        raise ValueError(f"{op.value} needs --{need}")
    amount = None
    if getattr(args, "amount", None) is not None:
        amount = parse_amount(args.amount)
    if getattr(args, "points", None) is not None:
        if args.points < 0:
            raise ValueError("--points must not be negative")
        amount = args.points
    if op is Op.REDEEM_POINTS and amount is None and not args.reward:
        raise ValueError("predeem needs --points or --reward")
    call = Call(op=op, card=getattr(args, "card", None), amount=amount,
                track2=getattr(args, "track2", None), track1=getattr(args, "track1", None),
                swipe=getattr(args, "swipe", None), barcode=getattr(args, "barcode", None),
                pin=getattr(args, "pin", None), invoice=getattr(args, "invoice", None),
                operator=getattr(args, "operator", None),
                partial=getattr(args, "partial", False), reward=getattr(args, "reward", None),
                target=getattr(args, "target", None), mti=getattr(args, "mti", None))
    if protocol == "iso" and call.swipe is not None:
        raise ValueError("ISO 8583 carries tracks (fields 35 and 45), not a whole swipe; "
                         "use --protocol tgl or give --track2")
    if call.pin is not None and not (call.pin.isdigit() and 4 <= len(call.pin) <= 12):
        raise ValueError("--pin must be 4 to 12 digits")
    if op in (Op.VOID, Op.REVERSAL):
        call.original = _original_from_args(args, protocol, call)
    return call


def _original_from_args(args, protocol: str, call):
    """The original exchange a void or reversal names, rebuilt from --orig (and --orig-time)."""
    from gateway.sim.messages import original_exchange

    try:
        orig_op = Op(args.orig_op)
    except ValueError:
        raise ValueError(f"--orig-op: unknown operation {args.orig_op!r}") from None
    try:
        return original_exchange(protocol, seq=args.orig, terminal=args.terminal,
                                 merchant=args.merchant, card=call.card, amount=call.amount,
                                 op=orig_op, mti=args.orig_mti, transmitted=args.orig_time)
    except ValueError as e:
        raise ValueError(f"--orig/--orig-time: {e}") from None

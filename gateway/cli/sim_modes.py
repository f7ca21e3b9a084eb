"""`tillgate sim run` (scenario files) and `tillgate sim load` (a load run)."""

from __future__ import annotations

import sys

from gateway.cli.main import fail


def register_run(modes, conn) -> None:
    p = modes.add_parser("run", parents=[conn], help="run scenario files (TOML or YAML)")
    p.add_argument("scenarios", nargs="+", metavar="FILE", help="scenario files")
    p.add_argument("--junit", metavar="FILE", help="also write JUnit XML here")
    p.set_defaults(func=run_scenarios)


def run_scenarios(args) -> int:
    from gateway.cli.sim_target import build_target
    from gateway.config.model import ConfigError, load_config
    from gateway.sim.junit import write_junit
    from gateway.sim.scenario import Runner, ScenarioError, load_scenario, render_text
    from gateway.sim.target import TargetError

    try:
        config = load_config(args.config)
        scenarios = [load_scenario(path) for path in args.scenarios]
        targets = [build_target(args, s.protocol, config)[1] for s in scenarios]
    except ConfigError as e:
        return fail(str(e).splitlines()[0])
    except (ScenarioError, TargetError, ValueError) as e:
        return fail(str(e))
    results = []
    for scenario, target in zip(scenarios, targets):
        runner = Runner(config, target, terminal=args.terminal, merchant=args.merchant,
                        timeout=args.timeout)
        results.append(runner.run(scenario))
        print(render_text(results[-1:]).rsplit("\n", 1)[0], flush=True)
    print(render_text(results).rsplit("\n", 1)[1])
    if args.junit:
        try:
            write_junit(results, args.junit)
        except OSError as e:
            print(f"tillgate: cannot write {args.junit}: {e}", file=sys.stderr)
            return 2
    return 0 if all(r.passed for r in results) else 1


def register_load(modes, conn) -> None:
    from gateway.sim.load import DEFAULT_MIX

    p = modes.add_parser("load", parents=[conn], help="a load run: many terminals, a report")
    p.add_argument("--terminals", type=int, default=4,
                   help="connections, each a terminal of the config (default 4)")
    p.add_argument("--depth", type=int, default=8,
                   help="closed loop: requests in flight per connection (default 8)")
    p.add_argument("--rate", type=float,
                   help="open loop: requests per second in total (instead of --depth)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds (default 10)")
    p.add_argument("--mix", default=DEFAULT_MIX,
                   help=f"operation weights (default {DEFAULT_MIX}); ops: balance, redeem, "
                   "reload, refund, earn, pbalance, echo")
    p.add_argument("--cards", type=int, default=200,
                   help="cards issued and activated before the run (default 200); operations "
                   "a card rule limits (the default: 30 balance inquiries per card a minute) "
                   "go only to cards with room left")
    p.add_argument("--amount", default="0.01", help="amount of each money operation")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON ('-': stdout)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_load)


def run_load(args) -> int:
    import asyncio

    from gateway.cli.sim_target import build_target
    from gateway.config.model import ConfigError
    from gateway.ledger.amounts import parse_amount
    from gateway.sim.load import LOYALTY_OPS, LoadRun, LoadSettings, parse_mix, progress_bar
    from gateway.sim.loadsetup import load_tills, prepare_cards
    from gateway.sim.loadstats import render_json, render_text
    from gateway.sim.pacing import card_limits
    from gateway.sim.target import TargetError

    try:
        config, target = build_target(args)
        mix = parse_mix(args.mix)
        settings = LoadSettings(connections=args.terminals, depth=args.depth, rate=args.rate,
                                duration=args.duration, mix=mix,
                                amount=parse_amount(args.amount), timeout=args.timeout)
        if min(args.terminals, args.depth, args.cards) < 1 or args.duration <= 0 \
                or (args.rate is not None and args.rate <= 0):
            raise ValueError("--terminals, --depth, --cards, --duration and --rate must be "
                             "positive")
        if target.transport != "tcp":
            raise ValueError("load runs go over TCP")
    except ConfigError as e:
        return fail(str(e).splitlines()[0])
    except (TargetError, ValueError) as e:
        return fail(str(e))
    tills = load_tills(config)
    if args.terminal:
        tills = [(args.terminal, args.merchant or tills[0][1])]
    try:
        gift = prepare_cards(config, target, args.cards)
        loyalty = (prepare_cards(config, target, args.cards, loyalty=True)
                   if any(op in LOYALTY_OPS for op, _ in mix) else [])
    except (OSError, RuntimeError, ValueError, TimeoutError) as e:
        print(f"tillgate: preparing cards: {e}", file=sys.stderr)
        return 1
    show = None if args.quiet or not sys.stderr.isatty() else progress_bar()
    limits = card_limits(config.rules, (op for op, _ in mix))
    run = LoadRun(target, settings, tills, gift, loyalty, progress=show, limits=limits)
    try:
        stats = asyncio.run(run.run())
    except OSError as e:
        print(f"tillgate: {target.describe()}: {e}", file=sys.stderr)
        return 1
    summary = stats.summary({"target": target.describe(), **settings.describe()})
    print(render_text(summary))
    if args.json == "-":
        print(render_json(summary))
    elif args.json:
        with open(args.json, "w") as f:
            f.write(render_json(summary) + "\n")
    return 0 if not summary["errors"] else 1

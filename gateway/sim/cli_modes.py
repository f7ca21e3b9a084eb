"""`tillgate sim run` (scenario files) and `tillgate sim load` (a load run)."""

from __future__ import annotations

import sys

from gateway.cli import fail


def register_run(modes, conn) -> None:
    p = modes.add_parser("run", parents=[conn], help="run scenario files (TOML or YAML)")
    p.add_argument("scenarios", nargs="+", metavar="FILE", help="scenario files")
    p.add_argument("--junit", metavar="FILE", help="also write JUnit XML here")
    p.set_defaults(func=run_scenarios)


def run_scenarios(args) -> int:
    from gateway.cli_sim import build_target
    from gateway.config import ConfigError, load_config
    from gateway.sim.junit import write_junit
    from gateway.sim.scenario import Runner, ScenarioError, load_scenario, render_text
    from gateway.sim.target import TargetError

    try:
        config = load_config(getattr(args, "config", "config/tillgate.toml"))
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
    pass

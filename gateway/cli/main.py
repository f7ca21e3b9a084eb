"""`tillgate`: the one command of HOST-SPEC section 5.

Each subcommand lives in its own module with `register(subparsers, common)`: it adds its parser
with `parents=[common]` (so every command takes `--config FILE`, after the subcommand as HOST-SPEC 5
writes it) and sets `func(args) -> int` on it.
Exit status: 0 success, 2 bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gateway.config.defaults import DEFAULT_CONFIG_PATH, resolve_config

# Modules that add subcommands; each has `register(subparsers, common)`.
COMMAND_MODULES = (
    "gateway.cli.serve",
    "gateway.cli.config",
    "gateway.cli.cards",
    "gateway.cli.audit",
    "gateway.cli.points",
    "gateway.cli.backoffice",
    "gateway.cli.customers",
    "gateway.cli.ecards",
    "gateway.cli.journal",
    "gateway.cli.ledger",
    "gateway.cli.resellers",
    "gateway.cli.reports",
    "gateway.cli.rewards",
    "gateway.cli.sim",
    "gateway.cli.staff",
    "gateway.cli.terminals",
    "gateway.cli.tokens",
    "gateway.cli.users",
)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=None,
                        help=f"configuration file (default {DEFAULT_CONFIG_PATH}, or the "
                        "built-in default where there is none: HOST-SPEC 5)")
    parser = argparse.ArgumentParser(prog="tillgate", description="stored-value card host")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # a command not built yet; every other import error is real
                continue
            raise
        module.register(subparsers, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # From here on args.config is a file; config_builtin says it is the built-in default.
    args.config, args.config_builtin = resolve_config(getattr(args, "config", None))
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


def fail(message: str) -> int:
    """Bad input: one line on stderr, exit status 2."""
    print(f"tillgate: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

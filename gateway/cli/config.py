"""`tillgate config check [FILE]`: validate a configuration, naming every error by its path.
`tillgate config show` prints the built-in default (HOST-SPEC 6, annotated) and
`tillgate config init FILE` writes it to FILE, a start for a configuration of one's own.
`tillgate config reload` makes the running gateway reload its file (gateway/cli/configreload.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

from gateway.cli import configreload
from gateway.cli.main import fail
from gateway.config.defaults import builtin_config_text
from gateway.config.model import Config, ConfigError, Program, load_config


def register(subparsers, common) -> None:
    config = subparsers.add_parser("config", help="configuration tools")
    sub = config.add_subparsers(dest="config_command", required=True)
    check = sub.add_parser("check", parents=[common], help="validate a configuration file")
    check.add_argument("file", nargs="?", help="file to check (default: --config)")
    check.set_defaults(func=run_check)
    show = sub.add_parser("show", help="print the built-in default configuration, annotated")
    show.set_defaults(func=run_show)
    init = sub.add_parser("init", help="write the built-in default configuration to FILE")
    init.add_argument("file", help="the new configuration file (not overwritten if it exists)")
    init.set_defaults(func=run_init)
    configreload.add_parser(sub, common)


def run_check(args) -> int:
    path = args.file or args.config
    try:
        config = load_config(path)
    except ConfigError as e:
        for line in e.errors:
            print(f"{path}: {line}" if not line.startswith(path) else line, file=sys.stderr)
        return 2
    builtin = " (the built-in default)" if getattr(args, "config_builtin", False) else ""
    print(f"{path}{builtin}: ok ({summary(config)})")
    return 0


def run_show(args) -> int:
    print(builtin_config_text(), end="")
    return 0


def run_init(args) -> int:
    from gateway.cli.main import fail

    target = Path(args.file)
    try:
        with open(target, "x") as f:  # "x": never overwrite a configuration someone edited
            f.write(builtin_config_text())
    except FileExistsError:
        return fail(f"{target}: exists, not overwritten")
    except OSError as e:
        return fail(f"{target}: cannot write: {e.strerror}")
    print(f"{target}: written (the built-in default); edit it, then "
          f"tillgate config check {target}")
    return 0


def summary(config: Config) -> str:
    return (f"{len(config.programs)} programs, {len(config.merchants)} merchants, "
            f"{len(config.terminals)} terminals, {len(config.listeners)} listeners, "
            f"redis {'at ' + config.redis.url if config.redis.url else 'embedded'}")


def load_or_report(path: str) -> Config | None:
    """For other commands: the config, or None after printing every error to stderr."""
    try:
        return load_config(path)
    except ConfigError as e:
        for line in e.errors:
            print(f"tillgate: {path}: {line}", file=sys.stderr)
        return None


def config_and_program(path: str, program_id: str) -> tuple[Config, Program] | None:
    """For a command of one program (`--program`): the config and that program, or None after
    printing every config error, or the unknown id with the programs there are."""
    config = load_or_report(path)
    if config is None:
        return None
    program = config.programs.get(program_id)
    if program is None:
        fail(f"unknown program {program_id!r} (have: {', '.join(config.programs)})")
        return None
    return config, program

"""`tillgate config check [FILE]`: validate a configuration, naming every error by its path."""

from __future__ import annotations

import sys

from gateway.config.model import Config, ConfigError, load_config


def register(subparsers, common) -> None:
    config = subparsers.add_parser("config", help="configuration tools")
    sub = config.add_subparsers(dest="config_command", required=True)
    check = sub.add_parser("check", parents=[common], help="validate a configuration file")
    check.add_argument("file", nargs="?", help="file to check (default: --config)")
    check.set_defaults(func=run_check)


def run_check(args) -> int:
    path = args.file or args.config
    try:
        config = load_config(path)
    except ConfigError as e:
        for line in e.errors:
            print(f"{path}: {line}" if not line.startswith(path) else line, file=sys.stderr)
        return 2
    print(f"{path}: ok ({summary(config)})")
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

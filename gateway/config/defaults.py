"""What ships with tillgate: the built-in default configuration (HOST-SPEC 6) and the named
reseller profiles (HOST-SPEC 5: `profile = "blackhawk"`).

Both are files of `config/`: beside the package in a source checkout (an editable install), and
copied into a wheel as gateway/defaults/config/ by setup.py. So an installed copy started in an
empty folder has its default, and a config naming a shipped profile starts from any folder.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

# What `--config` means when it is not given, if that file exists in the working directory.
DEFAULT_CONFIG_PATH = "config/tillgate.toml"
_CONFIG_FILE = "tillgate.toml"
_PROFILES_FILE = "resellers.example.toml"

_PACKAGE = Path(__file__).resolve().parent.parent  # gateway/
_FOLDERS = (_PACKAGE.parent / "config", _PACKAGE / "defaults" / "config")


def _shipped(name: str) -> Path:
    for folder in _FOLDERS:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"tillgate's own {name} is missing (looked in "
                            f"{', '.join(str(f) for f in _FOLDERS)}): reinstall tillgate")


def builtin_config_path() -> Path:
    """The file of the built-in default configuration."""
    return _shipped(_CONFIG_FILE)


def builtin_config_text() -> str:
    """The built-in default configuration, annotated: `tillgate config show` prints it."""
    return builtin_config_path().read_text()


def resolve_config(given: str | None) -> tuple[str, bool]:
    """(the config file to read, whether it is the built-in default) for a `--config` value.

    A file given is read as given (a missing one is an error); none given means
    config/tillgate.toml in the working directory, or the built-in default where there is none.
    """
    if given is not None:
        return given, False
    if Path(DEFAULT_CONFIG_PATH).is_file():
        return DEFAULT_CONFIG_PATH, False
    return str(builtin_config_path()), True


def is_profile_name(value: str) -> bool:
    """`blackhawk` names a shipped profile; `x.toml`, `dir/x` or `./x` is a user's file."""
    return "/" not in value and "." not in value


@cache
def shipped_profiles() -> dict[str, dict]:
    """The reseller profiles that ship with tillgate, by name."""
    with open(_shipped(_PROFILES_FILE), "rb") as f:
        return dict(tomllib.load(f).get("resellers", {}))

"""A wheel of tillgate carries what an installed copy needs without the source checkout: the Lua
scripts and the default configuration (the pytest plugin starts gateways on it)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHECK = """
from pathlib import Path
from gateway.config.model import parse_config
from gateway.pytest_plugin import default_base_config
from gateway.testing import config_text
import tomllib

base = default_base_config()
text = config_text(base, data_dir="var", ports={})
config = parse_config(tomllib.loads(text))
print(base)
print(sorted(config.programs), sorted(config.resellers))
"""


def test_an_installed_wheel_finds_its_default_configuration(tmp_path):
    pure = {**os.environ, "TILLGATE_NO_EXTENSIONS": "1"}  # no compiler needed for this
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(dist)],
                   check=True, env=pure, timeout=300, capture_output=True)
    wheel = next(dist.glob("tillgate-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"gateway/defaults/config/tillgate.toml",
            "gateway/defaults/config/resellers.example.toml",
            "gateway/ledger/lua/redeem.lua", "gateway/ledger/lua/_prelude.lua"} <= names

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(site), str(wheel)], check=True, timeout=300, capture_output=True)
    elsewhere = tmp_path / "elsewhere"  # no config/ here, and not the checkout
    elsewhere.mkdir()
    out = subprocess.run([sys.executable, "-c", CHECK], cwd=elsewhere, capture_output=True,
                         text=True, timeout=60, env={**pure, "PYTHONPATH": str(site)})
    assert out.returncode == 0, out.stderr
    base, programs = out.stdout.splitlines()
    assert base == str(site / "gateway" / "defaults" / "config" / "tillgate.toml")
    assert programs == "['gift', 'loyalty', 'secure'] ['blackhawk']"

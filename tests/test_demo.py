"""`make run` as a new user meets it: scripts/run-demo.sh started in an empty folder (no config
there, so the built-in default of HOST-SPEC 6), its gateway answering /healthz and the demo's ISO
8583 exchanges, and not one Python warning in what it prints (tests/demorun.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

from demorun import assert_demo_answered, needs_private_network, run_demo


@needs_private_network
def test_the_demo_in_an_empty_folder_answers_and_warns_of_nothing(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    output = run_demo(empty, Path(sys.executable).parent)
    assert_demo_answered(output)
    assert (empty / "var" / "redis").is_dir()  # data_dir "var" of the working directory

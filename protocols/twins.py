"""The one rule for picking a compiled twin (DESIGN.md, Cython packaging), shared by the facades.

The compiled module is used on CPython unless TILLGATE_NO_EXTENSIONS=1; on CPython a missing build
is an ImportError that says how to build it, never a silent fall-back to the slower module.
"""

from __future__ import annotations

import importlib
import os
import platform
from types import ModuleType


def use_extensions() -> bool:
    return (os.environ.get("TILLGATE_NO_EXTENSIONS") != "1"
            and platform.python_implementation() == "CPython")


def load_compiled(name: str, otherwise: str) -> ModuleType:
    """Import the compiled twin `name`; `otherwise` tells what TILLGATE_NO_EXTENSIONS=1 gives."""
    try:
        return importlib.import_module(name)
    except ImportError as error:  # pragma: no cover - a broken install, not a runtime condition
        raise ImportError(
            f"{name} is not built: run pip install -e . or python setup.py build_ext --inplace "
            f"(or set TILLGATE_NO_EXTENSIONS=1 to run on {otherwise})"
        ) from error

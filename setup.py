"""Builds the Cython twins: every ext/_<name>.pyx becomes the module protocols._<name>.

Metadata lives in pyproject.toml; this file only selects the extensions. With
TILLGATE_NO_EXTENSIONS=1 nothing is compiled and the pure-Python modules are used (DESIGN.md).
"""

import os
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).parent


def extensions():
    if os.environ.get("TILLGATE_NO_EXTENSIONS") == "1":
        return []
    from Cython.Build import cythonize
    from setuptools import Extension

    modules = [
        Extension(f"protocols.{pyx.stem}", [str(pyx.relative_to(HERE))], extra_compile_args=["-O2"])
        for pyx in sorted((HERE / "ext").glob("_*.pyx"))
    ]
    return cythonize(modules, language_level=3, compiler_directives={"boundscheck": False,
                                                                       "wraparound": False})


setup(ext_modules=extensions())

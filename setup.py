"""Builds the Cython twins: every ext/_<name>.pyx becomes the module protocols._<name>.

Metadata lives in pyproject.toml; this file only selects the extensions, and puts a copy of the
default configuration into built packages. With TILLGATE_NO_EXTENSIONS=1 nothing is compiled and
the pure-Python modules are used (DESIGN.md).
"""

import os
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).parent
# config/ files a wheel carries as gateway/defaults/config/ (gateway.defaults finds them): the
# pytest plugin starts gateways on the default configuration of HOST-SPEC 6 without a checkout.
DEFAULT_CONFIG_FILES = ("tillgate.toml", "resellers.example.toml")


class BuildWithDefaults(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "gateway" / "defaults" / "config"
        target.mkdir(parents=True, exist_ok=True)
        for name in DEFAULT_CONFIG_FILES:
            shutil.copyfile(HERE / "config" / name, target / name)


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


setup(ext_modules=extensions(), cmdclass={"build_py": BuildWithDefaults})

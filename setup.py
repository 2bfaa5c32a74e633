"""Build hook for the optional C speedups (pure-Python fallbacks exist for all of them)."""

import os

from setuptools import Extension, setup

ext_modules = []
if os.environ.get("WSIO_NO_EXTENSIONS") != "1":
    ext_modules.append(
        Extension("wsio._speedups", ["src/wsio/_speedups.c"], optional=True, extra_compile_args=["-O3"])
    )

setup(ext_modules=ext_modules)

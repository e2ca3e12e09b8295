"""Build the Cython feature extractor; everything else is in pyproject.toml."""

from __future__ import annotations

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension(
        "router_core._features",
        ["router_core/_features.pyx"],  # includes router_core/_features_*.pxi
        include_dirs=[np.get_include()],
        extra_compile_args=["-O3", "-ffp-contract=off"],  # no FMA: bit-identical to the reference
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    )
)

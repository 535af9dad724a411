# Everything about the project is in pyproject.toml; this file only exists
# because cffi hooks its extension build into setuptools through setup().
from setuptools import setup

setup(cffi_modules=["build_reactor.py:ffibuilder"])

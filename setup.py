# Everything about the project is in pyproject.toml; this file only exists
# because cffi hooks its extension build into setuptools through setup(),
# and for the one build that has no extension: the Windows wheel made here.
import os

from setuptools import setup

if os.environ.get("PYCOS_WINDOWS_WHEEL"):
    # `make wheel-win`: the reactor is pycos/rx_reactor.dll, cross-built
    # with mingw-w64, with its declarations pycos/_reactor_cdef.h
    # (pycos/_abi.py loads them through cffi's ABI mode).  The DLL needs no
    # Python headers, so the wheel fits every Python 3 on 64-bit Windows.
    try:
        from setuptools.command.bdist_wheel import bdist_wheel
    except ImportError:                 # setuptools < 70.1
        from wheel.bdist_wheel import bdist_wheel

    class WindowsWheel(bdist_wheel):
        def finalize_options(self):
            super().finalize_options()
            self.root_is_pure = False

        def get_tag(self):
            return "py3", "none", "win_amd64"

    setup(cmdclass={"bdist_wheel": WindowsWheel})
else:
    setup(cffi_modules=["build_reactor.py:ffibuilder"])

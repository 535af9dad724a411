"""Workloads for the original pycos 4.12.2 (the code lives in ``pycos_api.py``).

Run only with the interpreter of ``.venv/bench-pycos4`` (or
``.venv/bench-pypy-pycos4``): that package is also called ``pycos`` and must
never share an environment with this project's.
"""

import logging
import warnings

import common

if __name__ == "__main__":
    args = common.parse_args()
    warnings.simplefilter("ignore")
    try:
        import pycos
    except ImportError as exc:
        common.unavailable("original pycos not installed (bench/setup.sh): %s" % exc)
    if not getattr(pycos, "__version__", "").startswith("4."):
        raise SystemExit("pycos4.py got pycos %r, not 4.x: wrong environment"
                         % getattr(pycos, "__version__", None))
    pycos.logger.setLevel(logging.WARNING)
    import pycos_api
    pycos_api.main(pycos, args, version=pycos.__version__)

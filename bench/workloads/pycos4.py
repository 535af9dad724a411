"""Workloads for the original pycos 4.12.2 (the code lives in ``pycos_api.py``).

Run only with the interpreter of ``.venv/bench-pycos4`` (or
``.venv/bench-pypy-pycos4``): that package is also called ``pycos`` and must
never share an environment with this project's.  The networked ``net-*``
workloads are in ``net_pycos_api.py``; ``--stream-send`` makes the client
add its peer with ``stream_send=True`` (one kept connection).
"""

import logging
import sys
import warnings

import common

if __name__ == "__main__":
    argv = sys.argv[1:]         # (left as it is: a net-* server is started with it)
    stream_send = "--stream-send" in argv
    args = common.parse_args([a for a in argv if a != "--stream-send"])
    warnings.simplefilter("ignore")
    try:
        import pycos
    except ImportError as exc:
        common.unavailable("original pycos not installed (bench/setup.sh): %s" % exc)
    if not getattr(pycos, "__version__", "").startswith("4."):
        raise SystemExit("pycos4.py got pycos %r, not 4.x: wrong environment"
                         % getattr(pycos, "__version__", None))
    pycos.logger.setLevel(logging.WARNING)
    if args.workload in common.NET_WORKLOADS:
        import pycos.netpycos as netpycos
        import net_pycos_api
        net_pycos_api.main(netpycos, args, stream_send=stream_send,
                             rps_by_message=True, version=pycos.__version__)
    else:
        import pycos_api
        pycos_api.main(pycos, args, version=pycos.__version__)

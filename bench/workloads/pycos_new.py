"""Workloads for this project's pycos (the code lives in ``pycos_api.py``).

The networked ``net-*`` workloads live in ``net_pycos_api.py``.  Reports
"not available" (not a failure) while the package or a feature it needs
(e.g. ``pycos.AsyncSocket``) does not exist yet.
"""

import common

if __name__ == "__main__":
    args = common.parse_args()
    try:
        import pycos
        pycos.Task
    except (ImportError, AttributeError) as exc:
        common.unavailable("this project's pycos is not importable: %s" % exc)
    if getattr(pycos, "__version__", "5").startswith("4."):
        raise SystemExit("pycos_new.py got the original pycos %s: wrong environment"
                         % pycos.__version__)
    if args.workload in common.NET_WORKLOADS:
        try:
            import pycos.netpycos as netpycos
        except ImportError as exc:
            common.unavailable("this project's pycos.netpycos is not importable: %s" % exc)
        import net_pycos_api
        net_pycos_api.main(netpycos, args)
    else:
        import pycos_api
        pycos_api.main(pycos, args)

#!/usr/bin/env bash
# Create the benchmark environments (run once; `python bench/run.py` uses them).
#
#   .venv/bench          CPython: our pycos (pip install -e .) + asyncio peers
#                        (uvloop, trio, gevent, curio) + the netpycos peers
#                        (Pyro5, pyzmq, ray where it installs) + the dispycos
#                        peer (Dask distributed) + matplotlib
#                        for charts + py-spy for `run.py --profile py-spy`.
#   .venv/bench-pycos4   CPython: the original pycos 4.12.2, alone.  It is also
#                        called "pycos", so it must never share an environment
#                        with ours; its workloads run in their own process.
#   .venv/bench-pypy     PyPy (if pypy3 is installed): our pycos + what installs.
#   .venv/bench-pypy-pycos4  PyPy: the original pycos.
#
# Usage: bench/setup.sh [--no-pypy]        (PYTHON=... to pick the CPython)
# Re-running is cheap: existing environments are reused and only topped up.
# Nothing here is needed by the library itself.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
PEERS_CPY=("uvloop>=0.19,<1" "trio>=0.25,<1" "gevent>=24.2,<27" "curio>=1.6,<2" "matplotlib>=3.7,<4"
           "py-spy>=0.3.14,<1" "Pyro5>=5.14,<6" "pyzmq>=25,<28" "ray>=2.9,<3"
           "distributed>=2024.1,<2027")
# (distributed: Dask's cluster, the dispy-* workloads' peer; dask comes with it)
# (ray has no PyPy wheels: it is left out there; a peer that does not install
# on this machine is skipped, and bench/run.py reports it "not available")
PEERS_PYPY=("trio>=0.25,<1" "gevent>=24.2,<27" "curio>=1.6,<2" "Pyro5>=5.14,<6" "pyzmq>=25,<28")
# BENCH_RAY=0: not Ray (a large download that `run.py --quick` never uses;
# `make bench-quick` sets it)
if [ "${BENCH_RAY:-1}" = 0 ]; then
    PEERS_CPY=("${PEERS_CPY[@]/ray*/}")
fi
PYCOS4="pycos==4.12.2"
want_pypy=1
[ "${1:-}" = "--no-pypy" ] && want_pypy=0

mkvenv() {  # mkvenv INTERPRETER DIR
    if [ ! -x "$2/bin/python" ]; then
        echo "== creating $2 with $1"
        "$1" -m venv "$2" || { echo "!! could not create $2"; return 1; }
        "$2/bin/python" -m pip install -q --upgrade pip || true
    fi
}

install_ours() {  # install_ours VENV: this repo's pycos, importable from the tree
    local venv=$1
    if (cd / && "$venv/bin/python" -c "import pycos, sys; sys.exit(not pycos.__file__.startswith('$ROOT/'))" 2>/dev/null); then
        echo "== $venv: our pycos already importable from $ROOT"
        return 0
    fi
    if [ ! -f "$ROOT/pyproject.toml" ]; then
        echo "!! no pyproject.toml; pycos_new will report 'not available'"
        return 0
    fi
    # `make setup` builds the extension in place (pycos/_reactor.*.so) for
    # this interpreter already: then put the tree on the path (what an
    # editable install does) instead of rebuilding that shared file under
    # processes that may have it loaded.  Otherwise: pip install -e.
    local suffix
    suffix=$("$venv/bin/python" -c "import importlib.machinery as m; print(' '.join(m.EXTENSION_SUFFIXES))")
    for s in $suffix; do
        if [ -f "$ROOT/pycos/_reactor$s" ]; then
            echo "== $venv: using the in-place build pycos/_reactor$s (tree on sys.path)"
            "$venv/bin/python" -c "import cffi" 2>/dev/null || "$venv/bin/python" -m pip install -q "cffi>=1.15"
            local site
            site=$("$venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
            echo "$ROOT" > "$site/pycos-bench-tree.pth"
            return 0
        fi
    done
    echo "== $venv: pip install -e ."
    "$venv/bin/python" -m pip install -q -e "$ROOT" \
        || echo "!! $venv: our package did not install; pycos_new will report 'not available'"
}

install_each() {  # install_each VENV PKG...: one by one, so one failure skips one peer
    local venv=$1; shift
    for pkg in "$@"; do
        [ -n "$pkg" ] || continue
        "$venv/bin/python" -m pip install -q "$pkg" || echo "!! $venv: $pkg did not install (peer skipped)"
    done
}

status=0
mkvenv "$PY" .venv/bench && { install_ours .venv/bench; install_each .venv/bench "${PEERS_CPY[@]}"; } || status=1
mkvenv "$PY" .venv/bench-pycos4 && install_each .venv/bench-pycos4 "$PYCOS4" || status=1

if [ $want_pypy = 1 ]; then
    if command -v pypy3 >/dev/null; then
        mkvenv pypy3 .venv/bench-pypy && { install_ours .venv/bench-pypy; install_each .venv/bench-pypy "${PEERS_PYPY[@]}"; }
        mkvenv pypy3 .venv/bench-pypy-pycos4 && install_each .venv/bench-pypy-pycos4 "$PYCOS4"
    else
        echo "-- pypy3 not found (Debian: apt-get install -y pypy3 pypy3-dev); PyPy environments skipped"
    fi
fi
echo "== bench environments ready"
exit $status

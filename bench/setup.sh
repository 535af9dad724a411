#!/usr/bin/env bash
# Create the benchmark environments (run once; `python bench/run.py` uses them).
#
#   .venv/bench          CPython: our pycos (pip install -e .) + asyncio peers
#                        (uvloop, trio, gevent, curio) + matplotlib for charts.
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
PEERS_CPY=("uvloop>=0.19,<1" "trio>=0.25,<1" "gevent>=24.2,<27" "curio>=1.6,<2" "matplotlib>=3.7,<4")
PEERS_PYPY=("trio>=0.25,<1" "gevent>=24.2,<27" "curio>=1.6,<2")
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

install_ours() {  # install_ours VENV: editable install of this repo, if it builds
    if [ -f "$ROOT/pyproject.toml" ] || [ -f "$ROOT/setup.py" ]; then
        echo "== $1: pip install -e ."
        "$1/bin/python" -m pip install -q -e "$ROOT" \
            || echo "!! $1: our package did not install; pycos_new will report 'not available'"
    else
        echo "!! no pyproject.toml yet; pycos_new will report 'not available'"
    fi
}

install_each() {  # install_each VENV PKG...: one by one, so one failure skips one peer
    local venv=$1; shift
    for pkg in "$@"; do
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

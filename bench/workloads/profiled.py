"""Run a workload script under cProfile, every thread included.

    python profiled.py OUT_PREFIX SCRIPT.py ARGS...

pycos runs its scheduler in a thread of its own, which a plain
``python -m cProfile`` would not see: here every ``threading.Thread``
started by the script gets its own ``cProfile.Profile``, and at the end
their profiles are merged into ``OUT_PREFIX.prof``
(load it with ``pstats`` or snakeviz) plus ``OUT_PREFIX.txt``, the 30
functions with the most internal time and the 30 with the most cumulative
time.  When the script starts threads (pycos does: its scheduler), the
main thread, which only waits for the result, is left out.  A server
workload never ends by itself: SIGTERM (sent by
``bench/run.py`` after the client is done) writes the files and exits.
"""

import cProfile
import io
import os
import pstats
import runpy
import signal
import sys
import threading

_profiles = []
_lock = threading.Lock()
_done = False


def _patch_threads():
    original = threading.Thread.run

    def run(self):
        prof = cProfile.Profile()
        with _lock:
            _profiles.append(prof)
        prof.enable()
        try:
            original(self)
        finally:
            prof.disable()

    threading.Thread.run = run


def _write(prefix):
    """Merge every profile and write ``prefix.prof`` and ``prefix.txt`` (once)."""
    global _done
    with _lock:
        if _done:
            return
        _done = True
        profiles = list(_profiles)
    # pycos runs tasks in its scheduler thread while the main thread waits in
    # a lock: when the script started threads, their profiles are the story
    # (the main thread's would top the list with that wait and the imports).
    main_only = len(profiles) == 1
    if not main_only:
        profiles = profiles[1:]
    stats = None
    for prof in profiles:
        prof.disable()
        try:
            part = pstats.Stats(prof)
        except TypeError:           # a profile that recorded nothing
            continue
        if stats is None:
            stats = part
        else:
            stats.add(part)
    if stats is None:
        sys.stderr.write("profiled: nothing was recorded\n")
        return
    stats.dump_stats(prefix + ".prof")
    text = io.StringIO()
    stats.stream = text
    text.write("cProfile of: %s\n(%s; internal time first, then cumulative)\n\n"
               % (" ".join(sys.argv), "main thread" if main_only
                  else "every thread but the main one, merged"))
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(30)
    with open(prefix + ".txt", "w") as f:
        f.write(text.getvalue())


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    prefix, script = sys.argv[1], sys.argv[2]
    sys.argv = [script] + sys.argv[3:]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))

    def on_term(_signum, _frame):
        _write(prefix)
        sys.stdout.flush()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    _patch_threads()
    main_prof = cProfile.Profile()
    _profiles.append(main_prof)
    main_prof.enable()
    try:
        runpy.run_path(script, run_name="__main__")
    finally:
        _write(prefix)


if __name__ == "__main__":
    main()

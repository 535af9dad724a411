"""Checksums of files through ``sha1sum`` processes, with AsyncPipe.communicate.

For each file a task starts ``sha1sum`` (or another ``*sum`` program),
feeds it the file through its stdin and collects its output with
``yield pipe.communicate(input)``: writing stdin and reading stdout/stderr
happen together, so a process that talks back before it has read all its
input can never deadlock us.  The tasks run side by side, one process per
file, and none of them blocks the scheduler.

    python examples/pipe_checksum.py FILE...
    python examples/pipe_checksum.py --program md5sum --verify FILE...

The output looks like ``sha1sum``'s own (``<hex>  <file>``).  ``--verify``
also computes each digest with ``hashlib`` (on a thread pool, since hashing a
big file is a blocking call) and exits with status 1 if any differs.
"""
import argparse
import hashlib
import subprocess
import sys

import pycos
from pycos.asyncfile import AsyncPipe


def checksum(path, program, task=None):
    """The hex digest ``program`` prints for the contents of ``path``."""
    with open(path, "rb") as f:
        proc = subprocess.Popen([program], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        pipe = AsyncPipe(proc)
        try:
            # input may be bytes or, as here, a file object read in chunks;
            # communicate() also waits (without blocking the scheduler) for
            # the process to exit, so its returncode is set afterwards
            out, err = yield pipe.communicate(f)
        finally:
            pipe.close()
    if pipe.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (program, pipe.returncode,
                                                   err.decode(errors="replace").strip()))
    return out.split()[0].decode()


def hash_file(path, name):
    h = hashlib.new(name)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main_task(paths, program, verify, task=None):
    tasks = [pycos.Task(checksum, path, program) for path in paths]
    pool = pycos.AsyncThreadPool(2) if verify else None
    algo = program[:-3] if program.endswith("sum") else program
    bad = 0
    for path, t in zip(paths, tasks):
        digest = yield t.finish()
        if isinstance(digest, pycos.MonitorStatus):     # the task raised (logged)
            print("%s: FAILED" % path, flush=True)
            bad += 1
            continue
        print("%s  %s" % (digest, path), flush=True)
        if pool is not None:            # (verify)
            expected = yield pool.async_task(hash_file, path, algo)
            if expected != digest:
                print("%s: MISMATCH, hashlib says %s" % (path, expected), flush=True)
                bad += 1
    return bad, pool


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--program", default="sha1sum",
                    help="checksum program reading stdin (sha1sum, md5sum, sha256sum ...)")
    ap.add_argument("--verify", action="store_true", help="check each digest with hashlib")
    args = ap.parse_args()
    if args.verify:
        algo = args.program[:-3] if args.program.endswith("sum") else args.program
        if algo not in hashlib.algorithms_available:
            ap.error("--verify: hashlib has no %r to check %s with" % (algo, args.program))

    bad, pool = pycos.Task(main_task, args.files, args.program, args.verify).value()
    if pool is not None:
        pool.terminate()
    pycos.Pycos().finish()
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

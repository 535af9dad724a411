"""A ``grep PATTERN | wc`` chain of processes, driven from a task with AsyncPipe.

Two processes are connected the usual way (``grep``'s stdout is ``wc``'s
stdin) and ``AsyncPipe(first, last)`` holds the two ends this program
talks to: the stdin of ``grep`` and the stdout of ``wc``.  One task writes
the input into the chain while another reads the result, so a chain whose
output fills its pipe before the input is all written cannot deadlock.

    python examples/pipe_grep_wc.py PATTERN FILE...
    python examples/pipe_grep_wc.py -i error /var/log/syslog
    some-command | python examples/pipe_grep_wc.py PATTERN -    # '-' is stdin

For each file it prints what ``wc`` says about the matching lines --
``lines words bytes`` -- and exits 0 (grep finding no match is not an error).
``--lines`` also prints the matching lines themselves, as they come: the
input then goes to a second chain, ``grep PATTERN | cat``, at the same time
(the writing task copies each chunk to both, like ``tee``), and a third task
reads that chain's output line by line with ``readline``.
"""
import argparse
import os
import subprocess
import sys

import pycos
from pycos.asyncfile import AsyncFile, AsyncPipe


def open_input(path):
    """An AsyncFile reading ``path`` ('-': a copy of our stdin's descriptor)."""
    if path == "-":
        return AsyncFile(os.dup(sys.stdin.fileno()))
    return AsyncFile(open(path, "rb"))


def feed(src, pipes, task=None):
    """Copy ``src`` (an AsyncFile) into the input of every chain in ``pipes``
    (a tee), then close their inputs."""
    try:
        while True:
            chunk = yield src.read(65536)
            if not chunk:
                break
            for pipe in pipes:
                if pipe.stdin.closed:
                    continue
                try:
                    yield pipe.write(chunk, full=True)
                except BrokenPipeError:     # that chain stopped reading (it failed:
                    pipe.stdin.close()      # its exit status will tell why)
    finally:
        src.close()
        for pipe in pipes:
            pipe.stdin.close()              # end of input: grep ends, then wc/cat


def chain(pattern, grep_opts, second):
    """Start ``grep [opts] pattern | second``; returns (first, last)."""
    grep = subprocess.Popen(["grep"] + grep_opts + ["--", pattern],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        last = subprocess.Popen(second, stdin=grep.stdout, stdout=subprocess.PIPE)
    except BaseException:
        grep.kill()
        grep.wait()
        raise
    # the second process has its copy of grep's stdout; closing ours lets
    # grep see a broken pipe if the second one dies
    assert grep.stdout is not None      # (the pipe asked for)
    grep.stdout.close()
    return grep, last


def reap(*procs):
    """Wait (without blocking the scheduler) for processes that are ending."""
    task = pycos.Pycos.cur_task()       # sub-generators are not given ``task=``
    assert task is not None             # (a sub-call runs in a task)
    for p in procs:
        while p.poll() is None:
            yield task.sleep(0.005)


def show_lines(pipe, task=None):
    """Print the lines coming out of ``pipe`` as they come."""
    while True:
        line = yield pipe.readline()
        if not line:
            break
        print("  | " + line.decode(errors="replace").rstrip("\n"), flush=True)


def search(pattern, grep_opts, path, lines, task=None):
    """``wc`` of the lines of ``path`` matching ``pattern``: (lines, words,
    bytes); with ``lines``, also print them (through ``grep | cat``)."""
    src = open_input(path)              # first, so a missing file starts nothing
    procs = []
    pipes = []
    try:
        for second in (["wc"], ["cat"]) if lines else (["wc"],):
            first, last = chain(pattern, grep_opts, second)
            procs += [first, last]
            pipes.append(AsyncPipe(first, last))
        writer = pycos.Task(feed, src, pipes)
        printer = pycos.Task(show_lines, pipes[1]) if lines else None
        out = yield pipes[0].read()             # wc's output, to its end
        yield writer.finish()
        if printer is not None:
            yield printer.finish()
    finally:
        src.close()
        for pipe in pipes:
            pipe.close()
    yield reap(*procs)
    for p in procs:
        if p.returncode != 0 and not (p.args[0] == "grep" and p.returncode == 1):
            raise RuntimeError("%s exited with status %s" % (p.args[0], p.returncode))
    return tuple(int(x) for x in out.split()[:3])


def main_task(args, task=None):
    grep_opts = ["-i"] if args.ignore_case else []
    failures = 0
    for path in args.files:
        try:
            lines, words, nbytes = yield search(args.pattern, grep_opts, path, args.lines)
        except (OSError, RuntimeError) as exc:
            print("%s: %s" % (path, exc), flush=True)
            failures += 1
            continue
        print("%s: %d lines, %d words, %d bytes match %r"
              % (path, lines, words, nbytes, args.pattern), flush=True)
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pattern", help="a grep (basic) regular expression")
    ap.add_argument("files", nargs="+", help="files to search; '-' is stdin")
    ap.add_argument("-i", "--ignore-case", action="store_true")
    ap.add_argument("--lines", action="store_true", help="also print the matching lines")
    args = ap.parse_args()
    if args.files.count("-") > 1:
        ap.error("stdin ('-') can be read only once")

    failures = pycos.Task(main_task, args).value()
    pycos.Pycos().finish()
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

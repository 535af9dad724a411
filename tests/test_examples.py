"""The example programs and the code in the docs run and say what they should.

Each example runs in its own process with the interpreter running the tests
(``sys.executable``), so it exercises a fresh scheduler exactly as a user
would, on the backend chosen by ``$PYCOS_BACKEND`` (inherited).

To add an example, append a row to ``EXAMPLES``: the script (relative to
``examples/``), its arguments, and regular expressions that must all match
its standard output (``re.MULTILINE``).  The check also requires exit status
0 and that nothing on stderr looks like a traceback or a logged error, and
the script's docstring must say how to run it (``python examples/<script>``).
An example should finish in a few seconds with no arguments.

The docs pages in ``DOC_PAGES`` are checked too: every block fenced as
```` ```python ```` must be a complete program that exits 0 (fragments are
fenced ```` ```py ````).  A traceback on stderr is allowed only when pycos
logged it for a task that died of an uncaught exception on purpose.
"""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES_DIR = os.path.join(ROOT, "examples")

# (script, args, [regexes that must match stdout])
EXAMPLES = [
    ("sleepers.py", [], [
        r"^created 10000 tasks in ",
        r"^all 10000 tasks finished in [0-9.]+ s",
        r"^tasks woken early: 0$",
    ]),
    ("client_server.py", [], [
        r"^client-a: squares of \[1, 2, 3\] are \[1, 4, 9\]$",
        r"^client-b: request 0: no reply yet after 0\.05 s; waiting longer$",
        r"^client-b: squares of \[4, 5, 6\] are \[16, 25, 36\]$",
        r"^server: idle for 0\.5 s, still waiting$",
        r"^watcher: server/\d+ ended: StopIteration, value 9$",
        r"^main: 9 requests served, sum of all squares 285$",
    ]),
    ("channel_subscribers.py", [], [
        r"^publisher: first tick reached [23] subscriber task\(s\)$",
        r"^alerter: big-moves: (ACME|INITECH) [+-]\d+\.\d% to ",
        r"^quitter: after unsubscribing it received: nothing$",
        r"^main: published 30 ticks; recorder got 30, quitter 3, alerter \d+$",
    ]),
    ("hot_swap.py", [], [
        r"^main: hot_swap to worker_v2 asked while the worker is in a sub-call \(rc 0\)$",
        r"^  \[sub-call\] added 3 slowly\n(.*\n)?v2: started as worker_v2/\d+, total so far 6$",
        r"^v2: refusing hot swap to worker_v3$",
        r"^main: worker worker_v2/\d+ finished with total 266 \(reply 266\)$",
    ]),
    ("embedded_loop.py", [], [
        r"^host: (polling pycos descriptor \d+|backend \w+ has no pollable descriptor)",
        r"^heartbeat 3 at t=",
        r"^consumer: got 10 device readings and 5 thread messages$",
        r"^host: scheduler finished: True$",
    ]),
    ("asyncio_both_ways.py", [], [
        # (one thread for both where the backend has a pollable descriptor)
        r"^(bridge: the asyncio loop drives pycos \(backend \w+\): one thread$(.*\n)*"
        r"threads that ran pycos tasks and coroutines: 1$"
        r"|bridge: pycos keeps its own thread \(backend \w+ has no pollable descriptor\)$)",
        r"^asyncio client got: BOB: ASYNCIO \| BOB: STREAMS \| BOB: TOO$",
        r"^asyncio client got: CY: THROUGH A PYCOS SOCKET$",
        r"^pycos server logged \(client, lines\): \[\('ann', 2\), \('bob', 3\), \('cy', 1\)\]$",
        r"^pycos: waited 0\.05 s for slow_answer\(\): gave up$",
        r"^pycos: forever\(\) ended because its awaiter was cancelled$",
        r"^asyncio: the awaiting coroutine saw CancelledError$",
        r"^done: \{'bridges': 0, 'waits': 0, 'calls': 0\}$",
    ]),
]

# docs whose ```python blocks are complete programs
DOC_PAGES = ["README.md"] + ["docs/%s.md" % p for p in (
    "tasks", "messages", "channels", "primitives", "threadpool", "embedding", "asyncio")]

# stderr lines that mean something went wrong even with exit status 0
BAD_STDERR = re.compile(r"Traceback|uncaught exception|internal error|Error:")


def _run(script, args, cwd=ROOT):
    env = dict(os.environ)
    env.pop("PYTHONSTARTUP", None)
    return subprocess.run([sys.executable, os.path.join(EXAMPLES_DIR, script)] + list(args),
                          cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=60)


@pytest.mark.parametrize("script, args, patterns", EXAMPLES,
                         ids=[row[0] for row in EXAMPLES])
def test_example(script, args, patterns):
    proc = _run(script, args)
    report = "%s exited %d\n--- stdout\n%s--- stderr\n%s" % (
        script, proc.returncode, proc.stdout, proc.stderr)
    assert proc.returncode == 0, report
    for pattern in patterns:
        assert re.search(pattern, proc.stdout, re.MULTILINE), (
            "no line matches %r\n%s" % (pattern, report))
    assert not BAD_STDERR.search(proc.stderr), report


def test_every_example_has_a_docstring_that_says_how_to_run_it():
    for script, _, _ in EXAMPLES:
        with open(os.path.join(EXAMPLES_DIR, script)) as f:
            source = f.read()
        assert source.startswith('"""'), script
        doc = source.split('"""')[1]
        assert "python examples/%s" % script in doc, script


def _doc_snippets():
    for page in DOC_PAGES:
        with open(os.path.join(ROOT, page)) as f:
            text = f.read()
        blocks = re.findall(r"^```python\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
        assert blocks, "no ```python block in %s" % page
        for i, block in enumerate(blocks):
            yield pytest.param(block, id="%s-%d" % (os.path.basename(page)[:-3], i + 1))


@pytest.mark.parametrize("code", list(_doc_snippets()))
def test_doc_snippet_runs(code, tmp_path):
    script = tmp_path / "snippet.py"
    script.write_text(code)
    proc = _run(str(script), [], cwd=str(tmp_path))
    report = "exit %d\n--- code\n%s--- stdout\n%s--- stderr\n%s" % (
        proc.returncode, code, proc.stdout, proc.stderr)
    assert proc.returncode == 0, report
    assert proc.stdout.strip(), report
    assert proc.stderr.count("Traceback") == proc.stderr.count("uncaught exception in task"), \
        report

"""dispycos node_setup: load shared data once per node, read it in every job.

The client ships a data file (a table of 50,000 words and their scores)
with its code; ``node_setup`` runs once on each node, before the node's
server processes start, reads the file into a global dict, and the servers
-- forked from the process that ran it -- inherit that dict (the pages are
shared, copy-on-write, not copied).  Each job scores a batch of words with
it and says which process loaded the table and which one ran the job: one
loader for all of them, while the jobs ran in both servers.  Run it
with::

    python examples/dispycos_node_setup.py

(On platforms without ``fork`` the servers start afresh and do not inherit
what node_setup set; use ``server_setup`` there.)  It starts a local node
daemon with two server processes for the duration (``_localnode.py``, next
to this file).
"""
import os
import random
import sys
import tempfile

import pycos
from pycos.dispycos import Client

from _localnode import run

WORDS = 50000
JOBS = 6

# what load_table sets in the node's server processes, where score() reads
# it (this process, the client, leaves them as they are here)
TABLE: dict = {}
LOADED_BY = 0


def load_table(task=None):
    """node_setup: read the shipped file into globals the servers inherit.
    It runs in the node's directory for this client, where the file is."""
    global TABLE, LOADED_BY
    import os
    TABLE = {}
    with open("words.tsv") as f:
        for line in f:
            word, score = line.split("\t")
            TABLE[word] = int(score)
    LOADED_BY = os.getpid()
    yield task.sleep(0)
    return 0                                   # anything else (or raising) closes the node


def score(words, task=None):
    """A job: the total score of ``words`` (unknown ones count 0), how many
    were unknown, the process that loaded the table, and this one."""
    import os
    yield task.sleep(0.2)                      # (as if it took a while: jobs spread out)
    total = sum(TABLE.get(w, 0) for w in words)
    unknown = sum(w not in TABLE for w in words)
    return total, unknown, LOADED_BY, os.getpid(), len(TABLE)


def main(path, table, task=None):
    client = Client([path, score], node_setup=load_table)   # the file goes to each node
    if (yield client.schedule()):
        raise Exception("could not start the scheduler")
    rnd = random.Random(1)
    words = list(table)
    batches = [rnd.sample(words, 1000) + ["no-such-word"] for _ in range(JOBS)]
    jobs = []
    for batch in batches:
        rtask = yield client.rtask(score, batch)
        jobs.append(rtask)
    loaders, servers, right = set(), set(), 0
    for batch, rtask in zip(batches, jobs):
        result = yield rtask()
        if isinstance(result, pycos.MonitorStatus):
            print("  a job failed: %s" % (result,))
            continue
        total, unknown, loader, pid, size = result
        expected = sum(table.get(w, 0) for w in batch)
        right += total == expected
        loaders.add(loader)
        servers.add(pid)
        print("  %d words: score %d (%s), %d unknown; table of %d loaded by process %d, "
              "job ran in %d" % (len(batch), total, "right" if total == expected else "WRONG",
                                 unknown, size, loader, pid))
    yield client.close()
    print("%d of %d jobs right; the table was loaded %d time(s), by process(es) %s; "
          "the jobs ran in %d server process(es)"
          % (right, JOBS, len(loaders), sorted(loaders), len(servers)))
    return right == JOBS and len(loaders) == 1 and not loaders & servers


if __name__ == "__main__":
    rnd = random.Random(0)
    letters = "abcdefghijklmnopqrstuvwxyz"
    table: dict = {}
    while len(table) < WORDS:
        table["".join(rnd.choice(letters) for _ in range(rnd.randint(4, 10)))] = \
            rnd.randint(1, 100)
    with tempfile.TemporaryDirectory(prefix="dispycos-words-") as tmp:
        path = os.path.join(tmp, "words.tsv")
        with open(path, "w") as f:
            f.writelines("%s\t%d\n" % item for item in table.items())
        ok = run(main, path, table)
    sys.exit(0 if ok else 1)

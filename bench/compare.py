#!/usr/bin/env python3
"""Do independent runs of the harness give the same ordering?

    python bench/compare.py bench/results/cpython-a.json bench/results/cpython-b.json [...]

Reads two or more ``<interp>*.json`` files written by ``bench/run.py`` (on
one interpreter) and, for every workload and every figure that decides a
target (``run.PRIMARY``), ranks the frameworks by their median in each run.
Then every pair of frameworks that two runs put in a different order is
listed, as one of:

* **within the spread** -- in at least one of the runs their min-max ranges
  overlap: that run did not separate them, and the flip is noise;
* **CONTRADICTION** -- each run separated them (disjoint ranges) and the
  runs disagree: an ordering that does not reproduce.

Pairs with pycos come first: its place is what the tables claim.  The exit
status is 1 when a pair with pycos contradicts, else 0 (contradictions among
peers alone are listed and counted, they are the peers' noise); 2 on bad
input.  Only frameworks that ran (not failed or unavailable) in every run
are ranked, and workloads missing from a run are skipped (and said so).
Stdlib only; runs with any Python 3.9+.
"""

import argparse
import itertools
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the harness: PRIMARY, FRAMEWORKS, summarize, overlap ...)


class BadInput(Exception):
    """A file that is not a harness result, or runs that cannot be compared."""


def load(path):
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise BadInput("%s: %s" % (path, exc))
    if not isinstance(data, dict) or not {"interpreter", "results", "cases"} <= set(data):
        raise BadInput("%s: not a result file of bench/run.py" % path)
    data["path"] = path
    return data


def stats(data, case, fw, key):
    """Median/min/max of ``key`` over the rounds that ran, or None."""
    rounds = [r for r in data["results"].get(case, {}).get(fw, [])
              if isinstance(r, dict) and "failed" not in r and "unavailable" not in r]
    return run.summarize(rounds, key)


def better_of(case_name, key, runs):
    """"high" or "low" for ``key`` of ``case_name``, from the runs' case lists."""
    for data in runs:
        for case in data["cases"]:
            if case["name"] == case_name:
                for m in case["metrics"]:
                    if m[0] == key:
                        return m[3], m[2], m[1]
    raise BadInput("no metric %s in case %s" % (key, case_name))


def compare(runs):
    """(report lines, number of contradictions with pycos) for the loaded
    ``runs``."""
    interps = {d["interpreter"].split()[0] for d in runs}
    if len(interps) != 1:
        raise BadInput("runs of different interpreters: %s" % ", ".join(sorted(interps)))
    lines = []
    w = lines.append
    w("# Orderings of %d runs (%s)" % (len(runs), runs[0]["interpreter"]))
    w("")
    for i, d in enumerate(runs):
        w("- run %d: `%s` (%s, %s rounds, load average at start %s)"
          % (i + 1, d["path"], d.get("date", "?"), d.get("rounds", "?"), d.get("loadavg", "?")))
    w("")
    ours = others = 0
    names = [c["name"] for c in runs[0]["cases"]]
    for d in runs[1:]:
        names += [c["name"] for c in d["cases"] if c["name"] not in names]
    for name in names:
        missing = [str(i + 1) for i, d in enumerate(runs) if name not in d["results"]]
        if missing:
            w("## %s: not in run %s, skipped" % (name, ", ".join(missing)))
            w("")
            continue
        for key in run.PRIMARY.get(name, []):
            better, kind, label = better_of(name, key, runs)
            fws = [fw for fw in run.FRAMEWORKS
                   if all(stats(d, name, fw, key) for d in runs)]
            if len(fws) < 2:
                w("## %s: %s: fewer than two frameworks ran in every run" % (name, label))
                w("")
                continue
            w("## %s: %s (%s is better)" % (name, label, "higher" if better == "high" else "lower"))
            w("")
            for i, d in enumerate(runs):
                ranked = sorted(fws, key=lambda fw: stats(d, name, fw, key)["median"],
                                reverse=(better == "high"))
                w("- run %d: %s" % (i + 1, " > ".join(
                    "%s %s" % (fw, run.fmt(stats(d, name, fw, key)["median"], kind))
                    for fw in ranked)))
            flips = []
            # pycos's pairs first
            pairs = sorted(itertools.combinations(fws, 2), key=lambda p: "pycos" not in p)
            for a, b in pairs:
                orders = set()
                separated = True
                for d in runs:
                    sa, sb = stats(d, name, a, key), stats(d, name, b, key)
                    orders.add(run.ahead(sa["median"], sb["median"], better))
                    separated = separated and not run.overlap(sa, sb)
                if len(orders) > 1:
                    flips.append((a, b, separated))
            for a, b, separated in flips:
                if separated:
                    if "pycos" in (a, b):
                        ours += 1
                    else:
                        others += 1
                    w("- **CONTRADICTION**: %s and %s, each run separated them (disjoint "
                      "min–max ranges), in opposite orders" % (a, b))
                else:
                    w("- %s and %s swap places, within the spread (their ranges overlap "
                      "in at least one run)" % (a, b))
            if not flips:
                w("- the same ordering in every run")
            w("")
    w("Contradictions: %d with pycos, %d among the peers." % (ours, others))
    return lines, ours


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", help="result files (<interp>*.json) of bench/run.py")
    opts = p.parse_args(argv)
    try:
        if len(opts.files) < 2:
            raise BadInput("give at least two result files")
        lines, ours = compare([load(f) for f in opts.files])
    except BadInput as exc:
        sys.stderr.write("compare.py: %s\n" % exc)
        return 2
    print("\n".join(lines))
    return 1 if ours else 0


if __name__ == "__main__":
    sys.exit(main())

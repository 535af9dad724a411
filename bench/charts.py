"""Draw the PNG charts of one benchmark run (called by ``bench/run.py``).

    python charts.py RESULTS.json OUT_DIR INTERP

Needs matplotlib (installed in ``.venv/bench`` by ``bench/setup.sh``); exits
with status 3 when it is missing so the table can say so.  One PNG per
workload, ``<INTERP>-<workload>.png``: a horizontal bar per framework for
each charted figure, the median with the min-max of the rounds as an error
bar, pycos in its own colour.  Prints ``{workload: file name}`` as JSON.
"""

import json
import os
import statistics
import sys

EXIT_UNAVAILABLE = 3


def main():
    json_path, out_dir, interp = sys.argv[1:4]
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import EngFormatter
    except ImportError:
        sys.exit(EXIT_UNAVAILABLE)
    with open(json_path) as f:
        data = json.load(f)
    labels = data.get("labels", {})
    made = {}
    for case in data["cases"]:
        name = case["name"]
        runs = data["results"].get(name, {})
        metrics = {m[0]: m for m in case["metrics"]}
        charted = [k for k in case["charts"] if k in metrics]
        panels = []
        for key in charted:
            rows = []
            for fw in data["frameworks"]:
                vals = [r[key] for r in runs.get(fw, []) if isinstance(r, dict) and key in r]
                if vals:
                    rows.append((fw, statistics.median(vals), min(vals), max(vals)))
            if rows:
                panels.append((metrics[key], rows))
        if not panels:
            continue
        height = 1.2 + 0.35 * max(len(rows) for _, rows in panels)
        fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), height), squeeze=False)
        for ax, (metric, rows) in zip(axes[0], panels):
            key, label, _kind, better = metric
            names = [labels.get(fw, fw) for fw, *_ in rows]
            med = [r[1] for r in rows]
            err = [[r[1] - r[2] for r in rows], [r[3] - r[1] for r in rows]]
            colors = ["#d62728" if fw == "pycos" else "#7f7f7f" for fw, *_ in rows]
            ax.barh(range(len(rows)), med, xerr=err, color=colors, capsize=3)
            ax.set_yticks(range(len(rows)))
            ax.set_yticklabels(names, fontsize=8)
            ax.invert_yaxis()
            ax.set_xlabel("%s (%s is better)" % (label, "higher" if better == "high" else "lower"))
            ax.xaxis.set_major_formatter(EngFormatter(sep=""))     # 100k, 1.5M
            ax.grid(axis="x", alpha=0.3)
        fig.suptitle("%s — %s" % (case["title"].format(**data["sizes"]), data["interpreter"]),
                     fontsize=9)
        fig.tight_layout()
        fname = "%s-%s.png" % (interp, name)
        fig.savefig(os.path.join(out_dir, fname), dpi=90)
        plt.close(fig)
        made[name] = fname
    print(json.dumps(made))


if __name__ == "__main__":
    main()

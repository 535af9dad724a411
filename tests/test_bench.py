"""The benchmark harness's judgements, on made-up results: the target lines
of a report (bench/run.py) and the comparison of orderings across runs
(bench/compare.py).  Nothing here runs a benchmark."""
import argparse
import json
import os
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")
sys.path.insert(0, BENCH)
import compare  # noqa: E402
import run  # noqa: E402

SWITCH = [c for c in run.CASES if c["name"] == "switch"]
ECHO = [c for c in run.CASES if c["name"] == "echo-100B"]


def result(rates, interp="CPython 3.11.7", cases=SWITCH, key="round_trips_per_s"):
    """A result file's data: ``rates`` = {framework: [figure per round]},
    as figure ``key`` of every case in ``cases``."""
    return {
        "interpreter": interp, "argv": "", "date": "2026-11-25 08:00", "machine": "x86_64",
        "cpus": 2, "loadavg": "0.1 0.1 0.1", "base": "test", "rounds": 3,
        "sizes": run.SIZES["full"], "frameworks": list(rates), "cases": cases,
        "results": {c["name"]: {fw: [{key: v} for v in vals] for fw, vals in rates.items()}
                    for c in cases},
        "profiles": {}, "labels": {}, "charts": {},
    }


def save(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def test_same_ordering_passes(tmp_path, capsys):
    a = save(tmp_path, "a.json", result({"pycos": [600, 610, 620], "uvloop": [200, 210, 220]}))
    b = save(tmp_path, "b.json", result({"pycos": [500, 550, 560], "uvloop": [150, 160, 170]}))
    assert compare.main([a, b]) == 0
    out = capsys.readouterr().out
    assert "run 1: pycos 610 > uvloop 210" in out
    assert "the same ordering in every run" in out
    assert "Contradictions: 0 with pycos, 0 among the peers." in out


def test_a_flip_within_the_spread_is_noise(tmp_path, capsys):
    # run 2's ranges overlap: it did not separate pycos from asyncio
    a = save(tmp_path, "a.json", result({"pycos": [300, 310, 320], "asyncio": [200, 210, 220]}))
    b = save(tmp_path, "b.json", result({"pycos": [250, 280, 320], "asyncio": [260, 290, 300]}))
    assert compare.main([a, b]) == 0
    out = capsys.readouterr().out
    assert "pycos and asyncio swap places, within the spread" in out
    assert "CONTRADICTION" not in out


def test_a_flip_both_runs_separated_is_a_contradiction(tmp_path, capsys):
    a = save(tmp_path, "a.json", result({"pycos": [300, 310, 320], "trio": [200, 210, 220],
                                         "gevent": [100, 110, 120]}))
    b = save(tmp_path, "b.json", result({"pycos": [200, 210, 220], "trio": [300, 310, 320],
                                         "gevent": [100, 110, 120]}))
    assert compare.main([a, b]) == 1
    out = capsys.readouterr().out
    assert "**CONTRADICTION**: pycos and trio" in out
    assert "Contradictions: 1 with pycos, 0 among the peers." in out


def test_contradictions_among_peers_are_counted_but_do_not_fail(tmp_path, capsys):
    a = save(tmp_path, "a.json", result({"pycos": [900, 910, 920], "trio": [300, 310, 320],
                                         "gevent": [100, 110, 120]}))
    b = save(tmp_path, "b.json", result({"pycos": [900, 910, 920], "trio": [100, 110, 120],
                                         "gevent": [300, 310, 320]}))
    assert compare.main([a, b]) == 0
    out = capsys.readouterr().out
    assert "**CONTRADICTION**: trio and gevent" in out
    assert "Contradictions: 0 with pycos, 1 among the peers." in out


def test_lower_is_better_figures_rank_upwards(tmp_path, capsys):
    rates = {"pycos": [8.0, 8.5, 9.0], "uvloop-proto": [6.0, 6.5, 7.0]}
    a = save(tmp_path, "a.json", result(rates, cases=ECHO, key="cpu_us_per_msg"))
    b = save(tmp_path, "b.json", result(rates, cases=ECHO, key="cpu_us_per_msg"))
    assert compare.main([a, b]) == 0
    assert "run 1: uvloop-proto 6.50 > pycos 8.50" in capsys.readouterr().out


def test_failed_frameworks_and_missing_workloads_are_left_out(tmp_path, capsys):
    da = result({"pycos": [600, 610, 620], "trio": [100, 110, 120]})
    da["results"]["switch"]["trio"] = [{"failed": "boom"}]
    db = result({"pycos": [600, 610, 620], "trio": [100, 110, 120]}, cases=SWITCH + ECHO)
    a, b = save(tmp_path, "a.json", da), save(tmp_path, "b.json", db)
    assert compare.main([a, b]) == 0
    out = capsys.readouterr().out
    assert "trio" not in out.split("## switch")[1]
    assert "## echo-100B: not in run 1, skipped" in out


@pytest.mark.parametrize("bad", ["different interpreters", "not a result", "not json", "one file"])
def test_bad_input_is_refused(tmp_path, capsys, bad):
    a = save(tmp_path, "a.json", result({"pycos": [1, 2, 3], "trio": [0, 0, 0]}))
    other = {"different interpreters": json.dumps(result({"pycos": [1], "trio": [0]},
                                                          interp="PyPy 7.3.11")),
             "not a result": json.dumps({"hello": 1}),
             "not json": "{", "one file": None}[bad]
    files = [a]
    if other is not None:
        (tmp_path / "b.json").write_text(other)
        files.append(str(tmp_path / "b.json"))
    assert compare.main(files) == 2
    assert capsys.readouterr().err.startswith("compare.py: ")


def test_target_lines_say_when_a_peer_is_within_the_spread():
    data = result({"pycos": [600, 700, 800], "uvloop": [500, 650, 660],
                   "asyncio": [100, 110, 120], "trio": [690, 750, 900]})
    lines = run.targets("cpython", data, argparse.Namespace(quick=False))
    switch = next(line for line in lines if line.startswith("switch round trips/s"))
    assert switch.endswith("MISSED (behind: trio 750, within the spread); "
                           "within the spread of this run: uvloop")
    data = result({"pycos": [600, 700, 800], "asyncio": [100, 110, 120]})
    lines = run.targets("cpython", data, argparse.Namespace(quick=False))
    assert any(line.startswith("switch round trips/s") and line.endswith("— MET")
               for line in lines)


def test_py_spy_stacks_are_summed_per_frame(tmp_path):
    folded = tmp_path / "p.folded"
    folded.write_text(
        "Scheduler._round (pycos/core/scheduler.py:330);AsyncSocket.sendall (pycos/io/socket.py:331);"
        "_cffi_f_rx_send (pycos._reactor.c:1881);send (libc.so.6) 6\n"
        "Scheduler._round (pycos/core/scheduler.py:330);AsyncSocket.sendall (pycos/io/socket.py:331);"
        "_cffi_f_rx_send (pycos._reactor.c:1925) 2\n"
        "Scheduler._round (pycos/core/scheduler.py:330);0x7f00deadbeef (libc.so.6) 2\n"
        "<module> (pycos_new.py:1);Task.value (pycos/core/task.py:357);"
        "PyThread_acquire_lock_timed (libpython3.11.so.1.0);0x7f00deadbeef (libc.so.6) 30\n"
        "not a stack line\n")
    txt = tmp_path / "p.txt"
    assert run.folded_summary(str(folded), str(txt), "echo")
    own, everything = txt.read_text().split("samples in all")
    assert "(10 samples at 250 Hz" in own       # the lock wait is idle: left out
    # own time: the last frame; C line numbers and unnamed addresses merged
    assert "       6   60.0%  send (libc.so.6)" in own
    assert "       2   20.0%  _cffi_f_rx_send (pycos._reactor.c)" in own
    assert "       2   20.0%  (libc.so.6)" in own
    # in all: every frame of a stack, once per stack
    assert "      10  100.0%  Scheduler._round (pycos/core/scheduler.py:330)" in everything
    assert "       8   80.0%  _cffi_f_rx_send (pycos._reactor.c)" in everything
    empty = tmp_path / "e.folded"
    empty.write_text("")
    assert not run.folded_summary(str(empty), str(txt), "nothing")

"""The stage timings of past runs, so that a slowdown shows."""

from __future__ import annotations

from pathlib import Path

from patchgen import history
from patchgen.progress import StageTiming
from patchgen.report import Report


def test_stage_names_drop_what_changes_from_run_to_run() -> None:
    assert history.stage_name("selftests (16 runs, netfilter; 2 patchgen scripts)") == "selftests"
    assert history.stage_name("build (selftests)") == "build"
    assert history.stage_name("tree") == "tree"


def test_the_stages_file_sits_next_to_the_flaky_history() -> None:
    assert history.stages_path(Path("/h/patchgen-history.jsonl")) == \
        Path("/h/patchgen-history-stages.jsonl")


def test_timings_of_a_run() -> None:
    r = Report(command="x", started="s")
    r.stages = [StageTiming("tree", 0.5, True), StageTiming("build (selftests)", 100.0, True),
                StageTiming("selftests (16 runs)", 600.0, False)]
    assert history.timings(r, {"pipeline/test": 710.0}) == {
        "pipeline/test": 710.0, "tree": 0.5, "build": 100.0, "selftests": 600.0}


def test_append_and_load_per_tree_and_shard(tmp_path: Path) -> None:
    path = tmp_path / "stages.jsonl"
    history.append_stages(path, "r1", "debian-6.1.192", "", {"build": 100.0})
    history.append_stages(path, "r2", "debian-6.1.192", "1/2", {"build": 50.0})
    with path.open("a") as f:
        f.write('{"torn\n')
    history.append_stages(path, "r3", "debian-6.12.95", "", {"build": 900.0})
    entries = history.load(path)
    assert [e["run"] for e in entries] == ["r1", "r2", "r3"]
    assert history.stage_series(entries, "debian-6.1.192", "") == {"build": [100.0]}
    assert history.stage_series(entries, "debian-6.1.192", "1/2") == {"build": [50.0]}


def test_a_stage_well_over_its_median_is_a_slowdown() -> None:
    past = {"selftests": [600.0, 620.0, 580.0, 610.0], "build": [100.0, 100.0, 100.0],
            "tree": [0.2, 0.2, 0.2], "check": [300.0, 310.0]}
    now = {"selftests": 950.0, "build": 140.0, "tree": 5.0, "check": 900.0, "bench": 400.0}
    slow = history.slowdowns(past, now)
    # selftests: 950 > 1.5 x 605; build 140 < 150; tree: 1.5x but under 10 s more;
    # check: two runs are too few to judge; bench: never measured
    assert slow == [history.Slowdown("selftests", 950.0, 605.0, 4)]
    assert str(slow[0]) == "selftests 15m50s, median 10m05s of the last 4 runs (1.6x)"


def test_only_the_last_runs_count() -> None:
    past = {"build": [1000.0] * 5 + [100.0] * 10}
    assert history.slowdowns(past, {"build": 200.0}) == [
        history.Slowdown("build", 200.0, 100.0, 10)]

"""patchgen bisect: the search, its report, and what a TEST may be."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patchgen import bisect
from patchgen.errors import ExitCode, UserError
from patchgen.settings import PROJECT_ROOT as ROOT
from patchgen.settings import Settings


def _probe(results: list[str]) -> tuple[list[int], bisect.Probe]:
    seen: list[int] = []

    def probe(i: int) -> str:
        seen.append(i)
        return results[i]

    return seen, probe


@pytest.mark.parametrize("first", range(1, 11))
def test_search_finds_the_first_commit_that_changes_the_result(first: int) -> None:
    # Index 0 is the good commit (the base), 10 the tip.
    results = ["pass"] * first + ["fail"] * (11 - first)
    seen, probe = _probe(results)
    assert bisect.search(11, probe) == first
    assert seen[:2] == [0, 10]  # both ends first
    assert len(seen) <= 2 + 4  # log2(10) probes between them
    assert len(set(seen)) == len(seen)  # nothing probed twice


def test_no_change_between_the_ends_is_none_after_two_probes() -> None:
    seen, probe = _probe(["pass"] * 11)
    assert bisect.search(11, probe) is None and seen == [0, 10]


def test_any_other_result_than_the_good_one_counts_as_changed() -> None:
    """not built, no boot, crash: the search is for the first commit that
    does not give the good commit's result."""
    _, probe = _probe(["pass", "pass", "not built", "not built", "fail"])
    assert bisect.search(5, probe) == 2


def test_too_few_commits_is_a_usage_error() -> None:
    with pytest.raises(UserError, match="at least two"):
        bisect.search(1, lambda i: "pass")


def _report(first: int | None) -> bisect.BisectReport:
    steps = [bisect.Step(0, "a" * 40, "base", "pass", 1.0),
             bisect.Step(10, "b" * 40, "selftests: x", "fail", 2.0, "nf_nat_edemux.sh failed"),
             bisect.Step(6, "c" * 40, "netfilter: add generator", "fail", 3.0)]
    return bisect.BisectReport("debian-6.1.192", "nf_nat_edemux.sh", "a" * 40, "b" * 40,
                               steps, 6 if first else None,
                               "patchgen bisect nf_nat_edemux.sh --good x --bad y")


def test_report_names_the_first_patch_and_how_to_reproduce() -> None:
    text = bisect.format_report(_report(6))
    assert "first patch that changes nf_nat_edemux.sh: 6 cccccccccccc netfilter: add " \
        "generator (pass -> fail)" in text
    assert "reproduce: patchgen bisect nf_nat_edemux.sh --good x --bad y" in text
    assert _report(6).exit_code is ExitCode.OK
    none = _report(None)
    assert "no change" in bisect.format_report(none)
    assert none.exit_code is bisect.NO_CHANGE and bisect.NO_CHANGE not in (0, 2)


def test_report_round_trips_its_run_file() -> None:
    r = _report(6)
    assert bisect.BisectReport.from_json(json.loads(json.dumps(r.to_json()))) == r
    assert r.to_json()["schema_version"] == 1


def test_a_test_must_be_one_test_the_tree_or_patchgen_has() -> None:
    known = ["nft_meta.sh", "nf_nat_edemux.sh"]
    scripts = {"nf_hook_bpf.sh": ("dump", "churn"),
               "selftest/nf_hook_bpf.sh": ("drop_errno", "kallsyms")}
    bisect.check_test("nf_nat_edemux.sh", known, scripts)
    bisect.check_test("selftest/nf_hook_bpf.sh:drop_errno", known, scripts)
    bisect.check_test("nf_hook_bpf.sh", known, scripts)
    # A case the script does not have: both ends "not run", after two
    # builds and boots, read as "no change".
    with pytest.raises(UserError, match=r"nf_hook_bpf\.sh has no case 'drop_erno'") as exc:
        bisect.check_test("nf_hook_bpf.sh:drop_erno", known, scripts)
    assert "dump, churn" in (exc.value.hint or "")
    with pytest.raises(UserError, match="has no case ''"):
        bisect.check_test("selftest/nf_hook_bpf.sh:", known, scripts)
    with pytest.raises(UserError, match="unknown test") as exc:
        bisect.check_test("nft_mta.sh", known, scripts)
    assert (exc.value.hint or "").startswith("did you mean: nft_meta.sh")
    with pytest.raises(UserError, match="one test"):
        bisect.check_test("quick", known, scripts)
    with pytest.raises(UserError, match="one test"):
        bisect.check_test("nft_meta.sh,nf_nat_edemux.sh", known, scripts)


def test_a_name_both_the_tree_and_patchgen_have_is_offered_once() -> None:
    """"did you mean: nf_hook_bpf.sh, nf_hook_bpf.sh" (a helper's probe)."""
    with pytest.raises(UserError) as exc:
        bisect.check_test("nf hook.sh", ["nf_hook_bpf.sh", "nft_meta.sh"],
                          {"nf_hook_bpf.sh": ("dump",)})
    assert (exc.value.hint or "").count("nf_hook_bpf.sh") == 1


def test_the_cases_of_our_scripts_are_read_from_them() -> None:
    """Every case each script reports, and nothing else."""
    from patchgen import stages
    from patchgen.series import generate

    settings = Settings(ROOT / "no-cache", 1)
    runtime = generate.load_spec(ROOT / "templates").runtime
    cases = stages.script_cases(settings, runtime)
    checks, selftest = stages.script_names(runtime)
    assert {"jit_limit", "module_unload", "dump", "churn"} <= set(cases[checks])
    assert len(cases[checks]) == 14  # the plan: 1..14
    assert cases[selftest] == ("bpf_syscalls", "kallsyms", "drop_errno", "queue_bypass",
                               "sysctl_toggle", "netns_sharing", "many_hooks", "netns_exit")


def test_bisect_retries_below_zero_are_refused() -> None:
    from patchgen.commands.bisect import BisectRequest
    from patchgen.tree import TreeRequest

    with pytest.raises(UserError, match="--retries must be 0 or more, got -1"):
        BisectRequest(TreeRequest(), "nft_meta.sh", retries=-1)


def test_good_and_bad_the_same_commit_is_said_as_such(tmp_path: Path) -> None:
    """``--good X --bad X`` said "X is not an ancestor of X"."""
    import subprocess

    from patchgen.commands.bisect import commit_range
    from patchgen.git import Git

    repo = tmp_path / "r"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for n in (1, 2):
        subprocess.run(["git", "-C", str(repo), "commit", "-q", "--allow-empty", "-m", str(n)],
                       check=True)
    git = Git(repo)
    head = git.run("rev-parse", "HEAD").stdout.strip()
    first = git.run("rev-parse", "HEAD~1").stdout.strip()
    with pytest.raises(UserError, match=rf"--good and --bad are the same commit \({head[:12]}\)"):
        commit_range(git, head, head)
    with pytest.raises(UserError, match="is not an ancestor"):
        commit_range(git, head, first)
    assert commit_range(git, first, head) == [first, head]

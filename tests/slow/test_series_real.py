"""The real generated series on Debian's 6.1: generate, check every patch, test the tip."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.slow.conftest import USER, patchgen, tree_git

pytestmark = pytest.mark.slow
BRANCH = "patchgen/nf-hook-bpf"
FLORIAN = "Florian Westphal <fw@strlen.de>"


def _git(*args: str) -> str:
    return tree_git(*args).strip()


@pytest.fixture(scope="module")
def generated(checked_series: tuple[str, Path]) -> str:
    return checked_series[0]


def test_plan_writes_nothing_and_names_functions() -> None:
    before = _git("for-each-ref")
    res = patchgen("generate", "--plan")
    assert res.returncode == 0, res.stderr
    assert _git("for-each-ref") == before
    assert "[4/10] netfilter: make hook functions accept only one argument" in res.stdout
    assert "net/netfilter/nf_nat_proto.c" in res.stdout and "nf_nat_ipv4_fn" in res.stdout
    assert "[5/10] bpf: add bpf_prog_load_kernel() for programs the kernel generates" \
        in res.stdout
    assert "[9/10] netfilter: hook_jit: add prog cache" in res.stdout


def test_series_is_ten_commits_on_a_new_branch(generated: Any) -> None:
    base = _git("rev-parse", "patchgen/base")
    subjects = _git("log", "--format=%s", "--reverse", f"{base}..{BRANCH}").splitlines()
    assert len(subjects) == 10
    assert subjects[0] == "netfilter: nf_queue: carry index in hook state"
    assert subjects[8] == "netfilter: hook_jit: add prog cache"
    assert subjects[9] == "selftests: netfilter: test the generated base hook programs"
    # The tree's own branch and checkout are untouched.
    assert _git("symbolic-ref", "--short", "HEAD") == "patchgen/base"
    assert _git("status", "--porcelain", "--untracked-files=no") == ""
    # RFC patches are Florian's, signed off by him, then by the user.
    first = _git("log", "-1", "--format=%an <%ae>%n%cn <%ce>%n%B", f"{BRANCH}~9")
    assert first.splitlines()[:2] == [FLORIAN, USER]
    assert first.rstrip().endswith(f"Signed-off-by: {FLORIAN}\nSigned-off-by: {USER}")
    assert "Link: https://lore.kernel.org/all/20221005141309.31758-1-fw@strlen.de/" in first
    bpf = _git("log", "-1", "--format=%an <%ae>%n%B", f"{BRANCH}~5")
    assert bpf.startswith(USER) and FLORIAN not in bpf
    assert bpf.rstrip().endswith(f"Signed-off-by: {USER}")


def test_second_generate_keeps_the_branch(generated: Any) -> None:
    tip = _git("rev-parse", BRANCH)
    res = patchgen("generate", "--author", USER)
    assert res.returncode == 0, res.stderr
    assert "unchanged (same patches as before)" in res.stdout
    assert _git("rev-parse", BRANCH) == tip


@pytest.fixture(scope="module")
def checked(checked_series: tuple[str, Path]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((checked_series[1] / "check.json").read_text())
    return data


@pytest.fixture(scope="module")
def tip_run(checked: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tip")
    res = patchgen("test", "--rev", BRANCH, "--tests", "quick", "--output", str(out))
    assert res.returncode == 0, res.stdout[-3000:]
    return out


@pytest.fixture(scope="module")
def tip_report(tip_run: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tip_run / "report.json").read_text())
    return data


def test_every_patch_builds_cleanly_in_the_quick_matrix(checked: dict[str, Any]) -> None:
    patches = checked["patches"]
    assert len(patches) == 10 and checked["first_failure"] is None
    assert checked["configs"] == ["selftests", "nf_hook_bpf=n", "xfrm=n"]
    for p in patches:
        assert p["builds"] and all(b["ok"] for b in p["builds"]), p["subject"]
        assert p["warnings_added"] == [], p["subject"]
        assert p["checkpatch"]["errors"] == 0 and p["checkpatch"]["warnings"] == 0, \
            (p["subject"], p["checkpatch"]["findings"])
    # NF_HOOK_BPF=n is its own build once the option exists (patch 6 on).
    for p in patches[:5]:
        assert [b["variant"] for b in p["builds"]] == ["selftests", "xfrm=n"]
    for p in patches[5:]:
        assert [b["variant"] for b in p["builds"]] == ["selftests", "nf_hook_bpf=n", "xfrm=n"]
    # W=1 ran in every config on the C files the patch touches.
    assert all(b["w1_files"] for b in patches[3]["builds"])


def test_tip_passes_quick_selftests_in_both_switch_positions(tip_report: dict[str, Any]) -> None:
    kselftests = [t for t in tip_report["tests"] if t["variant"]]
    assert {t["variant"] for t in kselftests} == {"nf_hook_bpf=1", "nf_hook_bpf=0"}
    # Failslab and lockdep_on skip in this profile (asserted, with their
    # reason, in the next test); everything else passes.
    profile_skips = {"nf_hook_bpf.sh:failslab", "nf_hook_bpf.sh:lockdep_on"}
    bad = {t["name"]: t["outcome"] for t in tip_report["tests"]
           if t["outcome"] not in ("pass", "flaky")
           and not (t["name"] in profile_skips and t["outcome"] == "skip")}
    assert bad == {}


def test_generated_programs_are_listed_used_and_shared(tip_report: dict[str, Any]) -> None:
    checks = {t["name"]: t for t in tip_report["tests"] if t["name"].startswith("nf_hook_bpf")}
    assert set(checks) == {f"nf_hook_bpf.sh:{n}" for n in (
        "programs_exist", "datapath_bpf", "datapath_slow", "programs_shared",
        "bridge_prerouting", "dump", "churn_traffic", "churn", "module_unload", "jit_limit",
        "failslab", "perf_names", "audit_balanced", "lockdep_on")}
    # Failslab and lockdep need a kernel with them (profile lockdep); this
    # tier builds the selftests profile.
    for name in ("failslab", "lockdep_on"):
        case = checks.pop(f"nf_hook_bpf.sh:{name}")
        assert case["outcome"] == "skip" and "profile lockdep" in case["attempts"][0]["detail"]
    assert all(t["outcome"] == "pass" for t in checks.values())
    # The series' own selftest, the bpf(2) walk of every generated program first.
    own = {t["name"]: t for t in tip_report["tests"] if t["name"].startswith("selftest/")}
    assert set(own) == {f"selftest/nf_hook_bpf.sh:{n}" for n in (
        "bpf_syscalls", "kallsyms", "drop_errno", "queue_bypass", "sysctl_toggle",
        "netns_sharing", "many_hooks", "netns_exit")}
    assert all(t["outcome"] == "pass" for t in own.values()), \
        {n: t["outcome"] for n, t in own.items()}
    assert "TEST_RUN -> EINVAL (expected: error)" in \
        own["selftest/nf_hook_bpf.sh:bpf_syscalls"]["attempts"][0]["output"]
    assert tip_report["guest"]["boots"][0]["switch_default"] in ("0", "1")
    # Real observables, not empty output: the kprobe counts are in the log.
    assert "nf_hook_slow() calls during 20 pings: 0" in \
        checks["nf_hook_bpf.sh:datapath_bpf"]["attempts"][0]["output"]
    assert "100 chains added, 3 left" in \
        checks["nf_hook_bpf.sh:churn_traffic"]["attempts"][0]["output"]
    # Past bpf_jit_limit an unprivileged namespace got no program, and its
    # ruleset worked (patch 6's message says so).
    assert "past it: 0 new program(s)" in \
        checks["nf_hook_bpf.sh:jit_limit"]["attempts"][0]["output"]
    # The module was built, loaded and unloaded every round, and its hooks ran.
    assert "module unload: 20 rounds (all done: 1)" in \
        checks["nf_hook_bpf.sh:module_unload"]["attempts"][0]["output"]
    # Bridge prerouting walks its hooks itself: no program for it (patch 6).
    assert "three bridge chains add nf_hook programs: at prerouting 0, at input 1" in \
        checks["nf_hook_bpf.sh:bridge_prerouting"]["attempts"][0]["output"]


def test_html_report_renders_in_headless_chromium(checked: dict[str, Any],
                                                  tip_report: dict[str, Any],
                                                  tmp_path: Path) -> None:
    from patchgen import html
    from patchgen.check import CheckReport
    from patchgen.report import Report
    from patchgen.series.render import Renderer
    from patchgen.settings import PROJECT_ROOT

    view = html.RunView("t", tip_report["metadata"]["tree"], check=CheckReport.from_json(checked),
                        report=Report.from_json(tip_report))
    page = html.write(tmp_path / "index.html", Renderer(PROJECT_ROOT / "templates"), "real",
                      [view])
    argv = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*argv, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert "netfilter: hook_jit: add prog cache" in dom.stdout
    assert "nf_hook_bpf.sh:datapath_bpf" in dom.stdout
    shot = tmp_path / "report.png"
    subprocess.run([*argv, f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000


def test_the_runtime_checks_mark_their_cases_in_the_kernel_log(tip_run: Path) -> None:
    """A kernel warning is blamed on the case during which it came
    (kselftest.run_script): that needs every case's end mark on the
    console of the guest that ran it."""
    consoles = "".join(p.read_text(errors="replace").replace("\r", "")
                       for p in tip_run.glob("boot-*/console.log"))
    names = ("programs_exist", "datapath_bpf", "datapath_slow", "programs_shared",
             "bridge_prerouting", "dump", "churn_traffic", "churn", "module_unload",
             "jit_limit", "failslab", "perf_names", "audit_balanced", "lockdep_on")
    for n, name in enumerate(names, 1):
        assert f"patchgen-case-done: {n} {name}\n" in consoles, name

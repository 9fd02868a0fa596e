"""Pure parts of 'patchgen prep'."""

from __future__ import annotations

from pathlib import Path

from patchgen.check import BuildCheck, CheckpatchResult, CheckReport, PatchCheck
from patchgen.prep import (
    add_headers,
    check_line,
    format_patch_argv,
    selftest_lines,
    send_email_argv,
    subject_prefix,
)
from patchgen.report import Report
from patchgen.results import Attempt, Outcome, TestResult


def test_subject_prefix() -> None:
    assert subject_prefix(True, "nf-next") == "RFC PATCH nf-next"
    assert subject_prefix(False, None) == "PATCH"


def test_format_patch_argv_v1_and_v3() -> None:
    v1 = format_patch_argv(Path("/o"), "b" * 40, "t" * 40, 1, "RFC PATCH nf-next", None)
    assert v1 == ["format-patch", "--cover-letter", "--thread=shallow", f"--base={'b' * 40}",
                  "--subject-prefix=RFC PATCH nf-next", "-o", "/o", f"{'b' * 40}..{'t' * 40}"]
    v3 = format_patch_argv(Path("/o"), "b", "t", 3, "PATCH", "ob..ot")
    assert "-v3" in v3 and "--range-diff=ob..ot" in v3


def test_send_email_argv_dry_run_uses_file_headers() -> None:
    argv = send_email_argv([Path("/o/0000.patch")], "A <a@x>", dry_run=True)
    assert "--dry-run" in argv and argv[-1] == "/o/0000.patch"
    assert "--from=A <a@x>" in argv
    assert not any(a.startswith(("--to=", "--cc=")) for a in argv)
    assert "--dry-run" not in send_email_argv([Path("/x")], "A <a@x>", dry_run=False)


def test_add_headers_before_subject(tmp_path: Path) -> None:
    p = tmp_path / "0001.patch"
    p.write_text("From 1 Mon\nFrom: A <a@x>\nDate: d\nSubject: [PATCH] x\n\nbody\n")
    add_headers(p, ["M <m@x>", "N <n@x>"], ["list@x"])
    text = p.read_text()
    assert "Date: d\nTo: M <m@x>,\n    N <n@x>\nCc: list@x\nSubject: [PATCH] x\n" in text


def test_result_lines_come_from_reports() -> None:
    def built(*variants: str) -> list[BuildCheck]:
        return [BuildCheck(v, True, 1.0, 1) for v in variants]

    clean = CheckpatchResult(0, 0, 0, [])
    check = CheckReport("t", "b", "br", [
        PatchCheck(1, "s1", "one", [], built("selftests", "xfrm=n"), clean),
        PatchCheck(2, "s2", "two", [], built("selftests", "nf_hook_bpf=n", "xfrm=n"), clean),
    ], configs=["selftests", "nf_hook_bpf=n", "xfrm=n"])
    assert check_line(check) == ("each of the 2 patches builds (configs: selftests, "
                                 "nf_hook_bpf=n, xfrm=n); W=1: 0 new warnings; "
                                 "checkpatch --strict: 0 errors, 0 warnings")

    def test(name: str, variant: str, outcome: Outcome, expected: Outcome) -> TestResult:
        return TestResult(name, outcome, (Attempt(outcome, 1.0, 0, ""),), expected,
                          variant=variant)

    report = Report("patchgen test", "now", tests=[
        test("a.sh", "nf_hook_bpf=1", Outcome.PASS, Outcome.PASS),
        test("b.sh", "nf_hook_bpf=1", Outcome.FAIL, Outcome.FAIL),
        test("a.sh", "nf_hook_bpf=0", Outcome.FAIL, Outcome.PASS),
    ])
    assert selftest_lines(report) == [
        "netfilter selftests with nf_hook_bpf=1: 1 fail, 1 pass (as on the unpatched tree: "
        "b.sh)",
        "netfilter selftests with nf_hook_bpf=0: 1 fail; regressions: a.sh",
    ]


def _commit(repo: Path, author: str, body: str) -> str:
    import subprocess

    name, email = author[:-1].split(" <")
    env = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
           "GIT_COMMITTER_NAME": "U Ser", "GIT_COMMITTER_EMAIL": "u@ser.dev",
           "PATH": "/usr/bin:/bin", "HOME": str(repo)}
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "--allow-empty", "-m", body],
                   check=True, env=env)
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()


def test_signoff_chain_is_author_then_sender(tmp_path: Path) -> None:
    import subprocess

    from patchgen.git import Git, Identity
    from patchgen.prep import _signoffs

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    fw, me = "Florian Westphal <fw@strlen.de>", "U Ser <u@ser.dev>"
    good = _commit(tmp_path, fw, f"x: a\n\nbody\n\nSigned-off-by: {fw}\nSigned-off-by: {me}\n")
    mine = _commit(tmp_path, me, f"x: b\n\nbody\n\nSigned-off-by: {me}\n")
    sender = Identity("U Ser", "u@ser.dev")
    assert _signoffs(Git(tmp_path), [good, mine], sender).ok
    # Florian's patch without the sender's sign-off: not carried properly.
    only_fw = _commit(tmp_path, fw, f"x: c\n\nbody\n\nSigned-off-by: {fw}\n")
    check = _signoffs(Git(tmp_path), [good, only_fw], sender)
    assert not check.ok and "the last Signed-off-by is not yours" in check.detail
    # A local test run's sign-off never goes out.
    local = _commit(tmp_path, "patchgen test run <test-run@patchgen.invalid>",
                    "x: d\n\nbody\n\nSigned-off-by: patchgen test run "
                    "<test-run@patchgen.invalid>\n")
    check = _signoffs(Git(tmp_path), [local], sender)
    assert not check.ok and "a test run without a git identity" in check.detail
    # No sign-off of the author at all.
    none = _commit(tmp_path, fw, f"x: e\n\nbody\n\nSigned-off-by: {me}\n")
    check = _signoffs(Git(tmp_path), [none], sender)
    assert not check.ok and "no Signed-off-by of its author" in check.detail

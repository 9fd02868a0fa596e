"""What reaches the user when a path is wrong: a line, an exit code, no traceback."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from patchgen.cli import main
from patchgen.errors import ExitCode, UserError
from tests.unit.test_durations import report, tip_tests, write


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return err


def test_a_cache_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.test_merge import shard_report
    from tests.unit.test_merge import write as write_shards

    (tmp_path / "afile").write_text("x")
    one, two = write_shards(tmp_path, shard_report(1), shard_report(2))
    code = main(["--cache", str(tmp_path / "afile"), "merge", str(one), str(two)])
    assert code == ExitCode.INFRA_FAILURE
    assert "patchgen: error: Not a directory: " in _err(capsys)


def test_a_read_only_place_for_the_output(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    run = write(tmp_path, "r", report(tip_tests()))

    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise OSError(30, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    code = main(["--cache", str(tmp_path / "c"), "durations", str(run),
                 "--output", str(tmp_path / "ro" / "d.toml")])
    assert code == ExitCode.INFRA_FAILURE
    assert "patchgen: error: Read-only file system: " in _err(capsys)


@pytest.mark.parametrize("content, says", [
    ("not [ toml", "not a durations file"),
    ("tcg = 5\n", "one table per accelerator"),
    ('default = "abc"\n', "not a number of seconds"),
    ('[tcg]\n"1/a.sh" = "x"\n', "not a number of seconds"),
    ('[tcg]\n"1/a.sh" = -3\n', "not a number of seconds"),
])
def test_a_broken_durations_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 content: str, says: str) -> None:
    out = tmp_path / "d.toml"
    out.write_text(content)
    run = write(tmp_path, "r", report(tip_tests()))
    code = main(["--cache", str(tmp_path / "c"), "durations", str(run), "--output", str(out)])
    assert code == ExitCode.USER_ERROR
    assert says in _err(capsys)
    assert out.read_text() == content


def test_durations_output_naming_a_directory(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    run = write(tmp_path, "r", report(tip_tests()))
    code = main(["--cache", str(tmp_path / "c"), "durations", str(run), "--dry-run",
                 "--output", str(tmp_path)])
    assert code == ExitCode.USER_ERROR
    assert "a directory" in _err(capsys)


def test_measured_seconds_that_are_no_seconds_are_refused(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    bad = tip_tests()
    bad[0] = type(bad[0])(bad[0].name, bad[0].outcome,
                          (type(bad[0].attempts[0])(bad[0].outcome, math.inf, 0, ""),),
                          variant=bad[0].variant)
    run = write(tmp_path, "r", report(bad))
    code = main(["--cache", str(tmp_path / "c"), "durations", str(run), "--output",
                 str(tmp_path / "d.toml")])
    assert code == ExitCode.USER_ERROR
    # Refused as the run file is read (no run file carries an infinite
    # or NaN number), before durations looks at it.
    assert "'seconds' is inf, not a finite number" in _err(capsys)
    assert not (tmp_path / "d.toml").exists()


def test_a_report_that_is_not_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "r"
    d.mkdir()
    (d / "report.json").write_bytes(b"\xff\xfe\x00garbage")
    for argv in (["merge", str(d)], ["durations", str(d), "--dry-run"]):
        assert main(["--cache", str(tmp_path / "c"), *argv]) != ExitCode.OK
        assert "not UTF-8" in _err(capsys)


@pytest.mark.parametrize("argv, says", [
    (["generate", "--upto", "0"], "--upto 0: the number of patches to make, 1 or more"),
    (["generate", "--upto", "-5"], "--upto -5: the number of patches to make, 1 or more"),
    (["generate", "--date", "not a date"], "--date 'not a date': not a date"),
    (["run", "--date", "yesterday-ish"], "--date 'yesterday-ish': not a date"),
    # Python read these, git did not (exit 4, after the series was computed) ...
    (["generate", "--date", "1900-01-01"], "--date '1900-01-01': not between 1970 and 2099"),
    (["generate", "--date", "2106-02-08"], "--date '2106-02-08': not between 1970 and 2099"),
    # ... or git read it otherwise: commits dated 2001-01-01.
    (["generate", "--date", "0001-01-01T00:00:00"], "not between 1970 and 2099"),
    (["generate", "--author", "Ada <ada@kernel.org>, Bob <b@kernel.org>"],
     "--author must look like 'Name <email>'"),
    (["generate", "--author", "Ada\nEve <ada@kernel.org>"], "--author must look like"),
])
def test_generate_options_are_checked_before_any_work(fakenet: Path, tmp_path: Path,
                                                      argv: list[str], says: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "c"
    author = [] if "--author" in argv else ["--author", "Ada Dev <ada@kernel.org>"]
    code = main(["--cache", str(cache), *argv, "--tree", str(fakenet), *author])
    assert code == ExitCode.USER_ERROR
    assert says in _err(capsys)
    assert not (cache / "trees").exists() and not (cache / "runs").exists()


@pytest.mark.parametrize(("given", "epoch"), [
    ("2026-11-30T12:00:00+01:00", "@1796036400 +0100"),
    ("2026-11-30", "@1795996800 +0000"),  # no zone: UTC
    ("20261130", "@1795996800 +0000"),  # what git took for another date
    ("2026-W48-1", "@1795392000 +0000"),  # Monday of week 48
])
def test_dates_go_to_git_as_python_read_them(given: str, epoch: str) -> None:
    from patchgen.git import git_date

    assert git_date(given) == epoch


def test_generate_never_replaces_a_branch_it_did_not_write(
        fakenet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """'generate --branch mywork' replaced the user's commits (a helper's probe);
    a branch patchgen wrote, even one reset to an earlier series, it may replace."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(fakenet), *args], capture_output=True,
                              text=True, check=True).stdout.strip()

    git("branch", "mywork")
    (fakenet / "precious.txt").write_text("mine\n")
    git("add", "precious.txt")
    blob_tree = git("write-tree")
    mine = git("commit-tree", blob_tree, "-p", "mywork", "-m", "precious")
    git("update-ref", "refs/heads/mywork", mine)
    git("reset", "-q", "--hard", "HEAD")
    (fakenet / "precious.txt").unlink(missing_ok=True)
    cache = tmp_path / "c"
    argv = ["--cache", str(cache), "generate", "--tree", str(fakenet), "--author",
            "Ada Dev <ada@kernel.org>"]
    assert main([*argv, "--branch", "mywork"]) == ExitCode.USER_ERROR
    err = _err(capsys)
    assert f"--branch mywork holds commits patchgen did not write ({mine[:12]} precious)" in err
    assert git("rev-parse", "mywork") == mine
    # Its own branch: written, written again with a new date, reset to the
    # first and written again.
    assert main([*argv, "--branch", "ours", "--date", "2026-01-01"]) == ExitCode.OK
    first = git("rev-parse", "ours")
    assert main([*argv, "--branch", "ours", "--date", "2026-01-02"]) == ExitCode.OK
    assert git("rev-parse", "ours") != first
    git("update-ref", "refs/heads/ours", first)
    assert main([*argv, "--branch", "ours", "--date", "2026-01-03"]) == ExitCode.OK


@pytest.mark.parametrize("argv", [["build"], ["boot", "--", "true"]])
def test_an_unknown_revision_leaves_no_run_directory(
        fakenet: Path, tmp_path: Path, argv: list[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    """An empty runs/<stamp>-build/ was left, and runs/latest pointed at it."""
    cache = tmp_path / "c"
    code = main(["--cache", str(cache), argv[0], "--tree", str(fakenet), "--rev", "nonexist",
                 *argv[1:]])
    assert code == ExitCode.USER_ERROR
    assert "unknown revision" in _err(capsys)
    assert not list((cache / "runs").glob("*"))


def test_a_debian_tree_in_the_cache_is_patchgen_s_own(fakenet: Path, tmp_path: Path) -> None:
    """Its branches may come from a patchgen that left no reflog message (a CI
    cache restored): only a user's --tree is guarded."""
    import dataclasses
    import subprocess

    from patchgen import settings, stages
    from patchgen.progress import null_progress
    from patchgen.tree import TreeRequest, prepare

    subprocess.run(["git", "-C", str(fakenet), "branch", "patchgen/nf-hook-bpf"], check=True)
    tree = prepare(TreeRequest(path=fakenet), settings.load(tmp_path / "c"), null_progress())
    with pytest.raises(UserError, match="holds commits patchgen did not write"):
        stages.check_branch(tree, "patchgen/nf-hook-bpf", "patchgen/nf-hook-bpf")
    cached = dataclasses.replace(tree, origin="debian:linux-source-6.1 6.1.192-3")
    stages.check_branch(cached, "patchgen/nf-hook-bpf", "patchgen/nf-hook-bpf")


def test_upto_past_the_series_is_refused(fakenet: Path, tmp_path: Path) -> None:
    from patchgen.errors import UserError
    from tests.series_helpers import plan_for

    with pytest.raises(UserError, match="--upto 11: the series has patches 1 to 10"):
        plan_for(fakenet, tmp_path / "cache", upto=11)


def test_prep_of_a_branch_without_the_series(fakenet: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The user's checked-out branch, no commits over the base: an IndexError once."""
    import subprocess

    monkeypatch.setenv("GIT_COMMITTER_NAME", "Ada Dev")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "ada@kernel.org")
    subprocess.run(["git", "-C", str(fakenet), "branch", "empty"], check=True)
    code = main(["--cache", str(tmp_path / "c"), "prep", "--tree", str(fakenet),
                 "--branch", "empty"])
    assert code == ExitCode.USER_ERROR
    assert "branch empty has no commits on top of" in _err(capsys)


@pytest.mark.parametrize(("option", "value", "says"), [
    ("--to", "Eve <e@x.org>\nBcc: spy@evil.org", "a control character"),
    ("--cc", "x@y.org\rSubject: hi", "a control character"),
    ("--to", "notanaddress", "not a mail address"),
    ("--to", "", "not a mail address"),
    ("--cc", " ", "not a mail address"),
    ("--cc", "a@b.org, c@d.org", "one address per --cc"),
])
def test_prep_recipients_must_be_one_mail_address_each(
        fakenet: Path, tmp_path: Path, option: str, value: str, says: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A newline in --to put a Bcc: header into every patch and the mbox."""
    cache = tmp_path / "c"
    code = main(["--cache", str(cache), "prep", "--tree", str(fakenet), option, value])
    assert code == ExitCode.USER_ERROR
    assert says in _err(capsys)
    assert not cache.exists()


def test_send_without_a_terminal_is_refused_before_any_work(
        fakenet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """It said "not a terminal; confirm with --yes", then "not sent", and
    exited 0: a CI job that meant to send saw success."""
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    cache = tmp_path / "c"
    code = main(["--cache", str(cache), "prep", "--send", "--tree", str(fakenet)])
    assert code == ExitCode.USER_ERROR
    assert "add --yes to send without asking" in _err(capsys)
    assert not cache.exists()


@pytest.mark.parametrize("selection", ["quick,", " quick", "quick, ,"])
def test_a_tier_with_a_stray_comma_or_space_is_the_tier(selection: str) -> None:
    from patchgen import kselftest

    cat = kselftest.Catalogue(300, {}, {"quick": ("a.sh",)})
    kselftest.check_selection(cat, ["a.sh", "b.sh"], selection)  # no "unknown test 'quick'"
    assert [p.name for p in kselftest.select(cat, ("a.sh", "b.sh"), selection)] == ["a.sh"]


def test_check_refuses_an_empty_configs_list_and_bad_patches_first(
        fakenet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "c"
    assert main(["--cache", str(cache), "check", "--tree", str(fakenet), "--configs", ","]) \
        == ExitCode.USER_ERROR
    assert "--configs ',': no names" in _err(capsys)
    # No series on the branch: bad input (it said "build failure", exit 3), and no run
    # directory made for it.
    import subprocess

    subprocess.run(["git", "-C", str(fakenet), "branch", "patchgen/nf-hook-bpf"], check=True)
    assert main(["--cache", str(cache), "check", "--tree", str(fakenet)]) == ExitCode.USER_ERROR
    assert "branch patchgen/nf-hook-bpf has no commits on top of" in _err(capsys)
    assert not list((cache / "runs").glob("*-check"))


@pytest.mark.parametrize("argv", [["check"], ["bench"], ["bisect", "nft_meta.sh"],
                                  ["prep"]])
@pytest.mark.parametrize("branch", ["absent", "empty"])
def test_every_command_of_the_series_says_to_generate_it_first(
        fakenet: Path, tmp_path: Path, argv: list[str], branch: str,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Only check said what to do; bench, bisect and prep said "unknown revision"."""
    import subprocess

    # prep wants a real identity before it looks at the branch.
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Ada Dev")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "ada@kernel.org")

    if branch == "empty":
        subprocess.run(["git", "-C", str(fakenet), "branch", "patchgen/nf-hook-bpf"],
                       check=True)
    cache = tmp_path / "c"
    code = main(["--cache", str(cache), *argv[:1], "--tree", str(fakenet), *argv[1:]])
    assert code == ExitCode.USER_ERROR
    err = _err(capsys)
    assert ("unknown revision" in err) if branch == "absent" else \
        ("branch patchgen/nf-hook-bpf has no commits on top of" in err)
    assert "hint: run patchgen generate first" in err
    assert not list((cache / "runs").glob("*"))


@pytest.mark.parametrize("argv, says", [
    (["bench", "--retpolines", "bogus"], "--retpolines takes retpoline, off, got bogus"),
    (["bench", "--hooks", "x"], "--hooks takes numbers separated by commas"),
    (["bench", "--reps", "0"], "--reps must be 1 or more, got 0"),
    (["bench", "--hooks", "0"], "--hooks takes hook counts from 1 to 64, got 0"),
    (["bench", "--hooks", "65"], "--hooks takes hook counts from 1 to 64, got 65"),
    (["bench", "--hooks", ""], "--hooks names no hook count"),
    (["bench", "--overflow", "-1"], "--overflow takes hook counts from 1 to 64, got -1"),
    (["bench", "--ctl-hooks", "65"], "--ctl-hooks takes hook counts from 0 to 64, got 65"),
    (["bench", "--cpi", "0"], "--cpi must be a positive number, got 0.0"),
    (["bench", "--cpi", "nan"], "--cpi must be a positive number, got nan"),
    (["bench", "--penalty", "-3"], "--penalty must be 0 or more, got -3.0"),
    (["bench", "--penalty", "inf"], "--penalty must be 0 or more, got inf"),
    (["bench", "--retpolines", "", "--no-control"],
     "nothing to measure: --retpolines '' and --no-control"),
    (["bench", "--configs", "bogus"], "--configs takes none, filter, ct, flowtable, got bogus"),
    (["bench", "--ctl-base", "--no-control"], "--ctl-base measures the control plane"),
    (["bench", "--timing", "icount", "--accel", "kvm"], "--timing icount needs TCG"),
    (["bench", "--against", "EMPTY"], "not JSON"),
    (["bench", "--against", "DIR"], "cannot read"),
    (["bench", "--against", "/no/such/bench.json"], "--against /no/such/bench.json: no such"),
    (["bench", "--memory", "banana"], "--memory must be a size like 2G"),
    (["boot", "--memory", "banana", "--", "true"], "--memory must be a size like 2G"),
    (["boot", "--cpus", "0", "--", "true"], "--cpus must be 1 or more, got 0"),
    (["boot", "--memory", "1K", "--", "true"], "--memory 1K: a guest needs 256M or more"),
    (["boot", "--memory", "99999T", "--", "true"], "--memory 99999T: more than this host has"),
    (["bench", "--memory", "99999T"], "--memory 99999T: more than this host has"),
    (["boot", "--cpus", "100000", "--", "true"], "--cpus 100000: more than 4 per host CPU"),
    (["boot", "--", ""], "no command to run in the guest"),
    (["boot", "--", " "], "no command to run in the guest"),
    (["boot", "--timeout", "-1", "--", "true"], "--timeout must be 1 or more seconds"),
])
def test_bench_and_boot_options_are_checked_before_the_build(
        fakenet: Path, tmp_path: Path, argv: list[str], says: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    """They were read only after the kernel was built (a dirty tree said so first)."""
    cache = tmp_path / "c"
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "run").mkdir()
    argv = [{"EMPTY": str(tmp_path / "empty.json"), "DIR": str(tmp_path / "run")}.get(a, a)
            for a in argv]
    code = main(["--cache", str(cache), *argv[:1], "--tree", str(fakenet), *argv[1:]])
    assert code == ExitCode.USER_ERROR
    assert says in _err(capsys)
    assert not cache.exists()


def test_bench_takes_the_empty_lists_its_help_offers() -> None:
    """--retpolines '' (the control plane only), --configs '' and --hooks '' then."""
    from patchgen.cli import _names_or_none
    from patchgen.commands.bench import BenchRequest
    from patchgen.errors import UserError
    from patchgen.tree import TreeRequest

    assert _names_or_none("--retpolines", "") == ()
    req = BenchRequest(TreeRequest(), mitigations=(), configs=(), hook_counts=())
    assert req.control and not req.mitigations
    with pytest.raises(UserError, match="no names"):
        _names_or_none("--retpolines", ",")


@pytest.mark.parametrize("command", [["test"], ["boot", "--", "true"], ["bench"]])
def test_a_missing_qemu_is_said_before_the_build(fakenet: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 command: list[str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    real = shutil.which
    monkeypatch.setattr(shutil, "which",
                        lambda tool, *a, **k: None if tool == "qemu-system-x86_64"
                        else real(tool, *a, **k))
    cache = tmp_path / "c"
    code = main(["--cache", str(cache), command[0], "--tree", str(fakenet), *command[1:]])
    assert code == ExitCode.INFRA_FAILURE
    assert "qemu-system-x86_64" in _err(capsys)
    assert not (cache / "build").exists() and not (cache / "runs").exists()


def test_a_tree_named_with_a_space_or_colon_gets_an_id_kbuild_takes(tmp_path: Path) -> None:
    import shutil
    import subprocess

    from patchgen import settings
    from patchgen.progress import null_progress
    from patchgen.tree import TreeRequest, prepare

    tree = tmp_path / "my kernel:v2"
    shutil.copytree(Path(__file__).parents[1] / "fakenet", tree)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(["git", "-C", str(tree), *args], check=True)
    found = prepare(TreeRequest(path=tree), settings.load(tmp_path / "c"), null_progress())
    assert " " not in found.id and ":" not in found.id and found.id.startswith("git-my_kernel_v2-")


def test_build_jobs_below_one_are_refused(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--cache", str(tmp_path / "c"), "-j", "-1", "durations", str(tmp_path)]) \
        == ExitCode.USER_ERROR
    assert "-j/--jobs must be 1 or more, got -1" in _err(capsys)


def test_a_cache_path_kbuild_cannot_build_in_is_said_before_the_build(
        fakenet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from patchgen import kconfig, settings, stages
    from patchgen.errors import UserError
    from patchgen.progress import null_progress
    from patchgen.tree import TreeRequest, prepare

    s = settings.load(tmp_path / "my cache")
    tree = prepare(TreeRequest(path=fakenet), s, null_progress())
    with pytest.raises(UserError, match="space or colon"):
        stages.stage_build(tree, tree.base, kconfig.get_profile(s.kernel_config_dir, "selftests"),
                           s, null_progress(), tmp_path)

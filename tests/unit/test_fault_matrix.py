"""The fault matrix: what a user meets when something is wrong, row by row.

Each row runs the real CLI (``python -m patchgen``, in its own session, as
a user would) against small trees in a temporary directory, with a fault
arranged by ``setup``, and asserts

* the exit code (README "Exit codes"),
* the message on stderr (and no Python traceback),
* that nothing was lost or left: the row's own ``intact`` check, no
  patchgen temporary directory left behind, no process of the run still
  alive.

The next fault found is a new row here and a new line in README's
"## Faults" table (test_readme_lists_every_row keeps them together).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import shutil
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from patchgen.errors import ExitCode
from patchgen.outputs import MARKER

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
BRANCH = "patchgen/nf-hook-bpf"
COMMITTER = {"GIT_COMMITTER_NAME": "Ada Dev", "GIT_COMMITTER_EMAIL": "ada@kernel.org"}


@dataclass
class Env:
    """One row's world: a temporary HOME, cache, TMPDIR and trees."""

    tmp: Path
    vars: dict[str, str]
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def cache(self) -> Path:
        return self.tmp / "cache"

    def git(self, repo: Path, *args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              check=True, env=self.vars).stdout

    def tree(self, name: str = "fakenet") -> Path:
        """A copy of tests/<name> as a git repository with one commit."""
        dst = self.tmp / name
        if not dst.exists():
            shutil.copytree(TESTS / name, dst)
            for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
                self.git(dst, *args)
        return dst


Setup = Callable[[Env], list[str]]
Check = Callable[[Env], None]


def _nothing(env: Env) -> None:
    pass


@dataclass(frozen=True)
class Row:
    id: str
    fault: str  # what goes wrong (README)
    setup: Setup  # arranges the fault; returns the argv after "patchgen --cache C"
    code: ExitCode
    message: str  # on stderr
    intact: Check = _nothing  # nothing lost, nothing left
    interrupt_when: Callable[[Env], bool] | None = None  # Ctrl-C once this is true
    timeout: float = 120
    stream: str = "stderr"  # where the message is
    tty: bool = False  # a terminal that nobody types into, as the controlling terminal
    delays: tuple[float, ...] = (0.0,)  # interrupt rows: seconds after interrupt_when, each a run
    signal: int = signal.SIGINT  # interrupt rows: what is sent...
    group: bool = True  # ...to the whole group (a terminal's Ctrl-C), or patchgen alone (kill)
    # In this process, every stage that does work a tripwire: for 'test' and 'run',
    # which must never build or boot here.
    inproc: bool = False


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run_patchgen(env: Env, argv: list[str], *, timeout: float = 120,
                 interrupt_when: Callable[[Env], bool] | None = None, tty: bool = False,
                 delay: float = 0.0, how: tuple[int, bool] = (signal.SIGINT, True)) -> Ran:
    """The CLI in a session of its own, as from a terminal; afterwards the
    session must be empty (no child of the run outlives it)."""
    with contextlib.ExitStack() as stack:
        stdin: int = subprocess.DEVNULL
        if tty:
            master, slave = pty.openpty()
            stack.callback(os.close, master)
            stack.callback(os.close, slave)
            stdin = slave
        child = subprocess.Popen(
            [sys.executable, "-m", "patchgen", "--cache", str(env.cache), *argv], cwd=ROOT,
            env=env.vars, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True, preexec_fn=_claim_tty if tty else None)
        return _wait(env, child, timeout, interrupt_when, delay, how)


def _claim_tty() -> None:
    """In the child, after setsid: the pty on stdin becomes its controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _wait(env: Env, child: subprocess.Popen[str], timeout: float,
          interrupt_when: Callable[[Env], bool] | None, delay: float,
          how: tuple[int, bool]) -> Ran:
    try:
        if interrupt_when is not None:
            _interrupt(env, child, interrupt_when, timeout, delay, how)
        out, err = child.communicate(timeout=timeout)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    assert _session_empty(child.pid), f"processes of the run are still alive:\n{err}"
    return Ran(child.returncode, out, err)


def _interrupt(env: Env, child: subprocess.Popen[str], when: Callable[[Env], bool],
               timeout: float, delay: float, how: tuple[int, bool]) -> None:
    """Ctrl-C: SIGINT to the whole foreground group, as a terminal sends it;
    or a signal to patchgen alone ('kill PID', a CI job's time limit)."""
    sig, group = how
    deadline = time.monotonic() + timeout
    while child.poll() is None and time.monotonic() < deadline:
        if when(env):
            time.sleep(delay)
            assert child.poll() is None, "the run ended before the interrupt"
            (os.killpg if group else os.kill)(child.pid, sig)
            return
        time.sleep(0.001)
    raise AssertionError("the moment to interrupt never came")


def _session_empty(sid: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        alive = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _sid(p) == sid]
        if not alive:
            return True
        time.sleep(0.05)
    return False


def _sid(proc_dir: Path) -> int | None:
    try:
        stat = (proc_dir / "stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp session ...": comm may hold spaces.
    return int(stat.rsplit(")", 1)[1].split()[4])


def _no_cache_work(env: Env) -> None:
    """Refused before any work: no tree unpacked, nothing downloaded."""
    assert not (env.cache / "trees").exists()
    assert not (env.cache / "downloads").exists()


# -- the rows ----------------------------------------------------------------------------
def _no_git(env: Env) -> list[str]:
    tree = env.tree("fakelinux")
    empty = env.tmp / "empty-bin"
    empty.mkdir()
    env.vars["PATH"] = str(empty)
    return ["tree", "--tree", str(tree)]


def _a_file_as_tree(env: Env) -> list[str]:
    f = env.tmp / "passwd"
    f.write_text("root:x:0:0::/root:/bin/sh\n")
    return ["tree", "--tree", str(f)]


def _fake_tool(env: Env, name: str, script: str) -> None:
    """``name`` on PATH before the real one."""
    bin_dir = env.tmp / "fake-bin"
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(0o755)
    env.vars["PATH"] = f"{bin_dir}:{env.vars['PATH']}"


def _disk_full(env: Env) -> list[str]:
    if not Path("/usr/src/linux-source-6.1.tar.xz").exists():
        pytest.skip("needs Debian's linux-source-6.1 in /usr/src")
    _fake_tool(env, "tar", "echo 'tar: linux-source-6.1/Makefile: Cannot write: No space left "
               "on device' >&2\nexit 2\n")
    return ["tree", "--version", "6.1"]


def _no_tree_left(env: Env) -> None:
    assert list((env.cache / "trees").iterdir()) == []


def _dirty(env: Env) -> list[str]:
    tree = env.tree()
    (tree / "Makefile").write_text((tree / "Makefile").read_text() + "# mine\n")
    env.notes["tree"] = str(tree)
    return ["generate", "--plan", "--tree", str(tree)]


def _dirty_kept(env: Env) -> None:
    tree = Path(env.notes["tree"])
    assert (tree / "Makefile").read_text().endswith("# mine\n")
    assert env.git(tree, "branch", "--list", "patchgen/*") == ""


def _series(env: Env, branches: tuple[str, ...] = (BRANCH,)) -> Path:
    """fakenet with the series committed on ``branches``; a real committer identity."""
    from patchgen.series import generate
    from tests.series_helpers import plan_for

    tree = env.tree()
    for b in branches:
        generate.commit(plan_for(tree, env.tmp / "plan-cache"), b, "2026-01-01T00:00:00+0000")
    env.vars.update(COMMITTER)
    env.notes["tree"] = str(tree)
    return tree


def _prep_without_identity(env: Env) -> list[str]:
    tree = _series(env)
    cfg = env.tmp / "no-identity.gitconfig"
    cfg.write_text("[user]\n\tuseConfigOnly = true\n")
    env.vars["GIT_CONFIG_GLOBAL"] = str(cfg)
    for var in COMMITTER:
        del env.vars[var]
    return ["prep", "--tree", str(tree)]


def _prep_with_placeholder(env: Env) -> list[str]:
    tree = _series(env)
    env.vars.update({"GIT_COMMITTER_NAME": "Seed 2bcad48c maintainers",
                     "GIT_COMMITTER_EMAIL": "maintainers@users.noreply.r-seed-2bcad48c.example"})
    return ["prep", "--tree", str(tree)]


def _nothing_prepared(env: Env) -> None:
    assert not (env.cache / "prep").exists()
    assert env.git(Path(env.notes["tree"]), "tag", "--list") == ""


def _prep_fails_for_another_branch(env: Env) -> list[str]:
    tree = _series(env, (BRANCH, "topic/other"))
    first = run_patchgen(env, ["prep", "--tree", str(tree)])
    assert first.returncode == ExitCode.TEST_FAILURE  # no checkpatch here: a check fails
    env.notes["good"] = repr(_snapshot(env.cache / "prep"))
    # The next prep fails late: git send-email's validation hook refuses.
    hook = tree / ".git" / "hooks" / "sendemail-validate"
    hook.write_text("#!/bin/sh\necho 'refused by the list policy' >&2\nexit 1\n")
    hook.chmod(0o755)
    return ["prep", "--tree", str(tree), "--branch", "topic/other"]


def _last_good_prep_kept(env: Env) -> None:
    after = _snapshot(env.cache / "prep")
    assert repr({k: v for k, v in after.items() if not k.startswith(
        next(iter(after)).split("/")[0] + "/topic/")}) == env.notes["good"]
    # Nothing hidden but prep's own mark of its output (patchgen/outputs.py).
    assert not [k for k in after if ("/." in k or k.startswith("."))
                and not k.endswith("/" + MARKER)], after


def _snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _prep_twice(env: Env) -> list[str]:
    tree = _series(env)
    first = run_patchgen(env, ["prep", "--tree", str(tree)])
    assert "v1 in " in first.stdout, first.stdout + first.stderr
    return ["prep", "--tree", str(tree)]


def _no_version_used(env: Env) -> None:
    assert env.git(Path(env.notes["tree"]), "tag", "--list") == ""
    (outdirs,) = [sorted(p.name for p in d.iterdir())
                  for d in (env.cache / "prep").rglob("nf-hook-bpf")]
    assert outdirs == ["v1"]


def _prep_on_a_terminal(env: Env) -> list[str]:
    return ["prep", "--tree", str(_series(env))]


def _generate_argv(tree: Path, *more: str) -> list[str]:
    """generate on ``tree`` as a user with a real identity."""
    return ["generate", "--tree", str(tree), "--author", "Ada Dev <ada@kernel.org>", *more]


def _generate(env: Env) -> list[str]:
    tree = env.tree()
    env.notes["tree"] = str(tree)
    return _generate_argv(tree, "--date", "2026-01-01T00:00:00+0000")


def _committing(env: Env) -> bool:
    """generate's commit phase has begun: its temporary index exists."""
    return any(p.name.startswith("patchgen-index-") for p in (env.tmp / "tmp").iterdir())


def _no_half_series(env: Env) -> None:
    """The branch is the whole series or nothing; no lock, no stray index."""
    tree = Path(env.notes["tree"])
    tip = subprocess.run(["git", "-C", str(tree), "rev-parse", "--verify", "--quiet", BRANCH],
                         capture_output=True, text=True, env=env.vars).stdout.strip()
    if tip:
        assert env.git(tree, "rev-list", "--count", f"HEAD..{tip}").strip() == "9"
    assert not list((tree / ".git").rglob("*.lock"))
    assert env.git(tree, "status", "--porcelain") == ""


def _prep_slow_checkout(env: Env) -> list[str]:
    """prep's 'git am' check adds a worktree; each file takes 50 ms to check out."""
    tree = _series(env)
    (tree / ".git" / "info").mkdir(exist_ok=True)
    (tree / ".git" / "info" / "attributes").write_text("* filter=slow\n")
    env.git(tree, "config", "filter.slow.smudge", "sleep 0.05; cat")
    return ["prep", "--tree", str(tree)]


def _adding_worktree(env: Env) -> bool:
    return any((Path(env.notes["tree"]) / ".git" / "worktrees").glob("*/locked"))


def _no_worktree_left(env: Env) -> None:
    tree = Path(env.notes["tree"])
    listing = env.git(tree, "worktree", "list", "--porcelain")
    assert listing.count("worktree ") == 1 and "locked" not in listing, listing
    assert not (tree / ".git" / "worktrees").exists() or not any(
        (tree / ".git" / "worktrees").iterdir())
    assert not (env.cache / "prep").exists() or not any((env.cache / "prep").rglob("*.patch"))


def _with_selftests(env: Env) -> Path:
    """fakelinux with a netfilter selftests Makefile."""
    tree = env.tree("fakelinux")
    d = tree / "tools" / "testing" / "selftests" / "netfilter"
    d.mkdir(parents=True)
    (d / "Makefile").write_text("TEST_PROGS := nft_meta.sh nft_nat.sh conntrack_vrf.sh\n")
    env.git(tree, "add", "-A")
    env.git(tree, "commit", "-qm", "selftests")
    return tree


def _macro_hook(env: Env) -> list[str]:
    """fakenet with a hook defined through a macro (issue 13's reproducer)."""
    tree = env.tree()
    core = tree / "net" / "netfilter" / "core.c"
    core.write_text(core.read_text() + (
        "\n#define DEFINE_HOOK(name) static unsigned int name(void *priv, struct sk_buff *skb, "
        "const struct nf_hook_state *state)\n\nDEFINE_HOOK(my_hook)\n{\n\treturn NF_ACCEPT;\n}"
        "\n\nstatic const struct nf_hook_ops my_ops = {\n\t.hook = my_hook,\n};\n"))
    env.git(tree, "commit", "-qam", "a hook through a macro")
    env.notes["tree"] = str(tree)
    return _generate_argv(tree)


def _generate_with_placeholder(env: Env) -> list[str]:
    """generate with the machine's placeholder identity (a CI seed's) and no --author."""
    tree = env.tree()
    env.notes["tree"] = str(tree)
    env.vars.update({"GIT_COMMITTER_NAME": "Seed 2bcad48c maintainers",
                     "GIT_COMMITTER_EMAIL": "maintainers@users.noreply.r-seed-2bcad48c.example"})
    return ["generate", "--tree", str(tree)]


def _generate_author_placeholder(env: Env) -> list[str]:
    tree = env.tree()
    env.notes["tree"] = str(tree)
    return ["generate", "--tree", str(tree), "--author", "You <you@example.com>"]


def _no_branch(env: Env) -> None:
    assert env.git(Path(env.notes["tree"]), "branch", "--list", "patchgen/*") == ""


def _one_shard_of_two(env: Env) -> list[str]:
    from patchgen.report import write_json
    from tests.unit.test_merge import shard_report

    run = env.tmp / "s1"
    run.mkdir()
    write_json(shard_report(1), run / "report.json")
    return ["merge", str(run), "--output", str(env.tmp / "merged")]


def _no_merged_report(env: Env) -> None:
    assert not (env.tmp / "merged").exists()


def _checked_out_branch(env: Env) -> list[str]:
    """generate onto the branch the user has checked out: git would move it
    under their working tree, which would then show the series as staged."""
    tree = env.tree()
    env.notes["tree"] = str(tree)
    env.notes["head"] = env.git(tree, "rev-parse", "HEAD").strip()
    env.notes["branch"] = env.git(tree, "symbolic-ref", "--short", "HEAD").strip()
    return _generate_argv(tree, "--branch", env.notes["branch"])


def _branch_kept(env: Env) -> None:
    tree = Path(env.notes["tree"])
    assert env.git(tree, "rev-parse", env.notes["branch"]).strip() == env.notes["head"]
    assert env.git(tree, "status", "--porcelain") == ""


def _branch_named_head(env: Env) -> list[str]:
    tree = env.tree()
    env.notes["tree"] = str(tree)
    return _generate_argv(tree, "--branch", "HEAD")


def _no_new_ref(env: Env) -> None:
    tree = Path(env.notes["tree"])
    assert env.git(tree, "for-each-ref", "--format=%(refname)", "refs/heads/").split() == \
        ["refs/heads/" + env.git(tree, "symbolic-ref", "--short", "HEAD").strip()]


def _fault_on_the_series_branch(env: Env) -> list[str]:
    tree = _series(env)
    env.notes["tip"] = env.git(tree, "rev-parse", BRANCH).strip()
    return _generate_argv(tree, "--inject-fault", "skip-hook")


def _series_kept(env: Env) -> None:
    assert env.git(Path(env.notes["tree"]), "rev-parse", BRANCH).strip() == env.notes["tip"]


def _prep_into_my_directory(env: Env) -> list[str]:
    tree = _series(env)
    mine = env.tmp / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "thesis.txt").write_text("years of work\n")
    return ["prep", "--tree", str(tree), "--output", str(mine)]


def _my_directory_kept(env: Env) -> None:
    mine = env.tmp / "mine"
    assert sorted(p.name for p in mine.iterdir()) == ["sub", "thesis.txt"]
    assert (mine / "thesis.txt").read_text() == "years of work\n"
    _nothing_prepared(env)


def _merge_into_a_shard(env: Env) -> list[str]:
    from patchgen.report import write_json
    from tests.unit.test_merge import shard_report

    dirs = []
    for i in (1, 2):
        run = env.tmp / f"s{i}"
        run.mkdir()
        write_json(shard_report(i), run / "report.json")
        dirs.append(str(run))
    env.notes["s1"] = (env.tmp / "s1" / "report.json").read_text()
    return ["merge", *dirs, "--output", dirs[0]]


def _shard_kept(env: Env) -> None:
    assert sorted(p.name for p in (env.tmp / "s1").iterdir()) == ["report.json"]
    assert (env.tmp / "s1" / "report.json").read_text() == env.notes["s1"]


ROWS: list[Row] = [
    Row("hook-via-macro", "a hook defined through a macro (DEFINE_HOOK(fn) { ... })",
        _macro_hook, ExitCode.USER_ERROR, "hook functions patchgen cannot convert:\n"
        "  net/netfilter/core.c:154: my_hook() is defined through the macro DEFINE_HOOK() "
        "(net/netfilter/core.c:152)", _no_branch),
    Row("generate-placeholder-identity", "generate with a placeholder git identity, no --author",
        _generate_with_placeholder, ExitCode.USER_ERROR,
        "<maintainers@users.noreply.r-seed-2bcad48c.example> is a placeholder", _no_branch),
    Row("generate-author-placeholder", "generate --author with a placeholder address",
        _generate_author_placeholder, ExitCode.USER_ERROR,
        "patchgen: error: --author You <you@example.com> is a placeholder address", _no_branch),
    Row("generate-checked-out-branch", "generate --branch naming the branch checked out",
        _checked_out_branch, ExitCode.USER_ERROR, " is checked out in ", _branch_kept),
    Row("generate-bad-branch-name", "generate --branch HEAD (no valid branch name)",
        _branch_named_head, ExitCode.USER_ERROR,
        "patchgen: error: --branch HEAD: not a valid branch name", _no_new_ref),
    Row("inject-fault-on-the-series", "generate --inject-fault without a --branch of its own",
        _fault_on_the_series_branch, ExitCode.USER_ERROR,
        "makes a deliberately broken series; it would replace the series on", _series_kept),
    Row("prep-output-not-ours", "prep --output naming a directory of the user's",
        _prep_into_my_directory, ExitCode.USER_ERROR,
        "the directory exists and is not empty", _my_directory_kept),
    Row("merge-output-on-a-shard", "merge --output naming a shard's own run directory",
        _merge_into_a_shard, ExitCode.USER_ERROR, "the directory exists and is not empty",
        _shard_kept),
    Row("version-empty", "--version '' (an empty version)", lambda env: ["tree", "--version", ""],
        ExitCode.USER_ERROR, "patchgen: error: unknown kernel version ''; known: 6.1, 6.12",
        lambda env: _no_cache_work(env)),
    Row("tree-is-a-file", "--tree names a file", _a_file_as_tree, ExitCode.USER_ERROR,
        "patchgen: error: not a directory: "),
    Row("git-missing", "git is not on PATH", _no_git, ExitCode.INFRA_FAILURE,
        "patchgen: error: required tool not found: git\n"
        "patchgen: hint: install it with: apt-get install git"),
    Row("tests-typo", "a typo in 'test --tests'",
        lambda env: ["test", "--tree", str(_with_selftests(env)), "--tests", "nft_mata.sh"],
        ExitCode.USER_ERROR, "patchgen: error: unknown test 'nft_mata.sh' in this tree\n"
        "patchgen: hint: did you mean: nft_meta.sh", inproc=True),
    Row("switch-bad", "'run --switch 2'",
        lambda env: ["run", "--tree", str(_with_selftests(env)), "--switch", "2"],
        ExitCode.USER_ERROR, "patchgen: error: --switch takes 0, 1 or both (1,0), got '2'",
        inproc=True),
    Row("shard-bad", "'test --shard 3/2'",
        lambda env: ["test", "--tree", str(_with_selftests(env)), "--shard", "3/2"],
        ExitCode.USER_ERROR, "patchgen: error: shard 3/2: there are only 2 shards",
        inproc=True),
    Row("merge-shard-missing", "'merge' of a sharded run with a shard missing",
        _one_shard_of_two, ExitCode.INFRA_FAILURE,
        "patchgen: error: shard 2/2 is missing (have 1/2)\n"
        "patchgen: hint: a shard's job did not finish", _no_merged_report),
    Row("disk-full", "the disk fills up while the Debian tree is unpacked", _disk_full,
        ExitCode.INFRA_FAILURE, "patchgen: error: no space left on device: unpacking "
        "linux-source-6.1.tar.xz needs about 2.0 GB in ", _no_tree_left),
    Row("dirty-tree", "the tree has uncommitted changes", _dirty, ExitCode.USER_ERROR,
        "tree has uncommitted changes (1 files: Makefile)", _dirty_kept),
    Row("verbose-after-command", "'generate --plan --verbose' (the plan's own advice)",
        lambda env: ["generate", "--plan", "--verbose", "--tree", str(env.tree())], ExitCode.OK,
        "    7 notes\n      accept_all: net/netfilter/core.c:", stream="stdout"),
    Row("prep-no-identity", "prep without a git identity", _prep_without_identity,
        ExitCode.USER_ERROR, "patchgen: error: no git identity: no email was given and "
        "auto-detection is disabled\npatchgen: hint: set your own (the address you send patches "
        'from) with\n  git config --global user.email "<your address>"', _nothing_prepared),
    Row("prep-placeholder-identity", "prep with a placeholder git identity (a CI seed's)",
        _prep_with_placeholder, ExitCode.USER_ERROR,
        "<maintainers@users.noreply.r-seed-2bcad48c.example> is a placeholder",
        _nothing_prepared),
    Row("prep-fails-late", "a prep of another branch fails late (send-email refuses)",
        _prep_fails_for_another_branch, ExitCode.INFRA_FAILURE, "refused by the list policy",
        _last_good_prep_kept),
    Row("prep-dry-run-twice", "two dry runs of prep", _prep_twice, ExitCode.TEST_FAILURE,
        "nothing sent (use --send to send); this is still v1 until it is sent",
        _no_version_used, stream="stdout"),
    Row("interrupt-generate-commit", "Ctrl-C while generate commits (at varied moments)",
        _generate, ExitCode.INTERRUPTED, "patchgen: interrupted; nothing half-made was kept",
        _no_half_series, interrupt_when=_committing,
        delays=(0.0, 0.001, 0.002, 0.004, 0.007, 0.01, 0.015, 0.02, 0.03, 0.045, 0.06)),
    Row("interrupt-worktree-add", "Ctrl-C while git adds a worktree (prep's 'git am' check)",
        _prep_slow_checkout, ExitCode.INTERRUPTED,
        "patchgen: interrupted; nothing half-made was kept", _no_worktree_left,
        interrupt_when=_adding_worktree, delays=(0.0, 0.02, 0.1, 0.3)),
    Row("sigterm-worktree-add", "SIGTERM to patchgen alone while git adds a worktree",
        _prep_slow_checkout, ExitCode.INTERRUPTED,
        "patchgen: interrupted; nothing half-made was kept", _no_worktree_left,
        interrupt_when=_adding_worktree, delays=(0.0, 0.1, 0.3), signal=signal.SIGTERM,
        group=False),
    Row("prep-on-a-terminal", "prep run from a terminal (git send-email asks on /dev/tty)",
        _prep_on_a_terminal, ExitCode.TEST_FAILURE, "nothing sent", stream="stdout", tty=True,
        timeout=60),
]


STAGES = ("stage_tree", "stage_build", "stage_selftests_install", "new_run_dir")


def run_inproc(argv: list[str], env: Env, monkeypatch: pytest.MonkeyPatch,
               capsys: pytest.CaptureFixture[str]) -> Ran:
    """cli.main() here, with a tripwire in place of every stage that does work."""
    from patchgen import stages
    from patchgen.cli import main

    reached: list[str] = []

    def tripwire(name: str) -> Callable[..., None]:
        def stage(*args: object, **kwargs: object) -> None:
            reached.append(name)
            raise AssertionError(f"{name}: work started before the request was refused")
        return stage

    for name in STAGES:
        monkeypatch.setattr(stages, name, tripwire(name))
    code = main(["--cache", str(env.cache), *argv])
    assert reached == []
    out, err = capsys.readouterr()
    return Ran(code, out, err)


@pytest.fixture
def env(tmp_path: Path) -> Env:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    home = Path(os.environ["HOME"])
    return Env(tmp_path, {**os.environ, "TMPDIR": str(tmpdir), "HOME": str(home)})


RUNS = [(row, delay) for row in ROWS for delay in row.delays]


@pytest.mark.parametrize(("row", "delay"), RUNS, ids=[
    r.id + (f"-{d * 1000:.0f}ms" if len(r.delays) > 1 else "") for r, d in RUNS])
def test_fault(row: Row, delay: float, env: Env, monkeypatch: pytest.MonkeyPatch,
               capsys: pytest.CaptureFixture[str]) -> None:
    argv = row.setup(env)
    if row.inproc:
        ran = run_inproc(argv, env, monkeypatch, capsys)
    else:
        ran = run_patchgen(env, argv, timeout=row.timeout, interrupt_when=row.interrupt_when,
                           tty=row.tty, delay=delay, how=(row.signal, row.group))
    assert ran.returncode == row.code, ran.stdout + ran.stderr
    assert row.message in getattr(ran, row.stream), ran.stdout + ran.stderr
    assert "Traceback" not in ran.stderr, ran.stderr
    left = [p.name for p in (env.tmp / "tmp").iterdir()]
    assert not left, f"left in TMPDIR: {left}"
    row.intact(env)


def test_readme_lists_every_row() -> None:
    """README's "## Faults" table has one line per row, with its exit code."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Faults\n", 1)[1].split("\n## ", 1)[0]
    listed = dict(re.findall(r"^\| `([a-z0-9-]+)` \|.*\| (\d+) \|$", section, re.M))
    assert listed == {r.id: str(int(r.code)) for r in ROWS}

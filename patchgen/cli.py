"""Command line: argparse in, frozen requests out; the only place that exits."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from patchgen import INTERRUPTED, space
from patchgen import settings as settings_mod
from patchgen.errors import ExitCode, PatchgenError, UserError
from patchgen.progress import Progress
from patchgen.series.faults import NAMES as FAULT_NAMES
from patchgen.settings import Settings
from patchgen.tree import TreeRequest

if TYPE_CHECKING:
    from patchgen.commands.test import TestOutcome, TestRequest

Handler = Callable[[argparse.Namespace, Settings, Progress], int]


def path_arg(text: str) -> Path:
    """A path option: not empty (an empty --cache meant the current
    directory), ~ and ~user expanded here, for every option alike."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path")
    try:
        return Path(text).expanduser()
    except RuntimeError:  # ~user of no such user
        raise argparse.ArgumentTypeError(f"cannot expand {text.split('/')[0]!r}: "
                                         "no such user") from None


def text_arg(text: str) -> str:
    """A value that must say something: empty is not "the default"."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty value (leave the option out for "
                                         "the default)")
    return text


def add_tree_opts(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--version", dest="kversion", metavar="X.Y",
                   help="Debian linux-source tree to use (default 6.1; also 6.12)")
    g.add_argument("--tree", type=path_arg, metavar="PATH",
                   help="your own kernel git tree (never modified; patchgen uses a worktree)")


def add_build_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="selftests",
                   help="kernel config profile from kernel-config/profiles.toml")
    p.add_argument("--rev", help="commit to build (default: the tree's base commit)")


def add_guest_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--accel", choices=["auto", "kvm", "tcg"], default="auto",
                   help="auto: KVM if it can boot a kernel here, TCG otherwise")
    p.add_argument("--memory", default="2G", help="guest memory (default 2G)")
    p.add_argument("--cpus", type=int, default=2, help="guest CPUs (default 2)")


# -- handlers ------------------------------------------------------------------------
def cmd_tree(ns: argparse.Namespace, settings: Settings, progress: Progress) -> int:
    from patchgen.commands import tree

    found = tree.run(_tree_request(ns), settings, progress)
    print(json.dumps(found.as_dict(), indent=2))
    return ExitCode.OK


def _tree_request(ns: argparse.Namespace) -> TreeRequest:
    return TreeRequest(ns.kversion, ns.tree)


def cmd_build(ns: argparse.Namespace, settings: Settings, progress: Progress) -> int:
    from patchgen.commands import build

    req = build.BuildRevRequest(_tree_request(ns), profile=ns.profile, rev=ns.rev,
                                output=ns.output)
    result = build.run(req, settings, progress)
    print(json.dumps(result.as_dict(), indent=2))
    return ExitCode.OK


def cmd_test(ns: argparse.Namespace, settings: Settings, progress: Progress) -> int:
    from patchgen.commands import test

    return _show(test.run(test_request(ns, ns.rev), settings, progress))


def test_request(ns: argparse.Namespace, rev: str | None) -> TestRequest:
    """The TestRequest the options of 'test' and 'run' describe (the request
    judges each field itself; the command checks it whole before any work)."""
    from patchgen.commands.test import TestRequest

    return TestRequest(
        tree=_tree_request(ns), profile=ns.profile, rev=rev,
        tests=ns.tests, retries=ns.retries, accel=ns.accel, output=ns.output,
        memory=ns.memory, cpus=ns.cpus, switch=ns.switch, equiv=not ns.no_equiv,
        churn=ns.churn, jobs=ns.guests, shard=ns.shard)


def _show(outcome: TestOutcome) -> int:
    print(outcome.summary)
    print(f"\nreports: {outcome.run_dir}/report.json, junit.xml, summary.txt")
    return int(outcome.exit_code)


def cmd_merge(ns: argparse.Namespace, settings: Settings, progress: Progress) -> int:
    from patchgen.commands import merge

    done = merge.run(merge.MergeRequest(tuple(ns.run_dirs), ns.output), settings, progress)
    if isinstance(done, merge.JoinedCheck):
        print(done.text)
        print(f"\nreport: {done.run_dir}/check.json, check.txt")
        return done.report.exit_code
    return _show(done)


def cmd_durations(ns: argparse.Namespace, settings: Settings, progress: Progress) -> int:
    from patchgen.commands import durations

    req = durations.DurationsRequest(tuple(ns.run_dirs), ns.dry_run, ns.output)
    print(durations.format_changes(durations.run(req, settings, progress)))
    return ExitCode.OK


def cmd_boot(ns: argparse.Namespace, settings: Settings, progress: Progress) -> int:
    from patchgen.commands import boot

    req = boot.BootRequest(
        tree=_tree_request(ns), profile=ns.profile, rev=ns.rev,
        accel=ns.accel, memory=ns.memory, cpus=ns.cpus, command=tuple(ns.cmd),
        timeout=ns.timeout, output=ns.output)
    result = boot.run(req, settings, progress)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    if result.returncode is None:
        print(f"patchgen: command did not finish within {ns.timeout}s", file=sys.stderr)
        return ExitCode.TEST_FAILURE
    return ExitCode.OK if result.returncode == 0 else ExitCode.TEST_FAILURE


def cmd_generate(ns: argparse.Namespace, settings: Settings, progress: Progress) -> int:
    from patchgen.commands import generate
    from patchgen.series.generate import SeriesPlan, format_plan

    def show(series: SeriesPlan) -> None:
        print(format_plan(series, verbose=ns.verbose))

    req = generate.GenerateRequest(_tree_request(ns), plan_only=ns.plan, upto=ns.upto,
                                   branch=ns.branch, author=ns.author, date=ns.date,
                                   fault=ns.inject_fault)
    done = generate.run(req, settings, progress, on_plan=show)
    if done.committed is None:
        return ExitCode.OK
    state = "unchanged (same patches as before)" if done.committed.reused else "updated"
    print(f"\nbranch {done.committed.branch} {state}: {len(done.committed.commits)} commits "
          f"on {done.committed.base[:12]} in {done.tree.repo}")
    for sha, patch in zip(done.committed.commits, done.series.patches, strict=True):
        print(f"  {sha[:12]} {patch.subject}")
    return ExitCode.OK


def cmd_check(ns: argparse.Namespace, settings: Settings, progress: Progress) -> int:
    from patchgen.commands import check

    req = check.CheckRequest(
        _tree_request(ns), profile=ns.profile, branch=ns.branch, w1=not ns.no_w1,
        checkpatch=not ns.no_checkpatch, patches=ns.patches, matrix=ns.matrix,
        configs=_names("--configs", ns.configs), output=ns.output,
        boot=ns.boot, accel=ns.accel)
    done = check.run(req, settings, progress)
    print(done.text)
    print(f"\nreport: {done.run_dir}/check.json")
    return done.report.exit_code


def cmd_bisect(ns: argparse.Namespace, settings: Settings, progress: Progress) -> int:
    from patchgen.commands import bisect

    req = bisect.BisectRequest(_tree_request(ns), ns.test, good=ns.good, bad=ns.bad,
                               branch=ns.branch, profile=ns.profile, accel=ns.accel,
                               retries=ns.retries, output=ns.output)
    done = bisect.run(req, settings, progress)
    print(done.text)
    print(f"\nreport: {done.run_dir}/bisect.json")
    return int(done.report.exit_code)


def cmd_run(ns: argparse.Namespace, settings: Settings, progress: Progress) -> int:
    from patchgen.commands import run

    req = run.RunRequest(test_request(ns, None), branch=ns.branch, author=ns.author,
                         date=ns.date)
    return _show(run.run(req, settings, progress))


def cmd_bench(ns: argparse.Namespace, settings: Settings, progress: Progress) -> int:
    from patchgen.bench import format_table
    from patchgen.commands import bench

    req = bench.BenchRequest(
        tree=_tree_request(ns), rev=ns.rev, profile=ns.profile,
        accel=ns.accel, reps=ns.reps, count=ns.count, iters=ns.iters,
        mitigations=_names_or_none("--retpolines", ns.retpolines),
        output=ns.output, memory=ns.memory, cpus=ns.cpus, timing=ns.timing,
        hook_counts=_ints(ns.hooks, "--hooks"), overflow=_ints(ns.overflow, "--overflow"),
        configs=_names_or_none("--configs", ns.configs),
        control=not ns.no_control, ctl_base=ns.ctl_base,
        ctl_hooks=_ints(ns.ctl_hooks, "--ctl-hooks"), ctl_rounds=ns.ctl_rounds,
        netns=ns.netns, chains=ns.chains, cpi=ns.cpi, penalty=ns.penalty, against=ns.against)
    done = bench.run(req, settings, progress)
    print(format_table(done.result))
    if done.spread is not None:
        print("\n" + done.spread.rstrip())
    print(f"\nreports: {done.run_dir}/bench.json, bench.txt, junit.xml, bench.png")
    return ExitCode.TEST_FAILURE if done.result.missing else ExitCode.OK


def _ints(text: str, option: str = "a list") -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UserError(f"{option} takes numbers separated by commas, got {text!r}") from None


def add_test_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tests", default="default",
                   help="quick, default, all, or comma-separated test names")
    p.add_argument("--retries", type=int, default=1,
                   help="re-run a failing test this many times (pass on retry = flaky); "
                        "a test whose own script races may get more "
                        "(selftests/kselftests.toml); 0: none")
    p.add_argument("--switch", default="auto",
                   help="positions of net.netfilter.nf_hook_bpf to test (1,0 / 1 / 0); "
                        "auto: both once the generator is in the tree")
    p.add_argument("--no-equiv", action="store_true",
                   help="skip the equivalence cases (selftests/equiv)")
    p.add_argument("--churn", type=int, default=200,
                   help="hook register/unregister cycles in the runtime checks (with the "
                        "kmemleak profile, a leak check follows)")
    # dest "guests": 'patchgen -j N' before the command is the build's jobs.
    p.add_argument("--jobs", dest="guests", type=int, metavar="J",
                   help="guests at once, each running its share of the tests (default: one "
                        "per core under TCG, host CPUs / --cpus under KVM, as far as the "
                        "host's memory allows); 1: one guest, as before")
    p.add_argument("--shard", metavar="i/N",
                   help="run only shard i of N of the tests (split by measured duration, "
                        "selftests/durations); 'patchgen merge' joins the shards' runs")
    p.add_argument("--output", type=path_arg, help="directory for logs and reports")


def cmd_prep(ns: argparse.Namespace, settings: Settings, progress: Progress) -> int:
    from patchgen import prep
    from patchgen.commands.prep import Delivery, PrepCommandRequest, run

    if ns.send and not ns.yes and not sys.stdin.isatty():
        # Said before any work: declining at the end read as success (exit 0).
        raise UserError("--send asks before sending, and standard input is not a terminal",
                        hint="add --yes to send without asking")
    req = PrepCommandRequest(
        _tree_request(ns), branch=ns.branch, rfc=not ns.no_rfc, prefix=ns.prefix,
        to=tuple(ns.to), cc=tuple(ns.cc), output=ns.output, b4=ns.b4, send=ns.send,
        mark_sent=ns.mark_sent, force=ns.force, yes=ns.yes)
    out = run(req, settings, progress,
              on_prepared=lambda done: print(prep.format_prepared(done)),
              confirm=lambda done: _confirm(f"send {len(done.files)} mails as shown? "
                                            "type 'send': "),
              on_sent=print)
    done = out.prepared
    checked = ExitCode.OK if done.ok else ExitCode.TEST_FAILURE
    if out.delivery is Delivery.MARKED:
        print(f"\nnothing sent; v{done.version} recorded as sent ({out.tag}): the next prep "
              "of new commits is the next version")
        return checked
    if out.delivery is Delivery.DRY_RUN:
        print(f"\nnothing sent (use --send to send); this is still v{done.version} until it "
              "is sent")
        return checked
    if out.delivery is Delivery.REFUSED:
        what = "marking it sent" if ns.mark_sent else "sending"
        print(f"patchgen: error: a check failed; not {what} (override with --force)",
              file=sys.stderr)
        return ExitCode.TEST_FAILURE
    if out.delivery is Delivery.DECLINED:
        print("not sent")
        return ExitCode.OK
    print(f"sent; tagged {out.tag}")
    return ExitCode.OK


def _names(option: str, text: str | None) -> tuple[str, ...]:
    """A comma-separated list; given but empty (",") is an error, not "all"."""
    if text is None:
        return ()
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise UserError(f"{option} {text!r}: no names")
    return names


def _names_or_none(option: str, text: str) -> tuple[str, ...]:
    """As _names(), where the help offers '' for none: '' is none, "," an error."""
    return () if not text.strip() else _names(option, text)


def _confirm(question: str) -> bool:
    return input(question).strip() == "send"


def _parser_tree(sub: Any) -> None:
    p = sub.add_parser("tree", help="obtain, prepare and probe a kernel tree")
    add_tree_opts(p)
    p.set_defaults(func=cmd_tree)


def _parser_build(sub: Any) -> None:
    p = sub.add_parser("build", help="configure and build a kernel (O= dir, ccache)")
    add_tree_opts(p)
    add_build_opts(p)
    p.add_argument("--output", type=path_arg, help="directory for logs")
    p.set_defaults(func=cmd_build)


def _parser_generate(sub: Any) -> None:
    p = sub.add_parser("generate", help="compute the patch series from the tree, commit it "
                       "to a new branch")
    add_tree_opts(p)
    p.add_argument("--plan", action="store_true",
                   help="print per patch the files and functions it would change; write nothing")
    p.add_argument("--upto", type=int, metavar="N", help="only the first N patches")
    p.add_argument("--branch", type=text_arg,
                   help="branch to create, or to replace if patchgen wrote it (default "
                        "patchgen/nf-hook-bpf); a branch holding other commits is refused")
    p.add_argument("--author", type=text_arg, help="'Name <email>' (default: your git identity)")
    p.add_argument("--date", help="author and commit date (default: now)")
    p.add_argument("--inject-fault", choices=FAULT_NAMES,
                   help="make a deliberately broken series (use with --branch), to prove "
                        "that check and test catch it")
    p.set_defaults(func=cmd_generate)


def _parser_check(sub: Any) -> None:
    p = sub.add_parser("check", help="build every patch of the series, W=1 on touched files, "
                       "checkpatch --strict")
    add_tree_opts(p)
    p.add_argument("--profile", default="selftests", help="kernel config profile")
    p.add_argument("--branch", type=text_arg, help="series branch (default patchgen/nf-hook-bpf)")
    p.add_argument("--no-w1", action="store_true", help="skip the W=1 comparison")
    p.add_argument("--no-checkpatch", action="store_true", help="skip checkpatch")
    p.add_argument("--patches", type=text_arg, metavar="N-M",
                   help="check only these patches (e.g. 6-9)")
    p.add_argument("--matrix", choices=["quick", "full"], default="quick",
                   help="configs to build every patch in (kernel-config/matrix.toml): "
                        "quick (default, what CI builds) or full (every config, "
                        "allmodconfig included)")
    p.add_argument("--configs", metavar="A,B", help="only these configs of the matrix")
    p.add_argument("--boot", action="store_true",
                   help="also boot every patch's build (the profile) and run its smoke set: "
                        "the quick selftests at the default switch position, and the "
                        "runtime checks once the generator is in; a boot column in the table")
    p.add_argument("--accel", choices=["auto", "kvm", "tcg"], default="auto",
                   help="with --boot: auto: KVM if it can boot a kernel here, TCG otherwise")
    p.add_argument("--output", type=path_arg, help="directory for logs and the report")
    p.set_defaults(func=cmd_check)


def _parser_bisect(sub: Any) -> None:
    p = sub.add_parser("bisect", help="the first patch of the series that changes a test's "
                       "result (build, boot, run the test at each commit probed)",
                       description="Exit codes: 0 found, 1 the good and the bad commit give "
                       "the same result, 2 bad usage.")
    add_tree_opts(p)
    p.add_argument("test", metavar="TEST",
                   help="one kselftest of the tree (nft_meta.sh), or one of patchgen's guest "
                        "scripts, whole or one case (nf_hook_bpf.sh, "
                        "selftest/nf_hook_bpf.sh:drop_errno)")
    p.add_argument("--good", metavar="REV", help="the reference commit (default: the base)")
    p.add_argument("--bad", metavar="REV",
                   help="the last commit to search (default: the tip of the series)")
    p.add_argument("--branch", type=text_arg, help="series branch (default patchgen/nf-hook-bpf)")
    p.add_argument("--profile", default="selftests", help="kernel config profile")
    p.add_argument("--accel", choices=["auto", "kvm", "tcg"], default="auto",
                   help="auto: KVM if it can boot a kernel here, TCG otherwise")
    p.add_argument("--retries", type=int, default=1,
                   help="re-run a failing test this many times (a pass on retry counts "
                        "as a pass)")
    p.add_argument("--output", type=path_arg, help="directory for logs and the report")
    p.set_defaults(func=cmd_bisect)


def _parser_prep(sub: Any) -> None:
    p = sub.add_parser("prep", help="format the series for the list: versions, cover letter, "
                       "To/Cc, pre-send checks, send-email dry run")
    add_tree_opts(p)
    p.add_argument("--branch", type=text_arg, help="series branch (default patchgen/nf-hook-bpf)")
    p.add_argument("--no-rfc", action="store_true", help="drop the RFC prefix")
    p.add_argument("--prefix", help="tree prefix in the subject (default from series.toml)")
    p.add_argument("--to", action="append", default=[], help="extra To: recipient")
    p.add_argument("--cc", action="append", default=[], help="extra Cc: recipient")
    p.add_argument("--output", type=path_arg, help="directory for the patches (no version tag)")
    p.add_argument("--b4", action="store_true",
                   help="also write the mails b4 would send (b4 send -o) to <output>/b4, "
                        "with patchgen's cover letter, version and To/Cc")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--send", action="store_true", help="really send, with git send-email")
    p.add_argument("--force", action="store_true",
                   help="send (or --mark-sent) even if a check failed")
    p.add_argument("--yes", action="store_true", help="do not ask before sending")
    how.add_argument("--mark-sent", action="store_true",
                   help="send nothing, but record this version as sent (tag it), e.g. after "
                        "sending it yourself: the next prep of new commits is vN+1")
    p.set_defaults(func=cmd_prep)


def _parser_boot(sub: Any) -> None:
    p = sub.add_parser("boot", help="build and boot a kernel, run one command in the guest")
    add_tree_opts(p)
    add_build_opts(p)
    add_guest_opts(p)
    p.add_argument("--timeout", type=int, default=600, help="limit for the command (s)")
    p.add_argument("--output", type=path_arg, help="directory for logs")
    p.add_argument("cmd", nargs="+", metavar="-- CMD", help="command to run in the guest")
    p.set_defaults(func=cmd_boot)


def _parser_test(sub: Any) -> None:
    p = sub.add_parser("test", help="build, boot and run the netfilter kselftests; report")
    add_tree_opts(p)
    add_build_opts(p)
    add_guest_opts(p)
    add_test_opts(p)
    p.set_defaults(func=cmd_test)


def _parser_merge(sub: Any) -> None:
    p = sub.add_parser("merge", help="join the runs of 'test --shard i/N' into one report "
                       "(fails if a shard is missing), or check runs of one series in "
                       "different configs (check --configs) into one patch x config table")
    p.add_argument("run_dirs", nargs="+", type=path_arg, metavar="RUN_DIR",
                   help="a shard's run directory (its report.json), every shard once; or "
                        "check run directories (their check.json)")
    p.add_argument("--output", type=path_arg, help="directory for the merged reports")
    p.set_defaults(func=cmd_merge)


def _parser_durations(sub: Any) -> None:
    p = sub.add_parser("durations", help="refresh the unit durations --shard splits by "
                       "(selftests/durations/<series>.toml) from test runs")
    p.add_argument("run_dirs", nargs="+", type=path_arg, metavar="RUN_DIR",
                   help="a test, shard or merge run directory (its report.json); one kernel "
                        "series and accelerator; several: each unit's mean")
    p.add_argument("--dry-run", action="store_true", help="show what would change, write nothing")
    p.add_argument("--output", type=path_arg, help="the file to update (default: the series' file)")
    p.set_defaults(func=cmd_durations)


def _parser_run(sub: Any) -> None:
    p = sub.add_parser("run", help="the main job: generate the series, build its tip, boot, "
                       "run the selftests with the switch at 1 and 0, report")
    add_tree_opts(p)
    p.add_argument("--profile", default="selftests", help="kernel config profile")
    add_guest_opts(p)
    add_test_opts(p)
    p.add_argument("--branch", type=text_arg, help="series branch (default patchgen/nf-hook-bpf)")
    p.add_argument("--author", type=text_arg, help="'Name <email>' (default: your git identity)")
    p.add_argument("--date", help="author and commit date (default: now)")
    p.set_defaults(func=cmd_run)


def _parser_bench(sub: Any) -> None:
    p = sub.add_parser("bench", help="per-packet cost of both dispatch paths, interleaved, "
                       "with and without retpolines; table, JSON and PNG")
    add_tree_opts(p)
    add_build_opts(p)
    add_guest_opts(p)
    p.add_argument("--reps", type=int, default=5, help="rounds per path and point")
    p.add_argument("--count", type=int, default=50000, help="packets per forwarding round")
    p.add_argument("--iters", type=int, default=100000, help="nf_hook() calls per module run")
    p.add_argument("--retpolines", default="retpoline,off",
                   help="boots to measure: retpoline (default mitigations), off (spectre_v2=off); "
                        "'' for none (the control plane only)")
    p.add_argument("--output", type=path_arg, help="directory for results")
    p.add_argument("--timing", choices=["auto", *bench_modes()], default="auto",
                   help="icount: count instructions (TCG with QEMU's -icount; deterministic); "
                        "wall: real time (KVM) or emulation time (TCG); auto: icount under "
                        "TCG, wall under KVM")
    p.add_argument("--hooks", default=",".join(map(str, bench_hook_counts())),
                   help="hook counts at which nf_hook() is measured")
    p.add_argument("--overflow", default="4,5",
                   help="hook counts measured again with more programs than the BPF "
                        "dispatcher holds ('' for none); whether a location's program gets "
                        "a dispatcher slot then depends on the order of registrations, so "
                        "two neighbouring counts show both cases")
    p.add_argument("--configs", default=",".join(bench_configs()),
                   help="forwarding rulesets ('' for none)")
    p.add_argument("--no-control", action="store_true",
                   help="skip the control-plane boot (register/unregister, namespaces, nft)")
    p.add_argument("--ctl-base", action="store_true",
                   help="also measure the control plane of the unpatched base kernel "
                        "(builds it in the same build directory)")
    p.add_argument("--ctl-hooks", default="1,10,64",
                   help="hooks already at the location when one more is registered")
    p.add_argument("--ctl-rounds", type=int, default=10, help="register/unregister rounds")
    p.add_argument("--netns", type=int, default=100,
                   help="namespaces with an iptables filter table and conntrack")
    p.add_argument("--chains", type=int, default=50, help="nft base chains in one ruleset")
    p.add_argument("--cpi", type=float, default=1.0,
                   help="cost model: cycles per instruction (README, 'cost model')")
    p.add_argument("--penalty", type=float, default=20.0,
                   help="cost model: cycles per indirect call with retpolines")
    p.add_argument("--against", type=path_arg,
                   help="an earlier bench run (directory or bench.json): print the "
                        "run-to-run difference of every median")
    p.set_defaults(func=cmd_bench)


def bench_modes() -> tuple[str, ...]:
    from patchgen.bench import MODES

    return MODES


def bench_configs() -> tuple[str, ...]:
    from patchgen.bench import CONFIGS

    return CONFIGS


def bench_hook_counts() -> tuple[int, ...]:
    from patchgen.bench import HOOK_COUNTS

    return HOOK_COUNTS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="patchgen",
        description="Regenerate, build, boot and test the netfilter BPF base hook series.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command run")
    parser.add_argument("--cache", type=path_arg,
                        help="cache directory (default ~/.cache/patchgen)")
    parser.add_argument("-j", "--jobs", type=int, help="parallel build jobs (default: CPUs)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_parser_tree, _parser_build, _parser_generate, _parser_check, _parser_bisect,
                _parser_prep, _parser_boot, _parser_test, _parser_merge, _parser_durations,
                _parser_run,
                _parser_bench):
        add(sub)
    for command in sub.choices.values():
        # Also after the command ('generate --plan' says "--verbose shows them").
        # SUPPRESS: a subcommand's default would overwrite 'patchgen -v CMD'.
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                             help="log every command run; show the plan's notes")
    return parser


def _sigterm(signum: int, frame: FrameType | None) -> None:
    # Unwind like Ctrl-C so every "finally" runs and no QEMU is left behind.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if ns.verbose else logging.WARNING,
                        format="%(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _sigterm)
    progress = Progress()
    handler: Handler = ns.func
    cache = ns.cache
    try:
        if ns.jobs is not None and ns.jobs < 1:
            raise UserError(f"-j/--jobs must be 1 or more, got {ns.jobs}")
        settings = settings_mod.load(ns.cache, ns.jobs)
        cache = settings.cache
        return int(handler(ns, settings, progress))
    except PatchgenError as exc:
        print(f"patchgen: error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"patchgen: hint: {exc.hint}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except OSError as exc:
        if not space.is_enospc(exc):
            return _os_error(exc, ns.verbose)
        # A step that knows its needs says so itself; this is any other write.
        where = Path(exc.filename) if exc.filename else (cache or Path.home())
        print(f"patchgen: error: no space left on device writing {where} "
              f"({space.human(space.free_bytes(where))} free now)", file=sys.stderr)
        print(f"patchgen: hint: {space.HINT}", file=sys.stderr)
        return int(ExitCode.INFRA_FAILURE)
    except Exception as exc:  # a bug: said as one, never exit 1
        # Python's own exit code for it would be 1, "tests failed" to CI.
        traceback.print_exception(exc, file=sys.stderr)
        print(f"patchgen: internal error: {type(exc).__name__}: {exc} (a bug in "
              "patchgen; the traceback above says where)", file=sys.stderr)
        return int(ExitCode.INFRA_FAILURE)


def _os_error(exc: OSError, verbose: bool) -> int:
    """A file patchgen could not read or write (a read-only --cache, an
    --output under a file...): what and where, not a traceback (-v shows it)."""
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f)
    print(f"patchgen: error: {exc.strerror or exc}" + (f": {where}" if where else ""),
          file=sys.stderr)
    print("patchgen: hint: check the paths given (--cache, --output, --tree) and their "
          "permissions; -v shows where it happened", file=sys.stderr)
    return int(ExitCode.INFRA_FAILURE)


def entry() -> None:
    """The program: main(), then exit with its code.

    Once main() has returned, the work is done or given up: a Ctrl-C from
    then on changes nothing, and must not turn the exit code into a death
    by SIGINT.
    """
    try:
        code = main()
    except KeyboardInterrupt:  # landed between main()'s own handler and here
        code = int(ExitCode.INTERRUPTED)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    sys.exit(code)


if __name__ == "__main__":
    entry()

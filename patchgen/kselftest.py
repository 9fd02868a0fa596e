"""The tree's netfilter kselftests: build on the host, run one by one in the guest.

Tests come from the tree (``make kselftest-install`` writes the list);
``selftests/kselftests.toml`` adds per-test limits and tiers.  Each test
runs through the tree's own ``run_kselftest.sh`` so its output is real
KTAP, which is parsed into typed results.  A test that kills or freezes the
guest is recorded as a crash with the console lines that show it, and the
guest is rebooted for the next test.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import re
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patchgen import build as kbuild
from patchgen import equiv, ktap, proc
from patchgen.errors import BuildFailure, CommandFailed, GuestFailure, UserError
from patchgen.probe import TreeFacts
from patchgen.progress import Progress
from patchgen.results import Attempt, Expectations, Outcome, TestResult, final_outcome
from patchgen.settings import Settings
from patchgen.vm.accel import Accel
from patchgen.vm.guest import CommandResult, Guest, Trouble

SELFTESTS_ROOT = "tools/testing/selftests"
GUEST_DIR = "/tmp/patchgen-ksft"
OUTPUT_TAIL = 200  # lines of a test's output kept in the report
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class TestPlan:
    __test__ = False  # not a pytest test class

    name: str
    timeout: int
    env: Mapping[str, str] = field(default_factory=dict)
    tools: Mapping[str, str] = field(default_factory=dict)
    tier: str = "default"
    retries: int = 0  # at least this many for a test whose own script races

    def retries_under(self, asked: int) -> int:
        """Retries for this test when the run asked for ``asked``.

        A test with a documented race gets at least its own count, so that
        the race does not read as a regression; ``--retries 0`` still means none.
        """
        return max(asked, self.retries) if asked > 0 else 0


@dataclass(frozen=True)
class Variant:
    """Sysctls set for a round of tests: which dispatch path the guest uses."""

    name: str
    sysctls: Mapping[str, str] = field(default_factory=dict)


NO_VARIANT = Variant("")


@dataclass(frozen=True)
class Catalogue:
    default_timeout: int
    tests: Mapping[str, Mapping[str, Any]]
    tiers: Mapping[str, tuple[str, ...]]

    def plan(self, name: str) -> TestPlan:
        spec = self.tests.get(name, {})
        return TestPlan(name, int(spec.get("timeout", self.default_timeout)),
                        dict(spec.get("env", {})), dict(spec.get("tools", {})),
                        str(spec.get("tier", "default")),
                        int(spec.get("retries", 0)))


def load_catalogue(path: Path) -> Catalogue:
    data = tomllib.loads(path.read_text())
    tiers = {k: tuple(v) for k, v in data.get("tiers", {}).items()}
    return Catalogue(int(data["defaults"]["timeout"]), data.get("test", {}), tiers)


@dataclass(frozen=True)
class Installed:
    path: Path  # on the host; the guest sees the same path read-only
    collection: str  # "netfilter" or "net/netfilter"
    tests: tuple[str, ...]


def collection_of(facts: TreeFacts) -> str:
    if facts.selftests_dir is None:
        raise UserError("this tree has no netfilter selftests directory")
    return facts.selftests_dir.removeprefix(SELFTESTS_ROOT + "/")


def install_argv(src: Path, outdir: Path, collection: str, jobs: int) -> list[str]:
    return kbuild.make_argv(src, outdir, ["kselftest-install"], jobs=jobs,
                            make_vars={"TARGETS": collection})


def install(src: Path, outdir: Path, facts: TreeFacts, settings: Settings, progress: Progress,
            log_path: Path) -> Installed:
    collection = collection_of(facts)
    progress.status(f"building and installing kselftests ({collection})")
    try:
        proc.stream(install_argv(src, outdir, collection, settings.jobs), log_path=log_path,
                    env=kbuild.build_env(settings))
    except CommandFailed as exc:
        raise BuildFailure(f"kselftest build failed for {collection}",
                           hint=f"full log: {log_path}") from exc
    path = outdir / "kselftest" / "kselftest_install"
    listing = (path / "kselftest-list.txt").read_text().split()
    prefix = collection + ":"
    tests = tuple(t.removeprefix(prefix) for t in listing if t.startswith(prefix))
    if not tests:
        raise BuildFailure(f"kselftest-install listed no tests for {collection} ({path})")
    return Installed(path, collection, tests)


def select(catalogue: Catalogue, available: tuple[str, ...], selection: str) -> list[TestPlan]:
    """``selection``: a tier (quick, default, all) or a comma-separated list of names."""
    if selection == "all":
        names = list(available)
    elif selection == "default":
        names = [n for n in available if catalogue.plan(n).tier != "heavy"]
    elif selection in catalogue.tiers:
        wanted = set(catalogue.tiers[selection])
        names = [n for n in available if n in wanted]
    else:
        names = [n.strip() for n in selection.split(",") if n.strip()]
        unknown = [n for n in names if n not in available]
        if unknown:
            raise UserError(f"no such test in this tree: {', '.join(unknown)}",
                            hint="available: " + ", ".join(available))
    return [catalogue.plan(n) for n in names]


# -- checking a selection before any work -------------------------------------------------
SELFTEST_DIRS = ("netfilter", "net/netfilter")  # under SELFTESTS_ROOT: up to 6.x, then
BUILTIN_TIERS = ("all", "default")
_MAKE_TESTS = re.compile(r"^(?:TEST_PROGS|TEST_GEN_PROGS|TEST_CUSTOM_PROGS)\s*[:+]?=(.*)$", re.M)


def makefile_tests(text: str) -> list[str]:
    """The tests a selftests Makefile lists (what kselftest-install will run)."""
    joined = text.replace("\\\n", " ")
    names: list[str] = []
    for m in _MAKE_TESTS.finditer(joined):
        names += [n for n in m.group(1).split() if n not in names and "$" not in n]
    return names


def tree_tests(src: Path) -> list[str] | None:
    """The netfilter selftests of the tree checked out at ``src`` (None: none found)."""
    for d in SELFTEST_DIRS:
        makefile = src / SELFTESTS_ROOT / d / "Makefile"
        if makefile.is_file():
            return makefile_tests(makefile.read_text(errors="replace"))
    return None


def check_selection(catalogue: Catalogue, known: list[str] | None, selection: str) -> None:
    """Refuse an empty selection, or a name ``known`` does not have (with close matches).

    ``known`` is None when the tree's tests cannot be known yet: names are
    then checked after the kselftest install, by select().
    """
    if not selection.strip(" ,"):
        raise UserError("--tests is empty", hint="quick, default, all, or test names")
    if selection in BUILTIN_TIERS or selection in catalogue.tiers or known is None:
        return
    choices = list(BUILTIN_TIERS) + list(catalogue.tiers) + known
    for name in (n.strip() for n in selection.split(",")):
        if name and name not in known:
            close = difflib.get_close_matches(name, choices, n=3)
            hint = (f"did you mean: {', '.join(close)}" if close
                    else "known here: " + ", ".join(choices))
            raise UserError(f"unknown test {name!r} in this tree", hint=hint)


# -- running ------------------------------------------------------------------------
GuestFactory = Callable[[], AbstractContextManager[Guest]]


class _Session:
    """The current guest; rebooted after a test kills it."""

    def __init__(self, boot: GuestFactory, installed: Installed, progress: Progress) -> None:
        self.boot = boot
        self.installed = installed
        self.progress = progress
        self.boots = 0
        self.variant = NO_VARIANT
        self._stack = contextlib.ExitStack()
        self._guest: Guest | None = None

    def guest(self) -> Guest:
        if self._guest is None:
            self._guest = self._stack.enter_context(self.boot())
            self.boots += 1
            self._prepare(self._guest)
        return self._guest

    def _prepare(self, guest: Guest) -> None:
        res = guest.run(["cp", "-a", str(self.installed.path), GUEST_DIR], timeout=120)
        if not res.ok:
            raise GuestFailure(f"could not copy the selftests into the guest: {res.stderr}")
        self._apply(guest)

    def use(self, variant: Variant) -> None:
        self.variant = variant
        if self._guest is not None:
            self._apply(self._guest)

    def _apply(self, guest: Guest) -> None:
        for key, value in self.variant.sysctls.items():
            res = guest.run(["sysctl", "-q", "-w", f"{key}={value}"], timeout=60)
            if not res.ok:
                raise GuestFailure(f"cannot set {key}={value} in the guest: "
                                   f"{(res.stderr or res.stdout).strip()}")

    def discard(self) -> None:
        self._stack.close()
        self._stack = contextlib.ExitStack()
        self._guest = None

    def close(self) -> None:
        self.discard()


@contextlib.contextmanager
def session(boot: GuestFactory, installed: Installed, progress: Progress) -> Iterator[_Session]:
    s = _Session(boot, installed, progress)
    try:
        yield s
    finally:
        s.close()


@dataclass(frozen=True)
class ScriptPlan:
    """One of our own guest-side scripts (selftests/guest), printing KTAP."""

    path: Path
    timeout: int
    env: Mapping[str, str] = field(default_factory=dict)
    label: str | None = None  # the name results carry (default: the file name)

    @property
    def name(self) -> str:
        return self.label or self.path.name


def run_tests(boot: GuestFactory, installed: Installed, plans: list[TestPlan],
              expectations: Expectations, progress: Progress, retries: int = 1,
              variants: tuple[Variant, ...] = (NO_VARIANT,),
              scripts: tuple[ScriptPlan, ...] = (),
              on_result: Callable[[list[TestResult]], None] | None = None,
              equiv_plan: equiv.EquivPlan | None = None,
              wanted: Callable[[Variant, TestPlan], bool] | None = None) -> list[TestResult]:
    """Every plan once per variant (its sysctls set first), then our scripts; one session.

    ``on_result`` sees the results so far after each test (to keep the
    report current on disk while a long run goes on).  ``wanted``: the
    pairs to run (a shard's); default all.
    """
    results: list[TestResult] = []
    pairs = [(v, p) for v in variants for p in plans if wanted is None or wanted(v, p)]
    total = len(pairs)
    with session(boot, installed, progress) as sess:
        for variant in variants:
            sess.use(variant)
            for plan in (p for v, p in pairs if v is variant):
                n = len(results) + 1
                result = _run_with_retries(sess, plan, variant, expectations, progress,
                                           retries, f"[{n}/{total}]")
                results.append(result)
                _say(progress, result)
                if on_result is not None:
                    on_result(results)
        sess.use(NO_VARIANT)
        for script in scripts:
            progress.status(f"{script.name} running (limit {script.timeout}s)")
            for result in run_script(sess, script, expectations):
                results.append(result)
                _say(progress, result)
            if on_result is not None:
                on_result(results)
        if equiv_plan is not None:
            for result in run_equiv(sess, equiv_plan, variants, progress):
                results.append(result)
                _say(progress, result)
            if on_result is not None:
                on_result(results)
    return results


def run_equiv(sess: _Session, plan: equiv.EquivPlan, variants: tuple[Variant, ...],
              progress: Progress) -> list[TestResult]:
    """The equivalence cases once per variant in this boot, compared (and with the baseline)."""
    columns: dict[str, equiv.Observables] = {}
    failed: dict[str, str] = {}
    timer = equiv.Timer()
    for variant in variants:
        sess.use(variant)
        sess.guest()  # booted (with the variant's sysctls) before the status says what runs
        progress.status(f"equivalence cases [{variant.name or 'unpatched'}]")
        run = _watched(sess, ["bash", str(plan.script)], plan.timeout, {"KSFT_DIR": GUEST_DIR})
        broke = _equiv_broke(sess, run, timer.seconds())
        if broke is not None:
            return [TestResult(f"equiv [{variant.name or 'unpatched'}]", broke.outcome,
                               (broke,))]
        obs, bad = equiv.parse(run.res.stdout)
        columns[variant.name or "unpatched"] = obs
        failed.update(bad)
    sess.use(NO_VARIANT)
    cases = sorted({c for obs in columns.values() for c in obs})
    if plan.record and plan.baseline is not None:
        equiv.save_baseline(plan.baseline, columns.get("unpatched", {}))
    elif (baseline := equiv.load_baseline(plan.baseline)) is not None:
        columns = {"unpatched": baseline, **columns}
    return equiv.results(columns, failed, timer.seconds(), cases)


def _equiv_broke(sess: _Session, run: _Watched, seconds: float) -> Attempt | None:
    """What ended the equivalence cases early, if anything; ``seconds``: the
    time of all variants so far, which is what the result reports."""
    if run.died is not None:
        return dataclasses.replace(run.died, seconds=seconds)
    trouble = run.trouble
    if trouble is None or not trouble.fatal:
        return None
    sess.discard()
    return Attempt(Outcome.CRASH, seconds, run.res.returncode, run.res.stdout[-4000:],
                   f"kernel {trouble}", trouble.excerpt)


def _say(progress: Progress, result: TestResult) -> None:
    progress.info(f"{result.label:<50} {result.outcome.value:<8} "
                  f"{result.seconds:7.1f}s  {result.change.value}")


_OUTCOMES = {
    ktap.TestStatus.SUCCESS: Outcome.PASS,
    ktap.TestStatus.SKIPPED: Outcome.SKIP,
    ktap.TestStatus.TIMEOUT: Outcome.TIMEOUT,
    ktap.TestStatus.CRASHED: Outcome.CRASH,
}


def run_script(sess: _Session, script: ScriptPlan,
               expectations: Expectations) -> list[TestResult]:
    """Run a script; each KTAP result it prints becomes one test result."""
    run = _watched(sess, ["bash", str(script.path)], script.timeout, dict(script.env))
    if run.died is not None:
        return [TestResult(script.name, run.died.outcome, (run.died,),
                           expectations.get(script.name))]
    res, seconds, trouble = run.res, run.seconds, run.trouble
    doc = ktap.parse(res.stdout.splitlines())
    if not doc.subtests:
        outcome = Outcome.SKIP if res.returncode == 4 else Outcome.FAIL
        attempt = Attempt(outcome, seconds, res.returncode, res.stdout + res.stderr,
                          "; ".join(doc.errors))
        return [TestResult(script.name, outcome, (attempt,), expectations.get(script.name))]
    out = []
    each = seconds / len(doc.subtests)
    for sub in doc.subtests:
        name = f"{script.name}:{sub.name}"
        outcome = _OUTCOMES.get(sub.status, Outcome.FAIL)
        console: tuple[str, ...] = ()
        if trouble is not None and trouble.fatal:
            outcome, console = Outcome.CRASH, trouble.excerpt
        attempt = Attempt(outcome, each, res.returncode, "\n".join(sub.log), sub.directive,
                          console)
        out.append(TestResult(name, outcome, (attempt,), expectations.get(name)))
    return out


def _run_with_retries(sess: _Session, plan: TestPlan, variant: Variant,
                      expectations: Expectations, progress: Progress, retries: int,
                      tag: str) -> TestResult:
    attempts: list[Attempt] = []
    for attempt in range(plan.retries_under(retries) + 1):
        label = f"{tag} {plan.name}" + (f" [{variant.name}]" if variant.name else "")
        progress.status(f"{label}{' (retry)' if attempt else ''} running (limit {plan.timeout}s)")
        attempts.append(run_one(sess, plan))
        if not attempts[-1].outcome.bad:
            break
    return TestResult(plan.name, final_outcome(attempts), tuple(attempts),
                      expectations.get(plan.name), expectations.why.get(plan.name, ""),
                      variant.name)


def guest_test_argv(collection: str, plan: TestPlan) -> list[str]:
    """One test through the tree's runner, with our time limit in its settings file.

    The runner reopens /dev/stdout for each test's output; the guest-init
    script points it back at the process's own stdout (virtme-ng aims it at
    its script port), and the pipe makes that stdout reopenable.
    """
    settings = f"{GUEST_DIR}/{collection}/settings"
    tools = " && ".join(
        f"ln -sf {path} /run/patchgen/tools/{name}" for name, path in sorted(plan.tools.items()))
    script = (
        f"echo timeout={plan.timeout} > {settings}"
        + (f" && mkdir -p /run/patchgen/tools && {tools}" if tools else "")
        + f" && cd {GUEST_DIR} && ./run_kselftest.sh -t {collection}:{plan.name} 2>&1 | cat"
    )
    return ["sh", "-c", script]


def guest_test_env(plan: TestPlan, accel: Accel) -> dict[str, str]:
    """The environment of one test in the guest.

    Under TCG the guest is a slow machine, and the selftests have a knob for
    that, the one NIPA sets on its debug runners: KSFT_MACHINE_SLOW=yes makes
    br_netfilter.sh send 100 broadcast pings rather than 500 (otherwise it
    times out at 300 s), nft_queue.sh queue 25 packets, nft_nat_zones.sh use
    40 clients.  A test's own env in kselftests.toml still wins.
    """
    env = {"KSFT_MACHINE_SLOW": "yes"} if accel is Accel.TCG else {}
    env.update(plan.env)
    if plan.tools:
        env["PATH"] = "/run/patchgen/tools:" + GUEST_PATH
    return env


def run_one(sess: _Session, plan: TestPlan) -> Attempt:
    env = guest_test_env(plan, sess.guest().spec.accel)
    run = _watched(sess, guest_test_argv(sess.installed.collection, plan), plan.timeout + 60,
                   env)
    if run.died is not None:
        return run.died
    res, seconds, trouble = run.res, run.seconds, run.trouble
    attempt = attempt_from_ktap(res, seconds)
    if trouble is not None and trouble.fatal:
        # The kernel complained even if the script passed: that is a crash.
        sess.discard()
        return Attempt(Outcome.CRASH, seconds, res.returncode, attempt.output,
                       f"kernel {trouble}", trouble.excerpt)
    if trouble is not None:
        return Attempt(attempt.outcome, seconds, res.returncode, attempt.output,
                       (attempt.detail + "; " if attempt.detail else "") + f"kernel {trouble}",
                       trouble.excerpt)
    return attempt


def attempt_from_ktap(res: CommandResult, seconds: float) -> Attempt:
    doc = ktap.parse(res.stdout.splitlines())
    output = "\n".join((res.stdout + res.stderr).splitlines()[-OUTPUT_TAIL:])
    if len(doc.subtests) != 1:
        return Attempt(Outcome.FAIL, seconds, res.returncode, output,
                       f"runner printed {len(doc.subtests)} results; {'; '.join(doc.errors)}")
    test = doc.subtests[0]
    outcome = _OUTCOMES.get(test.status, Outcome.FAIL)
    return Attempt(outcome, seconds, res.returncode, output, test.directive)


@dataclass(frozen=True)
class _Watched:
    """A command run in the guest with an eye on the console."""

    res: CommandResult
    seconds: float
    trouble: Trouble | None  # what the kernel said meanwhile
    died: Attempt | None  # no result: the guest died, hung or ran out of time


def _watched(sess: _Session, argv: list[str], timeout: int, env: dict[str, str]) -> _Watched:
    """Run ``argv``, timed, and read the console it produced; a command
    without a result is judged at once (_dead_guest), which replaces the
    guest."""
    guest = sess.guest()
    mark = guest.console_size()
    start = time.monotonic()
    res = guest.run(argv, timeout=timeout, env=env)
    seconds = time.monotonic() - start
    if res.returncode is None:
        return _Watched(res, seconds, None, _dead_guest(sess, guest, res, seconds, mark))
    return _Watched(res, seconds, guest.trouble(mark), None)


def _dead_guest(sess: _Session, guest: Guest, res: CommandResult, seconds: float,
                mark: int) -> Attempt:
    trouble = guest.trouble(mark)
    alive = guest.responsive()
    output = "\n".join((res.stdout + res.stderr).splitlines()[-OUTPUT_TAIL:])
    tail = tuple(guest.console().splitlines()[-20:])
    sess.discard()
    if trouble is not None:
        return Attempt(Outcome.CRASH, seconds, None, output, f"kernel {trouble}",
                       trouble.excerpt)
    if alive:
        return Attempt(Outcome.TIMEOUT, seconds, None, output,
                       "no result within the time limit; guest still answered")
    return Attempt(Outcome.CRASH, seconds, None, output,
                   "guest stopped answering (hang); rebooted", tail)

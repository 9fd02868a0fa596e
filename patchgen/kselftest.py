"""The tree's netfilter kselftests: build on the host, run one by one in the guest.

Tests come from the tree (``make kselftest-install`` writes the list);
``selftests/kselftests.toml`` adds per-test limits and tiers.  Each test
runs through the tree's own ``run_kselftest.sh`` so its output is real
KTAP, which is parsed into typed results.  A test that kills or freezes the
guest is recorded as a crash with the console lines that show it, and the
guest is rebooted for the next test.

A run's work is a list of units (``work_units``: a test in one position of
the switch, one of our scripts, the equivalence cases), each with a stable
key (``work_keys``).  ``run_tests`` gives them to one guest, or to several
at once (``jobs``): each lane a thread with a guest of its own, taking
units from a shared queue; the results come back in the order one guest
would have produced them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import re
import threading
import time
import tomllib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patchgen import build as kbuild
from patchgen import equiv, ktap, proc, shard
from patchgen.errors import BuildFailure, CommandFailed, GuestFailure, UserError
from patchgen.probe import TreeFacts
from patchgen.progress import Progress
from patchgen.results import Attempt, Expectations, Outcome, TestResult, final_outcome
from patchgen.settings import Settings
from patchgen.vm.accel import Accel
from patchgen.vm.guest import CaseTrouble, CommandResult, Guest, Trouble, trouble_by_case

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
    # Run at the first switch position only: a test that sets the switch
    # itself, case by case, gains nothing from starting at each position.
    once: bool = False

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

    @property
    def key(self) -> str:
        """The variant in a work key: its values ("1" for the switch at 1; "": none)."""
        return ",".join(self.sysctls.values())


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
                        int(spec.get("retries", 0)), bool(spec.get("once", False)))


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


def tidy(selection: str) -> str:
    """``--tests`` as meant: " quick," is the quick tier, not a test named quick."""
    return ",".join(n.strip() for n in selection.split(",") if n.strip())


def select(catalogue: Catalogue, available: tuple[str, ...], selection: str) -> list[TestPlan]:
    """``selection``: a tier (quick, default, all) or a comma-separated list of names."""
    selection = tidy(selection)
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
    selection = tidy(selection)
    if selection in BUILTIN_TIERS or selection in catalogue.tiers or known is None:
        return
    choices = list(BUILTIN_TIERS) + list(catalogue.tiers) + known
    names = [n.strip() for n in selection.split(",") if n.strip()]
    tiers = [n for n in names if n in BUILTIN_TIERS or n in catalogue.tiers]
    if tiers:
        raise UserError(f"--tests {selection}: {tiers[0]!r} is a tier, and a tier "
                        "stands alone", hint=f"--tests {tiers[0]}, or test names only")
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, choices, n=3)
            hint = (f"did you mean: {', '.join(close)}" if close
                    else "known here: " + ", ".join(choices))
            raise UserError(f"unknown test {name!r} in this tree", hint=hint)


# -- the work of a run ---------------------------------------------------------------
EQUIV_KEY = shard.EQUIV_KEY


@dataclass(frozen=True)
class WorkUnit:
    """What one guest does at a time: a kselftest in one position of the
    switch, one of our scripts, or the equivalence cases (every position,
    compared, in one boot: neither ``plan`` nor ``script``)."""

    key: str
    variant: Variant = NO_VARIANT
    plan: TestPlan | None = None
    script: ScriptPlan | None = None
    number: int = 0  # a kselftest's place among the test runs ("[3/40]")


def work_units(plans: Sequence[TestPlan], variants: Sequence[Variant],
               scripts: Sequence[ScriptPlan], equiv: bool) -> tuple[WorkUnit, ...]:
    """The units of a run in the order one guest runs them: every plan in
    each variant (a plan run ``once``: in the first), then our scripts, then
    the equivalence cases."""
    units: list[WorkUnit] = []
    for variant in variants:
        for plan in plans:
            if plan.once and variant is not variants[0]:
                continue
            units.append(WorkUnit(shard.pair_key(variant.key, plan.name), variant, plan=plan,
                                  number=len(units) + 1))
    units += [WorkUnit(shard.SCRIPT_PREFIX + script.name, script=script) for script in scripts]
    if equiv:
        units.append(WorkUnit(EQUIV_KEY))
    return tuple(units)


def work_keys(plans: Sequence[TestPlan], variants: Sequence[Variant],
              scripts: Sequence[ScriptPlan], equiv: bool) -> list[str]:
    """The keys of a run's units of work, in the order one guest runs them.

    Pure and stable (the same tests, positions and scripts give the same
    keys, on any machine), and unique within a run:

    * ``<position>/<test>`` for a kselftest with the switch at a position,
      "1/nft_meta.sh", "0/nft_meta.sh" (on a tree without the switch, the
      test's name alone: "nft_meta.sh");
    * ``script:<name>`` for our scripts: "script:nf_hook_bpf.sh",
      "script:selftest/nf_hook_bpf.sh";
    * ``equiv`` for the equivalence cases (all positions in one guest).

    A subset of these keys is a part of the run that any guest can do alone.
    """
    return [u.key for u in work_units(plans, variants, scripts, equiv)]


def default_jobs(accel: Accel, host_cpus: int, mem_available: int, guest_memory: int,
                 guest_cpus: int, units: int) -> int:
    """Guests at once when --jobs is not given, at least one.

    TCG runs a guest on one host thread (TCG_QEMU_OPTS): one guest per
    core.  KVM: the host's CPUs over the guest's.  Either way no more
    guests than the host's available memory holds, nor than units of work.
    """
    by_cpu = host_cpus if accel is Accel.TCG else host_cpus // max(1, guest_cpus)
    by_memory = mem_available // max(1, guest_memory)
    return max(1, min(by_cpu, by_memory, units))


# -- running ------------------------------------------------------------------------
@dataclass(frozen=True)
class Lane:
    """One of the guests a run keeps at once.

    Number 0 is the only guest of a serial run (its boots are numbered as
    they always were); lanes of a parallel run count from 1.  ``cancel``
    set: the run is stopping; the lane's guest ends what it does
    (Guest.cancel) and the lane powers it off.
    """

    number: int
    progress: Progress
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def name(self) -> str:
        return f"guest {self.number}"


GuestFactory = Callable[[Lane], AbstractContextManager[Guest]]


@dataclass
class LaneRecord:
    """What a lane did: its units (by key) and the time from its start to its last result."""

    number: int
    keys: list[str] = field(default_factory=list)
    busy_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"lane": self.number, "busy_seconds": round(self.busy_seconds, 2),
                "units": list(self.keys)}


@dataclass(frozen=True)
class LaneRun:
    """The results of run_tests, in serial order, and what each lane did."""

    results: list[TestResult]
    lanes: tuple[LaneRecord, ...]


class _Session:
    """The current guest; rebooted after a test kills it."""

    def __init__(self, boot: GuestFactory, installed: Installed, lane: Lane) -> None:
        self.boot = boot
        self.installed = installed
        self.lane = lane
        self.progress = lane.progress
        self.boots = 0
        self.variant = NO_VARIANT
        self._stack = contextlib.ExitStack()
        self._guest: Guest | None = None

    def guest(self) -> Guest:
        if self._guest is None:
            self._guest = self._stack.enter_context(self.boot(self.lane))
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
def session(boot: GuestFactory, installed: Installed, lane: Lane) -> Iterator[_Session]:
    s = _Session(boot, installed, lane)
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
              equiv_plan: equiv.EquivPlan | None = None, jobs: int = 1,
              only: Collection[str] | None = None,
              cost: Callable[[str], float] | None = None) -> LaneRun:
    """Every plan once per variant (its sysctls set first), then our scripts,
    then the equivalence cases: in one guest, or in ``jobs`` at once.

    ``on_result`` sees the results so far, in serial order, after each unit
    (to keep the report current on disk while a long run goes on).  ``only``:
    the keys of the units to run (a shard's, work_keys()); default all.
    ``cost``: a unit's expected seconds by key; several guests then take
    the longest units first, so that no guest is left with a long one at
    the end while the others idle (results stay in serial order).
    """
    every = work_units(plans, variants, scripts, equiv_plan is not None)
    units = tuple(u for u in every if only is None or u.key in only)
    runs = sum(1 for u in every if u.plan is not None)  # "[n/runs]": n counts in all units
    work = _Work(units, installed, expectations, retries, variants, equiv_plan, runs,
                 on_result, cost if jobs > 1 else None, serial=jobs <= 1)
    if jobs <= 1:
        record = _lane(boot, Lane(0, progress), work, variants[0])
        return LaneRun(work.results(), (record,))
    lanes = [Lane(n, progress.lane(f"guest {n}")) for n in range(1, jobs + 1)]
    return LaneRun(*_parallel(boot, lanes, work, variants))


class _Work:
    """The units of a run, those not yet taken, and the results so far."""

    def __init__(self, units: tuple[WorkUnit, ...], installed: Installed,
                 expectations: Expectations, retries: int, variants: tuple[Variant, ...],
                 equiv_plan: equiv.EquivPlan | None, total: int,
                 on_result: Callable[[list[TestResult]], None] | None,
                 cost: Callable[[str], float] | None = None, serial: bool = False) -> None:
        self.units = units
        self.installed = installed
        self.expectations = expectations
        self.retries = retries
        self.variants = variants
        self.equiv_plan = equiv_plan
        self.total = total
        self.on_result = on_result
        # Longest first when costs are known (sorted() is stable: ties keep
        # the serial order).
        self._pending = list(units) if cost is None else sorted(units, key=lambda u: -cost(u.key))
        self._serial = serial
        self._slots: list[list[TestResult] | None] = [None] * len(units)
        self._lock = threading.Lock()

    def take(self, prefer: Variant) -> WorkUnit | None:
        """The next unit for a lane whose guest is at ``prefer``: the first
        pending one that needs no other position (it is at ``prefer``, or
        sets no switch: our scripts, the equivalence cases), else the first.
        One lane: the list order."""
        with self._lock:
            if not self._pending:
                return None
            unit = self._pending[0] if self._serial else next(
                (u for u in self._pending if u.variant == prefer or not u.variant.sysctls),
                self._pending[0])
            self._pending.remove(unit)
            return unit

    def done(self, unit: WorkUnit, results: list[TestResult]) -> None:
        with self._lock:
            self._slots[self.units.index(unit)] = results
            if self.on_result is not None:
                self.on_result(self.results())

    def results(self) -> list[TestResult]:
        return [r for slot in self._slots if slot is not None for r in slot]


def _lane(boot: GuestFactory, lane: Lane, work: _Work, prefer: Variant) -> LaneRecord:
    """One guest taking units until none is left."""
    record = LaneRecord(lane.number)
    start = time.monotonic()
    with session(boot, work.installed, lane) as sess:
        while (unit := work.take(prefer)) is not None:
            if lane.cancel.is_set():
                raise KeyboardInterrupt("cancelled: the run is stopping")
            if unit.variant.sysctls:
                prefer = unit.variant
            results = _run_unit(sess, unit, work, lane.progress)
            for result in results:
                _say(lane.progress, result)
            record.keys.append(unit.key)
            record.busy_seconds = time.monotonic() - start
            work.done(unit, results)
    return record


def _run_unit(sess: _Session, unit: WorkUnit, work: _Work,
              progress: Progress) -> list[TestResult]:
    if unit.plan is not None:
        if sess.variant != unit.variant:
            sess.use(unit.variant)
        return [_run_with_retries(sess, unit.plan, unit.variant, work.expectations, progress,
                                  work.retries, f"[{unit.number}/{work.total}]")]
    if sess.variant != NO_VARIANT:
        sess.use(NO_VARIANT)
    if unit.script is not None:
        progress.status(f"{unit.script.name} running (limit {unit.script.timeout}s)")
        return run_script(sess, unit.script, work.expectations)
    assert work.equiv_plan is not None
    return run_equiv(sess, work.equiv_plan, work.variants, progress)


def _parallel(boot: GuestFactory, lanes: list[Lane], work: _Work,
              variants: tuple[Variant, ...]) -> tuple[list[TestResult], tuple[LaneRecord, ...]]:
    """The lanes in threads; the first failure (or Ctrl-C, which only the
    main thread sees) stops them all, and each powers its own guest off."""
    cancel = threading.Event()
    lanes = [dataclasses.replace(lane, cancel=cancel) for lane in lanes]
    records: list[LaneRecord | None] = [None] * len(lanes)
    errors: list[BaseException] = []
    ended = [threading.Event() for _ in lanes]
    lock = threading.Lock()

    def main(i: int) -> None:
        try:
            records[i] = _lane(boot, lanes[i], work, variants[i % len(variants)])
        except BaseException as exc:  # handed to the main thread
            with lock:
                errors.append(exc)
            cancel.set()
        finally:
            ended[i].set()

    threads = [threading.Thread(target=main, args=(i,), name=f"patchgen-{lane.name}")
               for i, lane in enumerate(lanes)]
    try:
        for t in threads:
            t.start()
        _wait(ended)
    except BaseException:
        cancel.set()
        _wait_through_interrupts([e for e, t in zip(ended, threads, strict=True) if t.ident])
        raise
    if errors:
        raise errors[0]
    return work.results(), tuple(r for r in records if r is not None)


def _wait(ended: list[threading.Event]) -> None:
    """Until every lane has ended.  Not Thread.join(): on Python 3.11 a join
    that Ctrl-C interrupts can mark a running thread as stopped."""
    for e in ended:
        while not e.wait(0.2):
            pass


def _wait_through_interrupts(ended: list[threading.Event]) -> None:
    """Wait for every lane to power its guest off, whatever else is pressed meanwhile."""
    while not all(e.is_set() for e in ended):
        with contextlib.suppress(KeyboardInterrupt):
            _wait(ended)


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
    if trouble is None:
        return None
    if not trouble.fatal:
        # Our own cases: a kernel that warned while they ran fails them.
        return Attempt(Outcome.FAIL, seconds, run.res.returncode, run.res.stdout[-4000:],
                       f"kernel {trouble}", trouble.excerpt)
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
    split = trouble_by_case(run.console, [(sub.number, sub.name) for sub in doc.subtests])
    troubles = _case_troubles(doc.subtests, trouble, split)
    for sub, case_trouble in zip(doc.subtests, troubles, strict=True):
        name = f"{script.name}:{sub.name}"
        outcome = _OUTCOMES.get(sub.status, Outcome.FAIL)
        console: tuple[str, ...] = ()
        detail = sub.directive
        # Our own scripts: a kernel that warned while a case ran fails it (a
        # kselftest's warning is noted and its verdict stands, run_one).  A
        # skip stays a skip when the trouble is the whole script's; one
        # during the skip itself fails it.
        if case_trouble is not None and (case_trouble.fatal or outcome is not Outcome.SKIP
                                         or split is not None):
            outcome = Outcome.CRASH if case_trouble.fatal else Outcome.FAIL
            console, detail = case_trouble.excerpt, f"kernel {case_trouble}"
        attempt = Attempt(outcome, each, res.returncode, "\n".join(sub.log), detail, console)
        out.append(TestResult(name, outcome, (attempt,), expectations.get(name)))
    whole = _whole_script(res, doc.errors, split.after if split is not None else None)
    if whole is not None:
        out.append(TestResult(script.name, whole.outcome, (whole,),
                              expectations.get(script.name)))
    return out


def _whole_script(res: CommandResult, errors: Sequence[str],
                  after: Trouble | None) -> Attempt | None:
    """What the script did besides its cases, as a result of its own (None: nothing)."""
    if errors:
        # Fewer results than the plan said, numbers out of order: the script
        # stopped (or went wrong) part way, and the cases it never printed
        # must not pass for being absent.
        return Attempt(Outcome.CRASH, 0.0, res.returncode, res.stdout[-4000:] + res.stderr,
                       "; ".join(errors) + (f"; kernel {after}" if after else ""),
                       after.excerpt if after else ())
    if after is not None:
        return Attempt(Outcome.CRASH if after.fatal else Outcome.FAIL, 0.0, res.returncode,
                       "", f"kernel {after} after its last case", after.excerpt)
    return None


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


def _case_troubles(cases: Sequence[ktap.Test], trouble: Trouble | None,
                   split: CaseTrouble | None) -> list[Trouble | None]:
    """The kernel trouble each case of a script is judged by: the one that
    came while it ran, where the script marked its cases' ends in the
    kernel log, and after an oops every later case's too (a kernel that
    oopsed vouches for nothing); without the marks, the script's trouble is
    every case's (which case caused it, the log cannot tell)."""
    if split is None:
        return [trouble] * len(cases)
    out: list[Trouble | None] = []
    fatal: Trouble | None = None
    for sub in cases:
        own = split.by_case.get(sub.number)
        if own is not None and own.fatal and fatal is None:
            fatal = own
        out.append(fatal or own)
    return out


@dataclass(frozen=True)
class _Watched:
    """A command run in the guest with an eye on the console."""

    res: CommandResult
    seconds: float
    trouble: Trouble | None  # what the kernel said meanwhile
    died: Attempt | None  # no result: the guest died, hung or ran out of time
    console: str = ""  # the console meanwhile


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
    return _Watched(res, seconds, guest.trouble(mark), None, guest.console()[mark:])


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

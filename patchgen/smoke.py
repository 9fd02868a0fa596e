"""A smoke run: boot one build and run a few tests in it.

``check --boot`` runs the smoke set (``SMOKE``) on every patch's build,
``bisect`` one test on every commit it probes.  Tests run at the commit's
default switch position (nothing is set: what a user booting that kernel
gets); our own scripts (the runtime checks and the series' selftest) run
when the commit has the generator, as ``test`` decides
(stages.has_generator), whatever the patch's number.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from patchgen import build as kbuild
from patchgen import kselftest, results, stages
from patchgen.errors import GuestFailure
from patchgen.progress import Progress
from patchgen.results import Outcome, TestResult
from patchgen.settings import Settings
from patchgen.vm import accel as vmaccel

if TYPE_CHECKING:
    from patchgen.series.context import Runtime

NOT_RUN = "not run"  # the test does not exist at this commit
NO_BOOT = "no boot"  # the guest did not come up
NOT_BUILT = "not built"


@dataclass(frozen=True)
class Selection:
    """What a smoke run runs: kselftests (a tier or names; None: none) and our
    scripts by name (None: every one the commit has)."""

    kselftests: str | None
    scripts: tuple[str, ...] | None

    def wants_script(self, name: str) -> bool:
        return self.scripts is None or name in self.scripts


SMOKE = Selection("quick", None)


def for_test(name: str, runtime: Runtime) -> Selection:
    """One test: one of our scripts (``name[:case]``) or else a kselftest."""
    script = name.partition(":")[0]
    if script in stages.script_names(runtime):
        return Selection(None, (script,))
    return Selection(name, ())


@dataclass
class Smoke:
    """What one smoke run gave: the results, the boots, and why it stopped early."""

    results: list[TestResult]
    boots: list[dict[str, Any]]
    error: str = ""  # the guest did not come up (results so far stand)

    @property
    def switch_default(self) -> str | None:
        return next((str(b["switch_default"]) for b in self.boots if "switch_default" in b),
                    None)

    @property
    def failed(self) -> list[TestResult]:
        return results.failed(self.results)

    @property
    def status(self) -> str:
        if self.error:
            return NO_BOOT
        return "fail" if self.failed else "ok"

    def outcome_of(self, name: str) -> str:
        """The result of one test (a script without ":case": its worst case),
        as bisect compares it: a flaky pass counts as a pass."""
        mine = [r for r in self.results if r.name == name or r.name.startswith(name + ":")]
        if not mine:
            return NO_BOOT if self.error else NOT_RUN
        bad = [r for r in mine if r.outcome.bad]
        if bad:
            return bad[0].outcome.value
        if any(r.outcome in (Outcome.PASS, Outcome.FLAKY) for r in mine):
            return Outcome.PASS.value
        return mine[0].outcome.value


@dataclass(frozen=True)
class Guest:
    """How to boot: the accelerator asked for, the guest's size."""

    accel: str = "auto"
    memory: str = "2G"
    cpus: int = 2
    retries: int = 1


def run(built: kbuild.BuildResult, installed: kselftest.Installed, selection: Selection,
        source: str | None, settings: Settings, progress: Progress, run_dir: Path,
        runtime: Runtime, series: str, guest: Guest = Guest(),
        module: Path | None = None) -> Smoke:
    """Boot ``built`` (its kselftests ``installed``) and run ``selection``;
    nothing to run, no boot.  ``source``: the commit's generator file (None:
    it has none); cases that need what a later patch adds to it are skipped.
    ``module``: the guest checks' module (stages.build_checks_module())."""
    generator = source is not None
    unmet = stages.unmet_needs(runtime.needs, source)
    catalogue = kselftest.load_catalogue(settings.catalogue_file)
    plans = []
    if selection.kselftests is not None:
        wanted = selection.kselftests
        if wanted in catalogue.tiers or wanted in kselftest.BUILTIN_TIERS or \
                wanted in installed.tests:
            plans = kselftest.select(catalogue, installed.tests, wanted)
    scripts = tuple(s for s in stages.guest_scripts(settings, runtime, generator,
                                                    run_dir=run_dir, module=module)
                    if selection.wants_script(s.name))
    boots: list[dict[str, Any]] = []
    if not plans and not scripts:
        return Smoke([], boots)
    # Not stage_accel(): a smoke run is a step of its caller's stage.
    decision = vmaccel.decide(guest.accel, built.image, settings.cache, progress)
    expectations = results.load_expectations(
        settings.expectations_file(series), decision.accel.value)
    factory = stages.guest_factory(built, decision, settings, run_dir, boots, runtime,
                                   memory=guest.memory, cpus=guest.cpus)
    so_far: list[TestResult] = []

    def keep(done: list[TestResult]) -> None:
        so_far[:] = done

    try:
        got = kselftest.run_tests(factory, installed, plans, expectations, progress,
                                  guest.retries, (kselftest.NO_VARIANT,), scripts, keep).results
    except GuestFailure as exc:
        return Smoke(results.skip_unmet(so_far, unmet), boots, exc.message.splitlines()[0])
    done = results.skip_unmet(got, unmet)
    stages.say_unmet(progress, done, unmet)
    return Smoke(done, boots)

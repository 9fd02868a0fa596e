"""A command in the guest that dies, or a kernel that complains, is judged
the same way for a kselftest, one of our scripts and the equivalence cases."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from patchgen import equiv, kselftest
from patchgen.kselftest import NO_VARIANT, ScriptPlan, TestPlan, Variant
from patchgen.progress import Progress
from patchgen.results import Expectations, Outcome
from patchgen.vm.accel import Accel
from patchgen.vm.guest import CommandResult

OOPS = "BUG: kernel NULL pointer dereference, address: 0000000000000000\n"
KTAP_PASS = "TAP version 13\n1..1\nok 1 selftests: net/netfilter: x.sh\n"


@dataclass
class FakeGuest:
    returncode: int | None  # what every command returns (None: no result)
    stdout: str = ""
    console_after: str = ""  # what the kernel prints while the command runs
    answers: bool = False  # still answers after a command without result
    log: str = "boot\n"

    @property
    def spec(self) -> Any:
        return cast(Any, type("Spec", (), {"accel": Accel.KVM}))

    def console(self) -> str:
        return self.log

    def console_size(self) -> int:
        return len(self.log)

    def trouble(self, since: int = 0) -> Any:
        from patchgen.vm.guest import find_trouble

        return find_trouble(self.log, since)

    def run(self, argv: list[str], timeout: float, env: dict[str, str] | None = None
            ) -> CommandResult:
        self.log += self.console_after
        return CommandResult(tuple(argv), self.returncode, self.stdout, "", 1.0)

    def responsive(self) -> bool:
        return self.answers


@dataclass
class FakeSession:
    fake: FakeGuest
    discarded: int = 0
    used: list[Variant] = field(default_factory=list)

    @property
    def installed(self) -> Any:
        return cast(Any, type("Installed", (), {"collection": "net/netfilter"}))

    def guest(self) -> FakeGuest:
        return self.fake

    def discard(self) -> None:
        self.discarded += 1

    def use(self, variant: Variant) -> None:
        self.used.append(variant)


def test_a_kselftest_without_result_from_a_hung_guest_is_a_crash() -> None:
    sess = FakeSession(FakeGuest(None))
    attempt = kselftest.run_one(cast(Any, sess), TestPlan("x.sh", 60))
    assert attempt.outcome is Outcome.CRASH and "hang" in attempt.detail
    assert sess.discarded == 1


def test_a_kselftest_whose_guest_still_answers_timed_out() -> None:
    sess = FakeSession(FakeGuest(None, answers=True))
    attempt = kselftest.run_one(cast(Any, sess), TestPlan("x.sh", 60))
    assert attempt.outcome is Outcome.TIMEOUT and sess.discarded == 1


def test_a_passing_kselftest_with_an_oops_is_a_crash() -> None:
    sess = FakeSession(FakeGuest(0, KTAP_PASS, OOPS))
    attempt = kselftest.run_one(cast(Any, sess), TestPlan("x.sh", 60))
    assert attempt.outcome is Outcome.CRASH and attempt.detail.startswith("kernel ")
    assert attempt.console and sess.discarded == 1


def test_a_script_without_result_is_one_crashed_result() -> None:
    sess = FakeSession(FakeGuest(None, console_after=OOPS))
    (result,) = kselftest.run_script(cast(Any, sess), ScriptPlan(Path("checks.sh"), 60),
                                     Expectations(None, {}))
    assert result.name == "checks.sh" and result.outcome is Outcome.CRASH
    assert result.attempts[0].console and sess.discarded == 1


def test_a_script_with_an_oops_marks_its_results_crashed() -> None:
    """As it was: unlike after a kselftest, the guest is not replaced here."""
    sess = FakeSession(FakeGuest(0, KTAP_PASS, OOPS))
    (result,) = kselftest.run_script(cast(Any, sess), ScriptPlan(Path("checks.sh"), 60),
                                     Expectations(None, {}))
    assert result.outcome is Outcome.CRASH and sess.discarded == 0


WARN = ("------------[ cut here ]------------\n"
        "WARNING: CPU: 1 PID: 9 at net/netfilter/nf_hook_bpf.c:300 nf_hook_bpf_attach+0x1/0x2\n")
LOCKDEP = ("======================================================\n"
           "WARNING: possible circular locking dependency detected\n"
           "6.1.192 #1 Not tainted\n")


@pytest.mark.parametrize("console, kind", [(WARN, "warning"), (LOCKDEP, "lockdep")])
def test_a_script_during_which_the_kernel_warns_fails(console: str, kind: str) -> None:
    """Our own scripts passed whatever the kernel warned meanwhile (a WARN in
    the generator, a lockdep report): only a fatal complaint counted."""
    sess = FakeSession(FakeGuest(0, KTAP_PASS, console))
    (result,) = kselftest.run_script(cast(Any, sess), ScriptPlan(Path("checks.sh"), 60),
                                     Expectations(None, {}))
    assert result.outcome is Outcome.FAIL and sess.discarded == 0
    assert result.attempts[0].detail == f"kernel {kind}" and result.attempts[0].console


def test_a_skipped_case_stays_skipped_when_the_kernel_warns() -> None:
    sess = FakeSession(FakeGuest(0, "TAP version 13\n1..2\nok 1 a\nok 2 b # SKIP no failslab\n",
                                 WARN))
    a, b = kselftest.run_script(cast(Any, sess), ScriptPlan(Path("checks.sh"), 60),
                                Expectations(None, {}))
    assert (a.outcome, b.outcome) == (Outcome.FAIL, Outcome.SKIP)


def test_equivalence_cases_fail_when_the_kernel_warns() -> None:
    sess = FakeSession(FakeGuest(0, "", WARN))
    (result,) = kselftest.run_equiv(cast(Any, sess), equiv.EquivPlan(Path("equiv.sh")),
                                    (Variant("nf_hook_bpf=1", {"x": "1"}),),
                                    Progress(stream=io.StringIO(), quiet=True))
    assert result.outcome is Outcome.FAIL and "kernel warning" in result.attempts[0].detail
    assert sess.discarded == 0


def test_a_kselftest_keeps_its_verdict_when_the_kernel_warns() -> None:
    """Upstream's tests may provoke warnings of their own: noted, not judged."""
    sess = FakeSession(FakeGuest(0, KTAP_PASS, WARN))
    attempt = kselftest.run_one(cast(Any, sess), TestPlan("x.sh", 60))
    assert attempt.outcome is Outcome.PASS and attempt.detail == "kernel warning"


def test_equivalence_cases_stop_at_a_guest_that_dies() -> None:
    sess = FakeSession(FakeGuest(None))
    (result,) = kselftest.run_equiv(cast(Any, sess), equiv.EquivPlan(Path("equiv.sh")),
                                    (Variant("nf_hook_bpf=1", {"x": "1"}),),
                                    Progress(stream=io.StringIO(), quiet=True))
    assert result.name == "equiv [nf_hook_bpf=1]" and result.outcome is Outcome.CRASH
    assert sess.discarded == 1 and sess.used == [Variant("nf_hook_bpf=1", {"x": "1"})]


def test_equivalence_cases_stop_at_an_oops() -> None:
    sess = FakeSession(FakeGuest(0, "", OOPS))
    (result,) = kselftest.run_equiv(cast(Any, sess), equiv.EquivPlan(Path("equiv.sh")),
                                    (NO_VARIANT,), Progress(stream=io.StringIO(), quiet=True))
    assert result.name == "equiv [unpatched]" and result.outcome is Outcome.CRASH
    assert result.attempts[0].detail.startswith("kernel ") and sess.discarded == 1


def _done(n: int, name: str) -> str:
    return f"[   12.{n:06d}] patchgen-case-done: {n} {name}\n"


KTAP_THREE = "TAP version 13\n1..3\nok 1 a\nok 2 b\nok 3 c\n"


def _three(console: str) -> list[Outcome]:
    sess = FakeSession(FakeGuest(0, KTAP_THREE, console))
    results = kselftest.run_script(cast(Any, sess), ScriptPlan(Path("checks.sh"), 60),
                                   Expectations(None, {}))
    return [r.outcome for r in results]


def test_a_warning_fails_only_the_case_that_was_running() -> None:
    """A script that marks the end of each case in the kernel log
    (patchgen-case-done) gets the warning attributed to the case during
    which it came, not to every case of the script."""
    sess = FakeSession(FakeGuest(0, KTAP_THREE, _done(1, "a") + WARN + _done(2, "b")
                                 + _done(3, "c")))
    a, b, c = kselftest.run_script(cast(Any, sess), ScriptPlan(Path("checks.sh"), 60),
                                   Expectations(None, {}))
    assert (a.outcome, b.outcome, c.outcome) == (Outcome.PASS, Outcome.FAIL, Outcome.PASS)
    assert b.attempts[0].detail == "kernel warning" and b.attempts[0].console


def test_a_warning_before_the_first_mark_is_the_first_cases() -> None:
    assert _three(WARN + _done(1, "a") + _done(2, "b") + _done(3, "c")) == [
        Outcome.FAIL, Outcome.PASS, Outcome.PASS]


def test_a_warning_after_the_last_case_is_a_result_of_its_own() -> None:
    """In the script's cleanup: no case ran, but the run must not pass."""
    sess = FakeSession(FakeGuest(0, KTAP_THREE, _done(1, "a") + _done(2, "b") + _done(3, "c")
                                 + LOCKDEP))
    *cases, extra = kselftest.run_script(cast(Any, sess), ScriptPlan(Path("checks.sh"), 60),
                                         Expectations(None, {}))
    assert [r.outcome for r in cases] == [Outcome.PASS] * 3
    assert extra.name == "checks.sh" and extra.outcome is Outcome.FAIL
    assert "after its last case" in extra.attempts[0].detail


def test_an_oops_crashes_its_case_and_every_later_one() -> None:
    """A kernel that oopsed cannot vouch for what ran after."""
    assert _three(_done(1, "a") + OOPS + _done(2, "b") + _done(3, "c")) == [
        Outcome.PASS, Outcome.CRASH, Outcome.CRASH]


def test_marks_of_another_run_do_not_count() -> None:
    """Marks are matched by number and name; a console with marks that do
    not match the results (another script's) attributes nothing."""
    assert _three(_done(1, "x") + WARN + _done(2, "y")) == [Outcome.FAIL] * 3


def test_a_warning_while_a_case_skips_fails_it() -> None:
    """With the cases marked, a warning in a skip's own window belongs to
    no other case: the skip must not hide it."""
    sess = FakeSession(FakeGuest(0, "TAP version 13\n1..2\nok 1 a\nok 2 b # SKIP no failslab\n",
                                 _done(1, "a") + WARN + _done(2, "b")))
    a, b = kselftest.run_script(cast(Any, sess), ScriptPlan(Path("checks.sh"), 60),
                                Expectations(None, {}))
    assert (a.outcome, b.outcome) == (Outcome.PASS, Outcome.FAIL)


def test_a_script_cut_short_names_the_trouble_after_its_last_case() -> None:
    sess = FakeSession(FakeGuest(0, "TAP version 13\n1..3\nok 1 a\n",
                                 _done(1, "a") + WARN))
    a, script = kselftest.run_script(cast(Any, sess), ScriptPlan(Path("checks.sh"), 60),
                                     Expectations(None, {}))
    assert a.outcome is Outcome.PASS and script.outcome is Outcome.CRASH
    assert "kernel warning" in script.attempts[0].detail and script.attempts[0].console


def test_marks_on_a_serial_console_end_in_crlf() -> None:
    console = _done(1, "a") + WARN + _done(2, "b") + _done(3, "c")
    assert _three(console.replace("\n", "\r\n")) == [Outcome.PASS, Outcome.FAIL, Outcome.PASS]

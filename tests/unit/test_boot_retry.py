"""A guest gets one more boot when the first never answered; a kernel that
panicked during boot does not."""

from __future__ import annotations

import contextlib
from typing import Any, cast

import pytest

from patchgen.errors import GuestFailure
from patchgen.progress import null_progress
from patchgen.vm.guest import boot_with_one_retry


def _guests(failures: int, attempts: list[int], kernel_fault: bool = False) -> Any:
    class FakeGuest:
        def __init__(self, attempt: int) -> None:
            self.attempt = attempt

        def __enter__(self) -> FakeGuest:
            attempts.append(self.attempt)
            if self.attempt <= failures:
                raise GuestFailure(f"no SSH after 300s (attempt {self.attempt})\nconsole ...",
                                   kernel_fault=kernel_fault)
            return self

        def __exit__(self, *exc: object) -> None:
            return None

    return FakeGuest


def test_a_failed_boot_is_tried_once_more() -> None:
    attempts: list[int] = []
    with contextlib.ExitStack() as stack:
        guest = boot_with_one_retry(stack, _guests(1, attempts), null_progress())
        assert cast(Any, guest).attempt == 2
    assert attempts == [1, 2]


def test_a_second_failure_is_raised() -> None:
    attempts: list[int] = []
    with pytest.raises(GuestFailure, match="attempt 2"), contextlib.ExitStack() as stack:
        boot_with_one_retry(stack, _guests(2, attempts), null_progress())
    assert attempts == [1, 2]


def test_a_good_first_boot_is_kept() -> None:
    attempts: list[int] = []
    with contextlib.ExitStack() as stack:
        boot_with_one_retry(stack, _guests(0, attempts), null_progress())
    assert attempts == [1]


def test_a_kernel_that_failed_during_boot_is_not_booted_again() -> None:
    attempts: list[int] = []
    with pytest.raises(GuestFailure, match="attempt 1"), contextlib.ExitStack() as stack:
        boot_with_one_retry(stack, _guests(1, attempts, kernel_fault=True), null_progress())
    assert attempts == [1]

"""A benchmark's guest gets one more boot when the first never answers."""

from __future__ import annotations

import contextlib
from typing import Any, cast

import pytest

from patchgen.errors import GuestFailure
from patchgen.pipeline import boot_with_one_retry
from patchgen.progress import null_progress


def _guests(failures: int, attempts: list[int]) -> Any:
    class FakeGuest:
        def __init__(self, attempt: int) -> None:
            self.attempt = attempt

        def __enter__(self) -> FakeGuest:
            attempts.append(self.attempt)
            if self.attempt <= failures:
                raise GuestFailure(f"no SSH after 300s (attempt {self.attempt})\nconsole ...")
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

"""Shared helpers for the project's tests."""

from __future__ import annotations

from typing import Any

from patchgen import ktap


def ktap_summary(test: ktap.Test) -> dict[str, Any]:
    """A KTAP tree as plain data, for golden-file comparison."""
    return {
        "name": test.name,
        "status": test.status.value,
        "directive": test.directive,
        "expected_count": test.expected_count,
        "errors": test.errors,
        "subtests": [ktap_summary(t) for t in test.subtests],
    }

"""A static HTML report of one or more runs (no server needed)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from patchgen.series.render import Renderer

if TYPE_CHECKING:
    from patchgen.bench import BenchResult
    from patchgen.check import CheckReport
    from patchgen.report import Report


@dataclass
class RunView:
    id: str
    tree: str
    origin: str = ""
    check: CheckReport | None = None
    report: Report | None = None
    history: dict[str, str] = field(default_factory=dict)  # by history.key()
    bench: BenchResult | None = None
    bench_png: str | None = None  # relative to the page
    error: str | None = None


def render(renderer: Renderer, title: str, runs: list[RunView]) -> str:
    """Test output goes into the page as text: everything is HTML-escaped."""
    generated = dt.datetime.now(dt.UTC).strftime("generated %Y-%m-%d %H:%M UTC")
    return renderer.page("report.html.j2", title=title, generated=generated, runs=runs)


def write(path: Path, renderer: Renderer, title: str, runs: list[RunView]) -> Path:
    path.write_text(render(renderer, title, runs))
    return path

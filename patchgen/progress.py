"""Progress display for long steps: stage headers, a live status line, timings.

On a terminal the status line is redrawn in place; elsewhere (CI logs) a
status line is printed at most every ``interval`` seconds so that logs stay
readable but still show that something is moving.

Guests that run at once each get a view (``lane``) whose lines start with
the guest's name; the views share the stream, its lock and the live line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class StageTiming:
    name: str
    seconds: float
    ok: bool


@dataclass
class _Screen:
    """What views of one Progress share: who writes now, and whether the
    last line written is a status line to be redrawn."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    live: bool = False


@dataclass
class Progress:
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    interval: float = 20.0
    quiet: bool = False
    timings: list[StageTiming] = field(default_factory=list)
    prefix: str = ""  # a lane's view: "[guest 2] "
    _stage: str = ""
    _stage_start: float = 0.0
    _last_status: float = 0.0
    _screen: _Screen = field(default_factory=_Screen)

    def lane(self, name: str) -> Progress:
        """A view for one of several guests at once: its lines say ``name``."""
        return dataclasses.replace(self, prefix=f"[{name}] ", _last_status=0.0)

    @property
    def tty(self) -> bool:
        return self.stream.isatty()

    def info(self, text: str) -> None:
        if self.quiet:
            return
        with self._screen.lock:
            self._clear()
            self.stream.write(f"    {self.prefix}{text}\n")
            self.stream.flush()

    def warn(self, text: str) -> None:
        with self._screen.lock:
            self._clear()
            self.stream.write(f"    {self.prefix}warning: {text}\n")
            self.stream.flush()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._stage, self._stage_start, self._last_status = name, time.monotonic(), 0.0
        if not self.quiet:
            self.stream.write(f"==> {name}\n")
            self.stream.flush()
        ok = False
        try:
            yield
            ok = True
        finally:
            elapsed = time.monotonic() - self._stage_start
            self.timings.append(StageTiming(name, elapsed, ok))
            self._clear()
            if not self.quiet:
                verdict = "done" if ok else "FAILED"
                self.stream.write(f"    {verdict} in {format_seconds(elapsed)}\n")
                self.stream.flush()

    def status(self, text: str) -> None:
        """A transient line: the current step of the running stage."""
        if self.quiet:
            return
        now = time.monotonic()
        line = f"    [{format_seconds(now - self._stage_start)}] {self.prefix}{text}"
        with self._screen.lock:
            if self.tty:
                width = 118
                self.stream.write("\r" + line[:width].ljust(width))
                self._screen.live = True
                self.stream.flush()
            elif now - self._last_status >= self.interval:
                self._last_status = now
                self.stream.write(line + "\n")
                self.stream.flush()

    def _clear(self) -> None:
        if self._screen.live:
            self.stream.write("\r" + " " * 118 + "\r")
            self._screen.live = False


def format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    return f"{minutes}m{secs:02d}s"


def null_progress() -> Progress:
    return Progress(quiet=True)

"""Where patchgen keeps things, resolved once and passed around frozen."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    cache: Path
    jobs: int
    project_root: Path = PROJECT_ROOT

    @property
    def trees(self) -> Path:
        return self.cache / "trees"

    @property
    def downloads(self) -> Path:
        return self.cache / "downloads"

    @property
    def worktrees(self) -> Path:
        return self.cache / "worktrees"

    @property
    def builds(self) -> Path:
        return self.cache / "build"

    @property
    def runs(self) -> Path:
        return self.cache / "runs"

    @property
    def ccache_dir(self) -> Path:
        return Path(os.environ.get("CCACHE_DIR", str(self.cache / "ccache")))

    @property
    def kernel_config_dir(self) -> Path:
        return self.project_root / "kernel-config"

    @property
    def templates_dir(self) -> Path:
        return self.project_root / "templates"

    @property
    def selftests_dir(self) -> Path:
        return self.project_root / "selftests"

    @property
    def catalogue_file(self) -> Path:
        """The kselftest catalogue: tiers, timeouts."""
        return self.selftests_dir / "kselftests.toml"

    def expectations_file(self, series: str) -> Path:
        """The recorded results of a tree series ("6.1")."""
        return self.selftests_dir / "expected" / f"{series}.toml"

    def durations_file(self, series: str) -> Path:
        """Measured unit durations of a tree series, for --shard."""
        return self.selftests_dir / "durations" / f"{series}.toml"


def default_cache() -> Path:
    explicit = os.environ.get("PATCHGEN_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "patchgen"


def load(cache: Path | None = None, jobs: int | None = None) -> Settings:
    return Settings(cache=(cache or default_cache()).resolve(), jobs=jobs or (os.cpu_count() or 2))

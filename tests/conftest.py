"""Hermetic test environment and the tier switch.

The fast tier runs everywhere.  ``-m slow`` selects the real tier (a real
kernel tree, build, guest); ``--heavy`` adds the long cases (6.12, the
whole selftest matrix).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C behaves as from a terminal, however the suite was started.

    A non-interactive shell starts background jobs (``ci/test &``, ``nohup``,
    some CI runners) with SIGINT ignored; Python then never raises
    KeyboardInterrupt and every child inherits the ignore, so the tests that
    press Ctrl-C would see nothing happen.  A handler, unlike SIG_IGN, is
    reset to the default in children at exec.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--heavy", action="store_true", help="also run the heavy real cases")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--heavy"):
        return
    skip = pytest.mark.skip(reason="heavy real case: run with --heavy (ci/test --heavy)")
    for item in items:
        if "heavy" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _hermetic(request: pytest.FixtureRequest, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fast tests get their own HOME and git identity; real ones keep the host's."""
    if "slow" in request.keywords:
        yield
        return
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.delenv("PATCHGEN_CACHE", raising=False)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Test User\n\temail = test@example.org\n"
        "[commit]\n\tgpgsign = false\n[init]\n\tdefaultBranch = main\n")
    yield


@pytest.fixture
def fakelinux(tmp_path: Path) -> Path:
    """A copy of the fake kernel tree, as a git repository with one commit."""
    import shutil
    import subprocess

    src = Path(__file__).parent / "fakelinux"
    dst = tmp_path / "fakelinux"
    shutil.copytree(src, dst)
    env = dict(os.environ)
    subprocess.run(["git", "init", "-q", str(dst)], check=True, env=env)
    subprocess.run(["git", "-C", str(dst), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(dst), "commit", "-q", "-m", "base"], check=True, env=env)
    return dst


@pytest.fixture
def fakenet(tmp_path: Path) -> Path:
    """The miniature netfilter tree (tests/fakenet) as a git repository."""
    import shutil
    import subprocess

    dst = tmp_path / "fakenet"
    shutil.copytree(Path(__file__).parent / "fakenet", dst)
    subprocess.run(["git", "init", "-q", str(dst)], check=True)
    subprocess.run(["git", "-C", str(dst), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(dst), "commit", "-q", "-m", "base"], check=True)
    return dst

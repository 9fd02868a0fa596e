"""SSH keys for the guests, made once per cache and reused by every boot.

vng makes the guest's sshd host keys (``ssh-keygen -A``: RSA, ECDSA and
Ed25519) and patchgen's client key (``id_virtme``) under
``$HOME/.cache/virtme-ng/.ssh`` when they are missing, and each boot has a
HOME of its own: that was 0.5-1.5 s of host time before QEMU started, on
every boot.  The keys only ever open a guest on a loopback port, so the first
boot's are kept under the cache (``guest-ssh/``) and copied into every later
boot's HOME, where vng then finds them and makes none.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

CLIENT_FILES = ("id_virtme", "id_virtme.pub")


def _host_keys(ssh_dir: Path) -> list[Path]:
    return sorted((ssh_dir / "etc" / "ssh").glob("ssh_host_*"))


def _copy_keys(src: Path, dst: Path) -> None:
    (dst / "etc" / "ssh").mkdir(parents=True, exist_ok=True)
    for key in _host_keys(src):
        shutil.copy2(key, dst / "etc" / "ssh" / key.name)  # modes too (0600)
    for name in CLIENT_FILES:
        shutil.copy2(src / name, dst / name)


def complete(ssh_dir: Path) -> bool:
    """``ssh_dir`` holds host keys and the client key pair."""
    return bool(_host_keys(ssh_dir)) and all((ssh_dir / n).is_file() for n in CLIENT_FILES)


def seed(kept: Path, ssh_dir: Path) -> bool:
    """Copy the kept keys into vng's ``ssh_dir``; False when none are kept yet."""
    if not complete(kept):
        return False
    _copy_keys(kept, ssh_dir)
    return True


def keep(ssh_dir: Path, kept: Path) -> None:
    """Keep the keys vng made in ``ssh_dir`` for later boots, whole or not at all.

    Written beside ``kept`` and renamed into place, so a guest booting at the
    same time in another run, or in another lane of this one, finds either all
    the keys or none (and never a key pair made of two guests' halves).
    """
    if complete(kept) or not complete(ssh_dir):
        return
    tmp = kept.with_name(f"{kept.name}.tmp{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _copy_keys(ssh_dir, tmp)
        if kept.exists():  # an incomplete leftover
            shutil.rmtree(kept)
        tmp.rename(kept)
    except OSError:
        pass  # another run won the race, or no room: the next boot makes keys again
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

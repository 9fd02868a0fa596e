"""Guest SSH keys are made once per cache and reused by later boots."""

from __future__ import annotations

from pathlib import Path

from patchgen.vm import sshkeys


def _vng_made(ssh_dir: Path) -> None:
    (ssh_dir / "etc" / "ssh").mkdir(parents=True)
    for name in ("ssh_host_rsa_key", "ssh_host_ed25519_key"):
        (ssh_dir / "etc" / "ssh" / name).write_text(name)
        (ssh_dir / "etc" / "ssh" / name).chmod(0o600)
    (ssh_dir / "id_virtme").write_text("private")
    (ssh_dir / "id_virtme").chmod(0o600)
    (ssh_dir / "id_virtme.pub").write_text("public")
    (ssh_dir / "virtme-ng-ssh.conf").write_text("per boot")


def test_first_boot_keeps_its_keys_and_later_boots_get_them(tmp_path: Path) -> None:
    kept = tmp_path / "cache" / "guest-ssh"
    first, second = tmp_path / "boot-1" / ".ssh", tmp_path / "boot-2" / ".ssh"
    assert not sshkeys.seed(kept, first)  # nothing kept yet: vng makes them
    _vng_made(first)
    sshkeys.keep(first, kept)
    assert sshkeys.complete(kept)
    assert not (kept / "virtme-ng-ssh.conf").exists()
    assert sshkeys.seed(kept, second)
    assert (second / "id_virtme").read_text() == "private"
    assert (second / "id_virtme").stat().st_mode & 0o777 == 0o600
    assert (second / "etc" / "ssh" / "ssh_host_rsa_key").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.joinpath("cache").iterdir()] == ["guest-ssh"]


def test_kept_keys_are_not_replaced(tmp_path: Path) -> None:
    kept, a, b = tmp_path / "kept", tmp_path / "a", tmp_path / "b"
    _vng_made(a)
    sshkeys.keep(a, kept)
    _vng_made(b)
    (b / "id_virtme").write_text("other")
    sshkeys.keep(b, kept)
    assert (kept / "id_virtme").read_text() == "private"


def test_an_incomplete_set_is_neither_kept_nor_seeded(tmp_path: Path) -> None:
    made, kept = tmp_path / "made", tmp_path / "kept"
    _vng_made(made)
    (made / "id_virtme.pub").unlink()
    sshkeys.keep(made, kept)
    assert not kept.exists()
    kept.mkdir()  # a leftover without keys
    assert not sshkeys.seed(kept, tmp_path / "boot")
    assert not (tmp_path / "boot").exists()

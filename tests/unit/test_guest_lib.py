"""selftests/lib/nf_progs.sh, the guest scripts' shared helpers, run by bash
on the host with a fake bpftool (the real one runs in the guests)."""

from __future__ import annotations

import subprocess
from pathlib import Path

LIB = Path(__file__).resolve().parents[2] / "selftests" / "lib" / "nf_progs.sh"


def _bash(tmp_path: Path, listed: str, script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` after sourcing the library; bpftool prints ``listed``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (tmp_path / "listed").write_text(listed)
    fake = bin_dir / "bpftool"
    fake.write_text(f"#!/bin/sh\ncat {tmp_path / 'listed'}\n")
    fake.chmod(0o755)
    return subprocess.run(["bash", "-c", f'. "{LIB}"; {script}'], capture_output=True,
                          text=True, timeout=30,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin"})


LISTED = ("12: tracing  name nf_hook_3  tag 0123  gpl\n"
          "13: socket_filter  name other  tag 4567\n"
          "40: tracing  name nf_hook_64  tag 89ab  gpl\n")


def test_the_ids_of_the_generated_programs_only(tmp_path: Path) -> None:
    assert _bash(tmp_path, LISTED, "nf_prog_ids").stdout.split() == ["12", "40"]
    assert _bash(tmp_path, LISTED, "nf_progs").stdout.strip() == "2"


def test_gone_when_none_of_the_programs_is_listed(tmp_path: Path) -> None:
    assert _bash(tmp_path, LISTED, "nf_progs_gone 1 41 13").returncode == 0
    assert _bash(tmp_path, LISTED, "nf_progs_gone 1").returncode == 0


def test_not_gone_while_one_of_them_is(tmp_path: Path) -> None:
    """Any one still listed, first or last: waits its time, then 1."""
    assert _bash(tmp_path, LISTED, "nf_progs_gone 1 40 41").returncode == 1
    assert _bash(tmp_path, LISTED, "nf_progs_gone 1 41 12").returncode == 1


def test_it_waits_for_a_program_that_goes(tmp_path: Path) -> None:
    """bpftool lists program 40 for its first two calls, then nothing."""
    calls = tmp_path / "calls"
    script = (f"bpftool() {{ echo x >> {calls}; [ $(wc -l < {calls}) -le 2 ] &&"
              f" cat {tmp_path}/listed; }}; nf_progs_gone 5 40")
    assert _bash(tmp_path, LISTED, script).returncode == 0
    assert len(calls.read_text().split()) == 3

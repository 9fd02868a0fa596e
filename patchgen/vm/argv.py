"""Pure builders for the guest's command lines (unit-tested with golden argv)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from patchgen.vm.accel import Accel

# Linux truncates the x86 command line at 2048 bytes; vng adds its own
# arguments (about 600 bytes), so ours must stay well below.
MAX_APPEND = 1024


@dataclass(frozen=True)
class GuestSpec:
    kernel: Path
    accel: Accel
    ssh_port: int
    init_script: Path
    memory: str = "2G"
    cpus: int = 2
    append: tuple[str, ...] = field(default=())
    # The build's O= directory: the guest init lists its modules.builtin
    # under /lib/modules, so "modprobe sctp" answers for a built-in sctp.
    build_dir: Path | None = None


def kernel_cmdline(extra: Sequence[str]) -> list[str]:
    """What we add to vng's own kernel command line.

    - panic on oops and on a hung task, so a sick guest ends instead of
      hanging (vng adds panic=-1 and -no-reboot: a panic exits QEMU);
    - printk timestamps for the console log.
    """
    args = ["oops=panic", "panic_on_warn=0", "printk.time=1", "hung_task_panic=1",
            "softlockup_panic=1", *extra]
    length = len(" ".join(args))
    if length > MAX_APPEND:
        raise ValueError(f"kernel command line too long ({length} > {MAX_APPEND} bytes)")
    return args


def vng_argv(spec: GuestSpec, vng: str = "vng") -> list[str]:
    """vng running our guest-side init script, with sshd on a loopback port."""
    argv = [
        vng, "--run", str(spec.kernel),
        "--ssh", str(spec.ssh_port), "--ssh-tcp",
        "--memory", spec.memory, "--cpus", str(spec.cpus),
        "--verbose",
    ]
    if spec.accel is Accel.TCG:
        argv.append("--disable-kvm")
    extra = spec.append
    if spec.build_dir is not None:
        extra = (f"patchgen.build_dir={spec.build_dir}", *extra)
    for arg in kernel_cmdline(extra):
        argv += ["--append", arg]
    argv += ["--exec", str(spec.init_script)]
    return argv

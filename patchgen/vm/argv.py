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
    # TCG only: QEMU's instruction counter drives the guest's clock, which
    # then counts executed instructions (patchgen bench's deterministic mode).
    icount: bool = False


# QEMU options for a TCG guest: all vCPUs on one host thread.  With QEMU's
# default, a thread per vCPU, hook changes under traffic locked this series'
# guests up within 25 s (2 of 2 stress runs; and once in CI): both vCPUs
# looped at bpf_dispatcher_nf_hook_base_func+0x0, trapping on an int3 that
# text_poke_bp() had already replaced with the jmp the memory showed, so
# the kernel's int3 handler found no int3 and re-ran the instruction.  A
# real CPU (or KVM) refetches after the int3's iret; multi-threaded TCG went
# on executing a stale translation.  Single-threaded: 0 lockups in 380
# changes.  Hooks change on every nft base-chain add/delete.
TCG_QEMU_OPTS = "-accel tcg,thread=single"
# QEMU's instruction counter: the virtual clock advances 2^shift ns per
# executed guest instruction, so with shift=0 the guest's own clock counts
# instructions; sleep=off lets an idle vCPU skip ahead instead of waiting
# for the host's clock.  It needs single-threaded TCG (the option above).
# Measured here: a loop timed 12 times over 2 boots varied by 0.002 %.
ICOUNT_QEMU_OPTS = "-icount shift=0,sleep=off"


def qemu_opts(accel: Accel, icount: bool = False) -> str:
    """The QEMU options patchgen adds for a guest on ``accel`` ("" for none)."""
    if icount and accel is not Accel.TCG:
        raise ValueError("the instruction counter (-icount) is a TCG option")
    if accel is not Accel.TCG:
        return ""
    return f"{TCG_QEMU_OPTS} {ICOUNT_QEMU_OPTS}" if icount else TCG_QEMU_OPTS


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
        # The root file system over 9p straight away.  vng tries virtiofs
        # first: here it finds QEMU 7.2's C virtiofsd, which does not take
        # the Rust daemon's options vng passes ("fuse: invalid argument"),
        # and polls for it 5 times (0.1 + 0.2 + ... + 1.6 s) before falling
        # back to 9p: 3.1 s of every boot.  Where the Rust daemon works vng
        # would also switch to another machine type (microvm); forcing 9p
        # keeps one guest everywhere (read-only host root either way).
        "--force-9p",
    ]
    if spec.accel is Accel.TCG:
        argv.append("--disable-kvm")
    if opts := qemu_opts(spec.accel, spec.icount):
        # One word with "=": vng's option takes one value, and this one
        # starts with a dash.
        argv.append(f"--qemu-opts={opts}")
    extra = spec.append
    if spec.build_dir is not None:
        extra = (f"patchgen.build_dir={spec.build_dir}", *extra)
    for arg in kernel_cmdline(extra):
        argv += ["--append", arg]
    argv += ["--exec", str(spec.init_script)]
    return argv

"""patchgen boot: build, boot, run one command in the guest (a debugging aid)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from patchgen import kconfig, stages
from patchgen import tree as trees
from patchgen.errors import UserError
from patchgen.lock import tree_lock
from patchgen.progress import Progress
from patchgen.settings import Settings
from patchgen.vm.bootstages import boot_stages_note
from patchgen.vm.guest import CommandResult, Guest, boot_with_one_retry


@dataclass(frozen=True)
class BootRequest:
    tree: trees.TreeRequest
    command: tuple[str, ...]
    profile: str = "selftests"
    rev: str | None = None
    accel: str = "auto"
    memory: str = "2G"
    cpus: int = 2
    timeout: int = 600
    output: Path | None = None

    def __post_init__(self) -> None:
        stages.check_guest_options(self.memory, self.cpus, self.accel)
        if not " ".join(self.command).strip():
            raise UserError("no command to run in the guest", hint="patchgen boot -- CMD [ARG...]")
        if self.timeout < 1:
            raise UserError(f"--timeout must be 1 or more seconds, got {self.timeout}")


def run(req: BootRequest, settings: Settings, progress: Progress) -> CommandResult:
    """Build if needed, boot, run one command in the guest (a debugging aid)."""
    stages.require_guest_tools()
    profile = kconfig.get_profile(settings.kernel_config_dir, req.profile)
    tree = stages.stage_tree(req.tree, settings, progress)
    rev = stages.trees_rev(tree, req.rev)  # before the run directory: it may refuse
    run_dir = stages.new_run_dir(settings, "boot", req.output)
    with tree_lock(settings, tree.id, progress):
        built = stages.stage_build(tree, rev, profile, settings, progress, run_dir)
    decision = stages.stage_accel(req.accel, built, settings, progress)

    def guest_for(attempt: int) -> Guest:
        spec = stages.guest_spec(built, decision, settings, req.memory, req.cpus)
        return Guest(spec, run_dir / f"boot-{attempt}", progress,
                     ssh_keys=stages.guest_ssh_keys(settings))

    with progress.stage("boot and run"), contextlib.ExitStack() as stack:
        guest = boot_with_one_retry(stack, guest_for, progress)
        progress.info(f"SSH after {guest.boot_seconds:.1f}s; console {guest.console_log}"
                      + boot_stages_note(guest.boot_stages))
        return guest.run_checked(list(req.command), timeout=req.timeout)


"""Error classes and the exit codes the CLI maps them to.

Library code raises; only ``patchgen.cli`` turns an error into an exit code.
"""

from __future__ import annotations

import enum


@enum.unique  # two names for one code would make an alias, which iteration skips
class ExitCode(enum.IntEnum):
    """Exit codes a CI system can act on (documented in the README)."""

    OK = 0
    TEST_FAILURE = 1
    USER_ERROR = 2
    BUILD_FAILURE = 3
    INFRA_FAILURE = 4
    INTERRUPTED = 130


class PatchgenError(Exception):
    """Base class: a one-line message for the user, and an exit code."""

    exit_code = ExitCode.INFRA_FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UserError(PatchgenError):
    """Bad input: not a kernel tree, a dirty tree, an unknown version..."""

    exit_code = ExitCode.USER_ERROR


class InfraError(PatchgenError):
    """The machine cannot do it: a tool is missing, the guest does not boot."""

    exit_code = ExitCode.INFRA_FAILURE


class MissingTool(InfraError):
    def __init__(self, tool: str, package: str | None = None) -> None:
        hint = f"install it with: apt-get install {package}" if package else None
        super().__init__(f"required tool not found: {tool}", hint=hint)
        self.tool = tool


class BuildFailure(PatchgenError):
    """A kernel or selftest build failed; the message names where."""

    exit_code = ExitCode.BUILD_FAILURE


class GuestFailure(InfraError):
    """The guest did not boot, panicked, or stopped answering.

    ``kernel_fault``: the console shows the kernel itself failing (panic,
    oops, BUG).  Such a failure is the result, never retried; one that is
    not (no SSH in time, QEMU exited) may be the machine's.
    """

    def __init__(self, message: str, *, hint: str | None = None,
                 kernel_fault: bool = False) -> None:
        super().__init__(message, hint=hint)
        self.kernel_fault = kernel_fault


class CommandFailed(PatchgenError):
    """A subprocess exited non-zero; carries the whole result."""

    def __init__(self, argv: list[str], returncode: int, stdout: str, stderr: str) -> None:
        import shlex

        tail = (stderr or stdout).strip().splitlines()[-5:]
        detail = "\n  ".join(tail)
        super().__init__(
            f"command failed (exit {returncode}): {shlex.join(argv)}"
            + (f"\n  {detail}" if detail else "")
        )
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


class CommandTimeout(InfraError):
    def __init__(self, argv: list[str], timeout: float) -> None:
        import shlex

        super().__init__(f"command timed out after {timeout:.0f}s: {shlex.join(argv)}")
        self.argv = argv
        self.timeout = timeout

"""Deliberate defects in the generated series (``--inject-fault``).

They prove that the checks catch a wrong generator: a series that does not
build, drops that pass, a hook the program never calls.  The templates hold
only the C a user gets; a fault is an edit of the rendered generator, made
right after the patch that creates the file, so that later patches build
on the broken file as they would on a real mistake.  An anchor that is not
found exactly once is an error: a fault that is silently not injected
would make a passing run prove nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from patchgen.series.view import RecipeError, TreeView


def marker(name: str) -> str:
    """What the injected code says, for the tests and logs to find."""
    return f"FAULT INJECTED (patchgen generate --inject-fault {name})"


@dataclass(frozen=True)
class Fault:
    name: str
    anchor: str  # text that occurs once in the rendered generator
    text: str  # inserted next to it
    before: bool = False  # insert before the anchor (else after it)

    def apply(self, source: str, path: str) -> str:
        found = source.count(self.anchor)
        if found != 1:
            raise RecipeError(f"{path}: --inject-fault {self.name}: expected {self.anchor!r} "
                              f"once, found {found} times")
        at = source.index(self.anchor) + (0 if self.before else len(self.anchor))
        return source[:at] + self.text + source[at:]


FAULTS = {f.name: f for f in (
    # The program does not call the last hook of a location.
    Fault("skip-hook", "\t\tint priv_off = (void *)&e->hooks[i].priv - (void *)e;\n\n",
          f"\t\t/* {marker('skip-hook')}. */\n"
          "\t\tif (n > 1 && i == n - 1)\n"
          "\t\t\tbreak;\n"),
    # NF_DROP returns "accept": the packet goes on.
    Fault("verdict", "static bool emit_drop(struct nf_hook_prog *p)\n{\n",
          f"\t/* {marker('verdict')}: drops pass. */\n"
          "\treturn emit(p, BPF_MOV64_IMM(BPF_REG_0, 1)) && emit(p, BPF_EXIT_INSN());\n"),
    # The patch that adds the generator does not compile.
    Fault("build", "#define NF_HOOK_BPF_NAME", f'#error "{marker("build")}"\n', before=True),
)}
NAMES = tuple(FAULTS)


def inject(name: str, path: str, before: dict[str, str], view: TreeView) -> bool:
    """Break ``path`` if the patch just computed created it (``before``: the
    view's snapshot from before that patch); whether it did."""
    if path in before or path not in view.snapshot():
        return False
    view.write(path, FAULTS[name].apply(view.read(path), path))
    return True

"""b4's rendition of a prepared series (``patchgen prep --b4``).

b4 (https://b4.docs.kernel.org) is how kernel developers prepare and
send series.  patchgen hands it the series it prepared, so that a user
who sends with b4 gets exactly what patchgen checked: the same commits,
patchgen's cover letter (with the check and test results and the
changelog), its version, subject prefixes and To/Cc.  b4 writes the
mails (``b4 send -o DIR``, which never sends); patchgen's gates stay
patchgen's.

b4 works on "the current branch" of a work tree and keeps its state in
the repository (the cover letter, the revision and the change-id in
``branch.<name>.*`` config; with its default cover strategy it even
rewrites the branch to insert an empty cover commit).  So it never runs
in the user's repository: it runs in a private clone that shares the
objects (``git clone --shared``, nothing is written to the source
repository), with a sparse checkout (top-level files only: b4 refuses
a work tree with "uncommitted changes", and a full kernel checkout
would cost more than the rest of prep), and the
``branch-description`` cover strategy, which leaves the commits alone.
b4 asks nothing there: every command runs without a terminal, with no
editor, and ``send -o`` only writes files.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from patchgen import proc
from patchgen.errors import PatchgenError
from patchgen.git import Git, Identity

# b4 would open an editor for --edit-cover (never used here) and git may ask
# for credentials: neither can happen.  b4 send -o needs no mail server, but
# without sendemail.smtpserver it picks its web endpoint and then refuses to
# write unsigned mails; the server is never contacted with -o.
B4_ENV = {"GIT_TERMINAL_PROMPT": "0", "EDITOR": "false", "VISUAL": "false",
          "GIT_EDITOR": "false"}
NO_SERVER = "sendemail.smtpserver=/bin/false"
BASE_BRANCH = "patchgen-b4-base"


@dataclass(frozen=True)
class B4Mails:
    outdir: Path
    files: list[Path]
    count: int  # what b4 says it would have sent


def available() -> bool:
    return shutil.which("b4") is not None


def clone_argv(repo: Path, branch: str, where: Path) -> list[str]:
    return ["git", "clone", "--quiet", "--shared", "--no-checkout", "--single-branch",
            "--branch", branch, str(repo), str(where)]


def enroll_argv(base_branch: str) -> list[str]:
    """Enroll the checked-out branch; the cover letter lives in its description."""
    return ["b4", "-c", "b4.prep-cover-strategy=branch-description", "prep",
            "--enroll", base_branch]


def revision_argv(version: int) -> list[str]:
    return ["b4", "prep", "--force-revision", str(version)]


def prefixes_argv(subject_prefix: str) -> list[str] | None:
    """b4 writes "[PATCH <prefixes> vN]": patchgen's words other than PATCH.

    b4 always puts them after PATCH ("PATCH RFC nf-next", not "RFC PATCH
    nf-next"); both orders are what the lists see every day.
    """
    words = [w for w in subject_prefix.split() if w != "PATCH"]
    return ["b4", "prep", "--set-prefixes", *words] if words else None


def send_argv(outdir: Path) -> list[str]:
    return ["b4", "-c", NO_SERVER, "send", "--output-dir", str(outdir), "--no-sign"]


def cover_description(cover: str, to: Sequence[str], cc: Sequence[str]) -> str:
    """The branch description b4 makes the cover letter of: the subject line,
    the body, then To:/Cc: trailers (what ``b4 prep --auto-to-cc`` writes)."""
    trailers = [f"To: {a}" for a in to] + [f"Cc: {a}" for a in cc if a not in to]
    return cover.rstrip("\n") + "\n\n" + "\n".join(trailers) + "\n"


def parse_sent(output: str) -> int | None:
    """How many messages ``b4 send --dry-run/-o`` says it would have sent."""
    m = re.search(r"^DRYRUN: Would have sent (\d+) messages?$", output, re.M)
    return int(m.group(1)) if m else None


def write_mails(repo: Path, branch: str, base: str, version: int, subject_prefix: str,
                cover: str, to: Sequence[str], cc: Sequence[str], sender: Identity,
                outdir: Path) -> B4Mails:
    """``b4 send -o outdir`` of ``base..branch`` in a private clone of ``repo``."""
    with tempfile.TemporaryDirectory(prefix="patchgen-b4-") as tmp:
        where = Path(tmp) / "tree"
        proc.run(clone_argv(repo, branch, where), env=B4_ENV, timeout=600)
        git = Git(where)
        git.run("sparse-checkout", "set", "--cone", "scripts")
        git.run("checkout", "--quiet", branch)
        git.run("branch", BASE_BRANCH, base)
        git.run("config", "user.name", sender.name)
        git.run("config", "user.email", sender.email)
        _b4(where, enroll_argv(BASE_BRANCH))
        _b4(where, revision_argv(version))
        prefixes = prefixes_argv(subject_prefix)
        if prefixes:
            _b4(where, prefixes)
        git.run("config", f"branch.{branch}.description", cover_description(cover, to, cc))
        res = _b4(where, send_argv(outdir))
    count = parse_sent(res.stdout + res.stderr)
    if count is None:
        raise PatchgenError("b4 send -o: no 'Would have sent' line in its output: "
                            + (res.stderr or res.stdout).strip()[-500:])
    return B4Mails(outdir, sorted(outdir.glob("*.eml")), count)


def _b4(where: Path, argv: list[str]) -> proc.Completed:
    res = proc.run(argv, cwd=where, env=B4_ENV, input="", timeout=600, check=False)
    if res.returncode != 0:
        raise PatchgenError(f"{' '.join(argv[:4])} failed: "
                            + (res.stderr or res.stdout).strip()[-500:])
    return res

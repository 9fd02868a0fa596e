"""Turn the generated branch into a send-ready series (like b4 prep, plus what we know).

* ``git format-patch`` with a cover letter rendered from
  ``templates/cover-letter.txt.j2``; the results it quotes come from the
  check and test reports of this exact tip, never typed by hand;
* versions: a version is used up only when it is sent (or marked sent with
  ``--mark-sent``): then the tip is tagged ``<branch>/vN`` (under
  ``patchgen/``; the base in the tag message) and the next prep is vN+1,
  with a ``git range-diff`` against vN in the cover letter and a
  changelog.  Dry runs can be repeated: they stay at the same version;
* outputs: ``prep/<tree>/<branch>/vN``, written in a new directory and
  swapped in only once complete: a failed prep keeps the last good one;
* the committer identity (format-patch's Message-Ids, the tags) is
  checked before anything is written (``patchgen.identity``);
* To/Cc per patch from the tree's ``scripts/get_maintainer.pl``, their
  union on the cover letter, plus the series' extra recipients;
* checks that must pass before anything is sent (checkpatch --strict,
  Signed-off-by of the author, every commit built by ``patchgen check``,
  at most 15 patches, a cover letter), a ``git send-email --dry-run``, and
  one mbox that ``git am`` applies onto the base to give the same tree.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.utils
import logging
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from patchgen import check as checks
from patchgen import outputs, proc
from patchgen.b4 import B4Mails, write_mails
from patchgen.errors import PatchgenError, UserError
from patchgen.git import Git, Identity, identity_env
from patchgen.identity import committer_identity
from patchgen.report import Report
from patchgen.results import Change, Outcome, TestResult
from patchgen.runfile import RunFileError
from patchgen.series.generate import SeriesSpec, since_rfc
from patchgen.series.render import Renderer
from patchgen.settings import Settings
from patchgen.tree import Tree, series_tip

MAX_PATCHES = 15
T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrepRequest:
    branch: str
    rfc: bool = True
    prefix: str | None = None  # tree prefix, e.g. "nf-next"
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    output: Path | None = None
    b4: bool = False  # also write b4's rendition (b4 send -o) to <outdir>/b4


def check_recipient(option: str, value: str) -> None:
    """One mail address (``Name <a@b.org>`` or ``a@b.org``) that can go into
    a header as it is: a newline would start a header of its own."""
    if any(ord(c) < 0x20 or ord(c) == 0x7f for c in value):
        raise UserError(f"{option} {value!r}: a control character in a mail address")
    addresses = email.utils.getaddresses([value])
    if len(addresses) > 1:
        raise UserError(f"{option} {value!r}: one address per {option}",
                        hint=f"give {option} once for each recipient")
    addr = addresses[0][1] if addresses else ""
    local, at, domain = addr.partition("@")
    if not (local and at and domain) or "@" in domain:
        raise UserError(f"{option} {value!r}: not a mail address",
                        hint="'Name <name@example.org>' or 'name@example.org'")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Prepared:
    version: int
    outdir: Path
    files: list[Path]
    mbox: Path
    to: list[str]
    cc: list[str]
    checks: list[Check] = field(default_factory=list)
    previous: str | None = None  # tag of the previous (sent) version
    dry_run: str = ""
    tip: str = ""
    committer: Identity | None = None  # who formatted it, and tags it once sent
    b4: B4Mails | None = None  # with PrepRequest.b4

    def moved_to(self, outdir: Path) -> Prepared:
        """The same result, its files in ``outdir`` (after the swap)."""
        def move(path: Path) -> Path:
            return outdir / path.relative_to(self.outdir)

        b4 = None
        if self.b4:
            b4 = B4Mails(move(self.b4.outdir), [move(f) for f in self.b4.files], self.b4.count)
        return dataclasses.replace(self, outdir=outdir, files=[move(f) for f in self.files],
                                   mbox=move(self.mbox), b4=b4)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def tag_prefix(branch: str) -> str:
    """Tags of sent versions live under patchgen/, once (not patchgen/patchgen/...)."""
    return branch if branch.startswith("patchgen/") else f"patchgen/{branch}"


def version_tags(git: Git, branch: str) -> list[tuple[int, str]]:
    """The versions of ``branch`` that were sent, oldest first."""
    out = git.out("tag", "--list", f"{tag_prefix(branch)}/v*")
    tags = []
    for name in out.split():
        m = re.search(r"/v(\d+)$", name)
        if m:
            tags.append((int(m.group(1)), name))
    return sorted(tags)


def tagged_range(git: Git, tag: str) -> tuple[str, str]:
    """(base, tip) recorded by an earlier prep."""
    message = git.out("tag", "-l", "--format=%(contents)", tag)
    m = re.search(r"^base ([0-9a-f]{40})$", message, re.M)
    if m is None:
        raise UserError(f"tag {tag} does not record its base")
    return m.group(1), git.rev_parse(f"{tag}^{{commit}}")


def subject_prefix(rfc: bool, prefix: str | None) -> str:
    words = (["RFC"] if rfc else []) + ["PATCH"] + ([prefix] if prefix else [])
    return " ".join(words)


def format_patch_argv(outdir: Path, base: str, tip: str, version: int, prefix: str,
                      range_diff: str | None) -> list[str]:
    argv = ["format-patch", "--cover-letter", "--thread=shallow", f"--base={base}",
            f"--subject-prefix={prefix}", "-o", str(outdir)]
    if version > 1:
        argv.append(f"-v{version}")
    if range_diff:
        argv.append(f"--range-diff={range_diff}")
    argv.append(f"{base}..{tip}")
    return argv


def prep(tree: Tree, req: PrepRequest, settings: Settings, renderer: Renderer,
         spec: SeriesSpec) -> Prepared:
    """``spec``: the series (templates/series.toml), for what the cover letter says of the RFC."""
    git = Git(tree.repo)
    # Before anything is written: what --output names is replaced whole.
    chosen = outputs.check(req.output, "prep", replaceable=True) if req.output else None
    # Before anything is written: format-patch needs it, and fails late without.
    committer = committer_identity(git)
    tip = series_tip(tree, req.branch)
    _each_commit_a_patch(git, tree.base, tip)
    tags = version_tags(git, req.branch)
    previous = tags[-1][1] if tags else None
    version = (tags[-1][0] + 1) if tags else 1
    if previous and tagged_range(git, previous)[1] == tip:
        version = tags[-1][0]  # the version that was sent, again
        previous = tags[-2][1] if len(tags) > 1 else None
    outdir = chosen or output_dir(settings, tree, req.branch, version)
    with staged(outdir) as work:
        prepared = _prep_in(work, git, tree, req, settings, renderer, tip, version, previous,
                            committer, since_rfc(spec))
    return dataclasses.replace(prepared.moved_to(outdir), committer=committer)


def _each_commit_a_patch(git: Git, base: str, tip: str) -> None:
    """Every commit becomes one patch: the checks pair commits with patch files."""
    for n, sha in enumerate(git.log_shas(f"{base}..{tip}"), 1):
        why = git.not_a_patch(sha)
        if why:
            subject = git.commit_info(sha).subject
            raise UserError(f"patch {n} ({sha[:12]} {subject}) {why}: there is no "
                            "patch to send",
                            hint="drop it from the branch (git rebase -i), or regenerate "
                                 "the series (patchgen generate)")


def output_dir(settings: Settings, tree: Tree, branch: str, version: int) -> Path:
    """One directory per tree, branch and version: preps of branches never meet."""
    return settings.cache / "prep" / tree.id / branch / f"v{version}"


@contextlib.contextmanager
def staged(outdir: Path) -> Iterator[Path]:
    """A new directory next to ``outdir``, put in its place only when complete.

    Whatever fails or is interrupted in between, the previous ``outdir``
    (the last good prep) is left exactly as it was.
    """
    outdir.parent.mkdir(parents=True, exist_ok=True)
    with proc.undivided(
            lambda: Path(tempfile.mkdtemp(prefix=f".{outdir.name}.new-", dir=outdir.parent)),
            lambda work: shutil.rmtree(work, ignore_errors=True)) as work:
        yield work
        outputs.mark(work, "prep")
        with proc.uninterrupted():
            _swap(work, outdir)


def _swap(new: Path, outdir: Path) -> None:
    old = outdir.with_name(f".{outdir.name}.old-{os.getpid()}")
    if outdir.exists():
        outdir.rename(old)
    try:
        new.rename(outdir)
    except OSError:
        if old.exists():
            old.rename(outdir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _prep_in(outdir: Path, git: Git, tree: Tree, req: PrepRequest, settings: Settings,
             renderer: Renderer, tip: str, version: int, previous: str | None,
             sender: Identity, rfc: dict[str, Any]) -> Prepared:
    shas = git.log_shas(f"{tree.base}..{tip}")
    range_diff = None
    changes: list[str] = []
    if previous:
        old_base, old_tip = tagged_range(git, previous)
        range_diff = f"{old_base}..{old_tip}"
        changes = changelog(git, old_base, old_tip, tree.base, tip, previous)
    prefix = subject_prefix(req.rfc, req.prefix)
    git.run(*format_patch_argv(outdir, tree.base, tip, version, prefix, range_diff))
    files = sorted(outdir.glob("*.patch"))
    results = latest_results(settings, tree, shas)
    cover = fill_cover_letter(files[0], renderer, version, changes, results, rfc)
    src = tree.repo
    to, cc = address(files, src, req)
    mbox = outdir / f"{req.branch.replace('/', '-')}-v{version}.mbox"
    # For "git am": the patches, not the cover letter (it has no diff).
    mbox.write_text("".join(f.read_text() for f in files[1:]))
    prepared = Prepared(version, outdir, files, mbox, to, cc, previous=previous, tip=tip)
    prepared.checks = pre_send_checks(git, src, tree, tip, shas, files, mbox, settings, sender)
    # The user sends, whoever wrote the patches (From: lines keep the authors).
    prepared.dry_run = send_email(git, files, str(sender), dry_run=True)
    if req.b4:
        prepared.b4 = write_mails(tree.repo, req.branch, tree.base, version, prefix, cover, to,
                                  cc, sender, outdir / "b4")
        prepared.checks.append(Check("b4 send -o", prepared.b4.count == len(files),
                                     f"{prepared.b4.count} of {len(files)} mails"))
    return prepared


def mark_sent(tree: Tree, branch: str, prepared: Prepared) -> str:
    """Record ``prepared`` as sent: tag its tip ``<branch>/vN``; the next prep is vN+1.

    The tag is made by the committer identity prep checked; a version that
    was already tagged (a resend of the same commits) is not tagged again.
    """
    git = Git(tree.repo)
    tag = f"{tag_prefix(branch)}/v{prepared.version}"
    if dict(version_tags(git, branch)).get(prepared.version) == tag:
        return tag
    committer = prepared.committer or committer_identity(git)
    # A local record, never signed: with tag.gpgSign git would run gpg, which
    # may ask for a passphrase after the mails went out.
    git.run("tag", "-a", "--no-sign", tag, prepared.tip, "-m", f"{branch} v{prepared.version}\n\n"
            f"base {tree.base}\n", env=identity_env(committer=committer))
    return tag


def changelog(git: Git, old_base: str, old_tip: str, base: str, tip: str,
              previous: str) -> list[str]:
    """One line per patch that changed, from git range-diff's own summary."""
    out = git.out("range-diff", "--no-color", "-s", f"{old_base}..{old_tip}", f"{base}..{tip}")
    lines = []
    for row in out.splitlines():
        m = re.match(r"\s*(\S+):\s+\S+\s+([=!<>])\s+(\S+):\s+\S+\s+(.*)$", row)
        if not m:
            continue
        kind, subject = m.group(2), m.group(4)
        if kind == "!":
            lines.append(f"{subject}: changed")
        elif kind == "<":
            lines.append(f"{subject}: dropped")
        elif kind == ">":
            lines.append(f"{subject}: new")
    if old_base != base:
        lines.insert(0, f"rebased onto {base[:12]}")
    return lines or [f"no change to the patches since {previous.rsplit('/', 1)[1]}"]


def latest_results(settings: Settings, tree: Tree, shas: Sequence[str]) -> dict[str, Any] | None:
    """Lines for the cover letter from this tip's newest check and test reports."""
    lines = []
    accel = "tcg"
    check = _newest(settings.runs.glob("*/check.json"), checks.CheckReport.load,
                    lambda c: [p.sha for p in c.patches] == list(shas))
    if check:
        lines.append(check_line(check))
    report = _newest(settings.runs.glob("*/report.json"), Report.load,
                     lambda r: r.metadata.get("rev") == shas[-1] and bool(r.tests))
    if report:
        accel = report.metadata.get("accel", accel)
        lines += selftest_lines(report)
    if not lines:
        return None
    return {"tree": f"{tree.id} ({tree.origin})", "accel": accel, "lines": lines}


def _newest(paths: Iterable[Path], load: Callable[[Path], T],
            keep: Callable[[T], bool]) -> T | None:
    """The newest run file ``keep`` accepts; one that cannot be read is skipped, and named."""
    for path in sorted(paths, key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            data = load(path)
        except RunFileError as exc:
            log.warning("%s (skipped)", exc.message)
            continue
        if keep(data):
            return data
    return None


def check_line(check: checks.CheckReport) -> str:
    patches = check.patches
    configs = check.configs or sorted({b.variant for p in patches for b in p.builds})
    built = all(p.builds_ok for p in patches)
    warns = sum(len(p.warnings_added) for p in patches)
    cp_e = sum(p.checkpatch.errors for p in patches if p.checkpatch)
    cp_w = sum(p.checkpatch.warnings for p in patches if p.checkpatch)
    how = f" (configs: {', '.join(configs)})" if configs else ""
    state = "builds" if built else "does NOT build"
    return (f"each of the {len(patches)} patches {state}{how}; W=1: {warns} new warnings; "
            f"checkpatch --strict: {cp_e} errors, {cp_w} warnings")


def selftest_lines(report: Report) -> list[str]:
    out = []
    groups: dict[str, list[TestResult]] = {}
    for t in report.tests:
        groups.setdefault(t.variant, []).append(t)
    for variant, tests in groups.items():
        counts = Counter(t.outcome.value for t in tests)
        summary = ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))
        known = [t.name for t in tests
                 if t.outcome is not Outcome.PASS and t.change is Change.SAME]
        where = f" with {variant}" if variant else ""
        line = f"netfilter selftests{where}: {summary}"
        if known:
            line += f" (as on the unpatched tree: {', '.join(known)})"
        regress = [t.name for t in tests if t.change is Change.REGRESSION]
        if regress:
            line += f"; regressions: {', '.join(regress)}"
        out.append(line)
    return out


def fill_cover_letter(cover: Path, renderer: Renderer, version: int, changes: list[str],
                      results: dict[str, Any] | None, rfc: dict[str, Any]) -> str:
    """Fill the cover letter's placeholders; returns its subject line and body."""
    text = cover.read_text()
    body = renderer.message("cover-letter.txt.j2", version=version, changes=changes,
                            results=results, rfc=rfc)
    subject, _, blurb = body.partition("\n")
    if "*** SUBJECT HERE ***" not in text or "*** BLURB HERE ***" not in text:
        raise PatchgenError(f"{cover}: git format-patch wrote no cover letter placeholders")
    text = text.replace("*** SUBJECT HERE ***", subject, 1)
    text = text.replace("*** BLURB HERE ***", blurb.strip("\n"), 1)
    cover.write_text(text)
    return body


# -- addresses ---------------------------------------------------------------------------
def get_maintainer_argv(src: Path, patch: Path, roles: str) -> list[str]:
    flags = {"to": ["--m", "--no-r", "--no-l"], "cc": ["--no-m", "--r", "--l"]}[roles]
    return ["perl", str(src / "scripts" / "get_maintainer.pl"), "--no-git", "--no-git-fallback",
            "--no-rolestats", "--no-multiline", "--separator", ", ", *flags, str(patch)]


def _people(src: Path, patch: Path, roles: str) -> list[str]:
    res = proc.run(get_maintainer_argv(src, patch, roles), cwd=src, check=False, timeout=300)
    return [a.strip() for a in res.stdout.strip().split(", ") if "@" in a]


def address(files: list[Path], src: Path, req: PrepRequest) -> tuple[list[str], list[str]]:
    """Add To/Cc headers to every patch; the cover letter gets the union."""
    all_to: list[str] = []
    all_cc: list[str] = []
    per_file: dict[Path, tuple[list[str], list[str]]] = {}
    for f in files[1:]:
        to = _dedupe(_people(src, f, "to") + list(req.to))
        cc = _dedupe([a for a in _people(src, f, "cc") + list(req.cc) if a not in to])
        per_file[f] = (to, cc)
        all_to += to
        all_cc += cc
    union_to = _dedupe(all_to)
    union_cc = [a for a in _dedupe(all_cc) if a not in union_to]
    per_file[files[0]] = (union_to, union_cc)
    for f, (to, cc) in per_file.items():
        add_headers(f, to, cc)
    return union_to, union_cc


def _dedupe(items: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for i in items:
        seen.setdefault(i, None)
    return list(seen)


def add_headers(patch: Path, to: list[str], cc: list[str]) -> None:
    text = patch.read_text()
    head, sep, rest = text.partition("\nSubject: ")
    lines = []
    if to:
        lines.append("To: " + ",\n    ".join(to))
    if cc:
        lines.append("Cc: " + ",\n    ".join(cc))
    patch.write_text(head + ("\n" + "\n".join(lines) if lines else "") + sep + rest)


# -- checks before sending ----------------------------------------------------------------
def pre_send_checks(git: Git, src: Path, tree: Tree, tip: str, shas: Sequence[str],
                    files: list[Path], mbox: Path, settings: Settings,
                    sender: Identity) -> list[Check]:
    out = [Check("at most 15 patches", len(shas) <= MAX_PATCHES, f"{len(shas)} patches"),
           Check("cover letter", files[0].name.startswith(("0000-", "v")) and
                 "*** SUBJECT HERE ***" not in files[0].read_text(), files[0].name)]
    out.append(_checkpatch(src, files[1:]))
    out.append(_signoffs(git, shas, sender))
    out.append(_built(settings, shas))
    out.append(_git_am(git, tree.base, tip, mbox))
    return out


def _checkpatch(src: Path, patches: list[Path]) -> Check:
    bad = []
    for p in patches:
        res = proc.run(checks.checkpatch_argv(src), input=p.read_text(), cwd=src, check=False,
                       timeout=600)
        r = checks.parse_checkpatch(res.stdout + res.stderr)
        # New files are settled the same way 'patchgen check' does.
        findings = [f for f in r.findings if not f.startswith("WARNING:FILE_PATH_CHANGES")]
        if r.errors or findings:
            bad.append(f"{p.name}: {r.errors} errors; " + "; ".join(findings[:3]))
    return Check("checkpatch --strict", not bad, "; ".join(bad) or f"{len(patches)} clean")


def _signoffs(git: Git, shas: Sequence[str], sender: Identity) -> Check:
    """Each patch is signed off by its author, and last by the sender: the
    chain a maintainer expects when the sender carries someone's patch."""
    from patchgen.series.generate import LOCAL_RUN

    bad = []
    for sha in shas:
        info = git.commit_info(sha)
        offs = [line for line in info.body.splitlines() if line.startswith("Signed-off-by: ")]
        if f"Signed-off-by: {info.author}" not in offs:
            bad.append(f"{sha[:12]} {info.subject}: no Signed-off-by of its author {info.author}")
        elif str(LOCAL_RUN) in info.body:
            bad.append(f"{sha[:12]} is signed off by {LOCAL_RUN} (a test run without a git "
                       "identity); regenerate with 'patchgen generate'")
        elif not offs or offs[-1] != f"Signed-off-by: {sender}":
            bad.append(f"{sha[:12]} {info.subject}: the last Signed-off-by is not yours "
                       f"({sender}); regenerate with 'patchgen generate'")
    return Check("Signed-off-by: author, then you", not bad, "; ".join(bad) or "every patch")


def _built(settings: Settings, shas: Sequence[str]) -> Check:
    report = _newest(settings.runs.glob("*/check.json"), checks.CheckReport.load,
                     lambda c: [p.sha for p in c.patches] == list(shas))
    if report is None:
        return Check("built by patchgen check", False,
                     "no 'patchgen check' report for exactly these commits")
    failed = [p.subject for p in report.patches if not p.builds_ok]
    return Check("built by patchgen check", not failed,
                 "; ".join(failed) or f"all {len(shas)} commits")


def _git_am(git: Git, base: str, tip: str, mbox: Path) -> Check:
    """The mbox applies onto the base and gives the tip's tree exactly."""
    with tempfile.TemporaryDirectory(prefix="patchgen-am-") as tmp:
        where = Path(tmp) / "wt"
        git.add_worktree(where, base)
        try:
            wt = Git(where)
            res = wt.run("-c", "user.name=patchgen", "-c", "user.email=patchgen@localhost",
                         "am", "--quiet", str(mbox), check=False)
            if res.returncode != 0:
                wt.run("am", "--abort", check=False)
                return Check("git am onto the base", False, (res.stderr or res.stdout)[-300:])
            same = wt.out("rev-parse", "HEAD^{tree}") == git.out("rev-parse", f"{tip}^{{tree}}")
            return Check("git am onto the base", same,
                         "same tree as the branch" if same else "applies, but the tree differs")
        finally:
            git.remove_worktree(where)


def send_email_argv(files: list[Path], sender: str, dry_run: bool) -> list[str]:
    """Recipients come from each file's own To/Cc headers (the cover has the union)."""
    argv = ["send-email", "--confirm=never", "--no-chain-reply-to", "--suppress-cc=self",
            "--no-signed-off-by-cc", "--no-cc-cover", "--no-to-cover", f"--from={sender}"]
    if dry_run:
        argv.append("--dry-run")
    return argv + [str(f) for f in files]


# git send-email asks its questions ("To whom should the emails be sent",
# "Message-ID to be used as In-Reply-To") on /dev/tty, whatever its stdin.
# With NOTTY it reads them from stdin, which is empty: every answer is the
# default.  No prompt for credentials either: patchgen's own confirmation
# is the only question the user sees.
SEND_EMAIL_ENV = {"GIT_SEND_EMAIL_NOTTY": "1", "GIT_TERMINAL_PROMPT": "0"}


def send_email(git: Git, files: list[Path], sender: str, *, dry_run: bool) -> str:
    res = git.run(*send_email_argv(files, sender, dry_run), check=False, timeout=600,
                  input="", env=SEND_EMAIL_ENV)
    if res.returncode != 0:
        raise PatchgenError(f"git send-email{' --dry-run' if dry_run else ''} failed: "
                            + (res.stderr or res.stdout).strip()[-500:])
    return res.stdout


def format_prepared(p: Prepared) -> str:
    lines = [f"v{p.version} in {p.outdir}" + (f" (range-diff against {p.previous})"
                                               if p.previous else "")]
    lines += [f"  {f.name}" for f in p.files]
    lines.append(f"  mbox: {p.mbox}")
    lines.append("To: " + ", ".join(p.to))
    lines.append("Cc: " + ", ".join(p.cc))
    lines.append("checks:")
    lines += [f"  [{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}" for c in p.checks]
    sent = [line for line in p.dry_run.splitlines() if line.startswith(("Dry-OK", "Dry-Sent"))]
    lines.append(f"git send-email --dry-run: {len(sent)} of {len(p.files)} mails would go out")
    if p.b4:
        lines.append(f"b4 send -o: {p.b4.count} mails in {p.b4.outdir} (to send them with b4 "
                     "instead, then record the version: prep --mark-sent)")
    return "\n".join(lines)

"""Who the user is to git: the committer identity, checked before it is used.

``git format-patch`` (for Message-Ids), tags and Signed-off-by lines need
an identity.  Without one git fails late, and the useful part of its
message (the ``git config --global user.email`` line) is cut off by the
time it reaches the user; with a placeholder one (``you@example.com``, a
machine's ``root@host.(none)``, a CI seed's ``...example``) the series
would go out under an address nobody reads.  Both are refused here, up
front, with git's hint in our words: git proposes ``you@example.com``,
which this very check refuses.
"""

from __future__ import annotations

import re

from patchgen.errors import UserError
from patchgen.git import Git, Identity

__all__ = ["Identity", "committer_identity", "is_placeholder_email"]

# git's words when it has no identity (builtin/commit.c, ident.c), but for
# its example address, a placeholder that is_placeholder_email() refuses.
GIT_HINT = ('set your own (the address you send patches from) with\n'
            '  git config --global user.email "<your address>"\n'
            '  git config --global user.name "Your Name"')

# RFC 2606 / RFC 6761: names reserved for examples, tests and loopback.
RESERVED_TLDS = frozenset({"example", "invalid", "test", "localhost"})
RESERVED_DOMAINS = frozenset({"example.com", "example.org", "example.net"})

_IDENT = re.compile(r"^(?P<name>.*?)\s*<(?P<email>[^<>]*)>\s+\d+\s+[-+]\d{4}$")


def committer_identity(git: Git) -> Identity:
    """The identity git would commit with in ``git``'s repository.

    Reads it the way git itself resolves it (``git var``: environment,
    then repository, global and system config), so what is checked here is
    exactly what format-patch and tag will use.
    """
    res = git.run("var", "GIT_COMMITTER_IDENT", check=False)
    if res.returncode != 0:
        raise UserError(f"no git identity: {_reason(res.stderr)}", hint=GIT_HINT)
    m = _IDENT.match(res.stdout.strip())
    if m is None:
        raise UserError(f"cannot read the git identity {res.stdout.strip()!r}", hint=GIT_HINT)
    ident = Identity(m.group("name"), m.group("email"))
    if not ident.name.strip():
        raise UserError(f"the git identity {ident} has no name", hint=GIT_HINT)
    if is_placeholder_email(ident.email):
        raise UserError(f"the git identity {ident} is a placeholder "
                        f"({_domain(ident.email) or 'no domain'} is not a real mail domain)",
                        hint=GIT_HINT)
    return ident


def is_placeholder_email(email: str) -> bool:
    """An address at a reserved, unresolvable or guessed domain."""
    domain = _domain(email)
    if not domain or "(none)" in domain or "." not in domain:
        return True
    if domain.rsplit(".", 1)[1] in RESERVED_TLDS:
        return True
    return any(domain == d or domain.endswith("." + d) for d in RESERVED_DOMAINS)


def _domain(email: str) -> str:
    return email.rpartition("@")[2].strip().rstrip(".").lower() if "@" in email else ""


def _reason(stderr: str) -> str:
    fatal = [line.removeprefix("fatal: ") for line in stderr.splitlines()
             if line.startswith("fatal: ")]
    return fatal[-1] if fatal else (stderr.strip().splitlines() or ["git var failed"])[-1]

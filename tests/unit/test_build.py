"""Build orchestration against the fake kernel tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchgen import settings
from patchgen.build import BuildRequest, build, parse_diagnostics
from patchgen.errors import BuildFailure
from patchgen.kconfig import Profile
from patchgen.progress import null_progress


def _req(src: Path, tmp_path: Path) -> BuildRequest:
    frag = tmp_path / "f.config"
    frag.write_text("CONFIG_NETFILTER=y\n")
    return BuildRequest(src, tmp_path / "out", Profile("t", "", (frag,)))


def test_diagnostics_are_made_relative_to_the_tree() -> None:
    lines = [
        "../../worktrees/x/net/netfilter/core.c:12:5: error: 'foo' undeclared",
        "/abs/src/include/linux/netfilter.h:3:1: warning: unused",
        "ld: vmlinux.o: in function `f': undefined reference to `nf_hook_bpf_create'",
        "  CC      net/netfilter/core.o",
    ]
    diags = parse_diagnostics(lines, Path("/abs/src"))
    assert [str(d) for d in diags] == [
        "worktrees/x/net/netfilter/core.c:12: error: 'foo' undeclared",
        "include/linux/netfilter.h:3: warning: unused",
        "vmlinux: link error: vmlinux.o: in function `f': undefined reference to "
        "`nf_hook_bpf_create'",
    ]


def test_build_then_skip_when_nothing_changed(fakelinux: Path, tmp_path: Path) -> None:
    s = settings.load(tmp_path / "cache", jobs=1)
    req = _req(fakelinux, tmp_path)
    first = build(req, s, null_progress(), tmp_path / "build.log")
    assert not first.skipped
    assert first.image.read_text() == "fake\n"
    assert first.compiled == 3  # two CC and one LD line
    second = build(req, s, null_progress(), tmp_path / "build.log")
    assert second.skipped
    assert second.config_digest == first.config_digest
    log = (tmp_path / "build.log").read_text()
    assert "merge_config.sh" in log and "bzImage" in log


def test_failed_build_names_file_and_line(fakelinux: Path, tmp_path: Path) -> None:
    (fakelinux / "FAIL_BUILD").write_text("")
    s = settings.load(tmp_path / "cache", jobs=1)
    with pytest.raises(BuildFailure) as info:
        build(_req(fakelinux, tmp_path), s, null_progress(), tmp_path / "build.log")
    msg = info.value.message
    assert "net/netfilter/core.c:12: error: 'foo' undeclared" in msg
    assert "warning" not in msg
    assert info.value.hint == f"full log: {tmp_path / 'build.log'}"


def test_step_counter_drops_an_estimate_the_build_has_outgrown() -> None:
    import io

    from patchgen.build import _StepCounter
    from patchgen.progress import Progress

    out = io.StringIO()
    counter = _StepCounter(Progress(stream=out, interval=0.0), expected=2)
    for name in ("a", "b", "c"):
        counter(f"  CC      net/netfilter/{name}.o")
    shown = out.getvalue()
    assert "1/2 CC net/netfilter/a.o" in shown and "2/2 CC net/netfilter/b.o" in shown
    assert "] 3 CC net/netfilter/c.o" in shown and "3/2" not in shown


def test_diagnostic_paths_through_the_cache_are_tree_relative() -> None:
    line = ("../../../worktrees/debian-6.1.192/net/netfilter/nf_nat_proto.c:720:25: warning: "
            "unused variable 'skb' [-Wunused-variable]")
    (d,) = parse_diagnostics([line], Path("/root/.cache/patchgen/worktrees/debian-6.1.192"))
    assert (d.file, d.line, d.kind) == ("net/netfilter/nf_nat_proto.c", 720, "warning")
    (d,) = parse_diagnostics(["../net/core/dev.c:1:1: error: x"], Path("/w/debian-6.1.192"))
    assert d.file == "net/core/dev.c"

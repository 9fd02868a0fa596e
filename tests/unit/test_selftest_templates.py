"""The kselftest files in templates/selftest/: they build, lint clean, and behave
where no generated hook programs exist (the host)."""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

SELFTEST = Path(__file__).parent.parent.parent / "templates" / "selftest"
HELPER_C = SELFTEST / "nf_hook_bpf_progs.c"
SCRIPT = SELFTEST / "nf_hook_bpf.sh"


def _checkpatches() -> list[Path]:
    """Every tree's checkpatch.pl: newer ones check more (6.12's wants no
    strncpy(); only 6.1's was run, and patchgen check on 6.12 found two)."""
    # Read only, from the user's real cache: fast tests get a HOME of their own.
    cache = Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "patchgen"
    return sorted(cache.glob("trees/*/scripts/checkpatch.pl"))


@pytest.fixture(scope="module")
def helper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("no gcc")
    out = tmp_path_factory.mktemp("helper") / "nf_hook_bpf_progs"
    proc = subprocess.run(["gcc", "-Wall", "-Wextra", "-Werror", "-O2", "-o", str(out),
                           str(HELPER_C)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out


def test_helper_builds_without_warnings(helper: Path) -> None:
    assert helper.is_file()


def test_helper_usage_and_bad_option(helper: Path) -> None:
    ok = subprocess.run([str(helper), "-h"], capture_output=True, text=True)
    assert ok.returncode == 0 and "test_run" in ok.stderr
    bad = subprocess.run([str(helper), "-x", "no_such_group"], capture_output=True, text=True)
    assert bad.returncode == 1 and "no_such_group" in bad.stderr


def test_helper_send_prints_an_errno_name(helper: Path) -> None:
    proc = subprocess.run([str(helper), "-s", "127.0.0.1", "9"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert proc.stdout.strip() == "OK" or proc.stdout.startswith("E")


def test_helper_list_is_empty_without_generated_programs(helper: Path) -> None:
    proc = subprocess.run([str(helper), "-n"], capture_output=True, text=True)
    # The host kernel has no nf_hook_ programs: skip (4); without the right
    # to walk programs at all, also 4.
    assert proc.returncode == 4 and proc.stdout == ""


def test_script_syntax() -> None:
    proc = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_script_shellcheck() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("no shellcheck")
    proc = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_script_skips_without_the_switch(helper: Path) -> None:
    if Path("/proc/sys/net/netfilter/nf_hook_bpf").exists():
        pytest.skip("this kernel has the switch")
    env = dict(os.environ, NF_HOOK_BPF_PROGS=str(helper))
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 4
    assert proc.stdout.splitlines()[:2][-1].startswith("1..0 # SKIP")


@pytest.mark.parametrize("path", [HELPER_C, SCRIPT], ids=lambda p: p.name)
def test_checkpatch_strict(path: Path) -> None:
    found = _checkpatches()
    if not found or shutil.which("perl") is None:
        pytest.skip("no kernel tree with checkpatch.pl in the cache")
    for checkpatch in found:
        proc = subprocess.run(["perl", str(checkpatch), "--no-tree", "--strict", "-f",
                               str(path)], capture_output=True, text=True)
        assert "total: 0 errors, 0 warnings, 0 checks" in proc.stdout, (checkpatch, proc.stdout)


def _run_kallsyms(tmp_path: Path, later: str, symbols: str) -> str:
    """The selftest's kallsyms case alone, on a program list and a kallsyms
    of our own: the first listing has programs 11 and 12, later ones ``later``."""
    import re

    text = SCRIPT.read_text()
    body = re.search(r"^test_kallsyms\(\) \{\n.*?^\}\n", text, re.M | re.S)
    assert body is not None
    kallsyms = tmp_path / "kallsyms"
    kallsyms.write_text(symbols)
    first = ("11 nf_hook_3 00112233445566aa\n12 nf_hook_5 00112233445566bb\n")
    progs = tmp_path / "progs"
    progs.write_text("#!/bin/bash\n"
                     f"if [ -e {tmp_path}/listed ]; then printf '{later}'; "
                     f"else touch {tmp_path}/listed; printf '{first}'; fi\n")
    progs.chmod(0o755)
    script = ("diag() { echo \"# $*\"; }\nresult() { echo \"RESULT $1 $2\"; }\n"
              f"PROGS={progs}\n" + body.group(0).replace("/proc/kallsyms", str(kallsyms))
              + "test_kallsyms\n")
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


SYM_11 = "ffffffffc0001000 t bpf_prog_00112233445566aa_nf_hook_3\t[bpf]\n"
SYM_12 = "ffffffffc0002000 t bpf_prog_00112233445566bb_nf_hook_5\t[bpf]\n"


def test_kallsyms_case_passes_when_every_program_has_its_symbol(tmp_path: Path) -> None:
    out = _run_kallsyms(tmp_path, "11 nf_hook_3 00112233445566aa\\n"
                                  "12 nf_hook_5 00112233445566bb\\n", SYM_11 + SYM_12)
    assert "RESULT kallsyms ok" in out


def test_kallsyms_case_fails_for_a_listed_program_without_a_symbol(tmp_path: Path) -> None:
    out = _run_kallsyms(tmp_path, "11 nf_hook_3 00112233445566aa\\n"
                                  "12 nf_hook_5 00112233445566bb\\n", SYM_11)
    assert "RESULT kallsyms fail" in out and "prog 12 nf_hook_5: no" in out


def test_kallsyms_case_ignores_a_program_released_meanwhile(tmp_path: Path) -> None:
    """check --boot at patch 7 (no cache yet): the namespaces of the checks
    before still going away, a program listed first was released before its
    symbol was looked up, and the case failed."""
    out = _run_kallsyms(tmp_path, "11 nf_hook_3 00112233445566aa\\n", SYM_11)
    assert "RESULT kallsyms ok" in out, out


@pytest.mark.parametrize("script", [
    SCRIPT, Path(__file__).parent.parent.parent / "selftests" / "guest" / "nf_hook_bpf.sh"])
def test_the_ktap_plan_counts_every_case(script: Path) -> None:
    """A script printing fewer results than its plan now fails the run; a
    new case (bridge_prerouting) once went in without its plan growing."""
    import re

    text = script.read_text()
    plans = re.findall(r'^\s*(?:ktap|echo) "1\.\.([1-9][0-9]*)"$', text, re.M)
    cases = set(re.findall(r"\bresult ([a-z_]+) (?:ok|fail|skip)\b", text))
    assert len(plans) == 1 and int(plans[0]) == len(cases), (plans, sorted(cases))


def _fake_world(tmp_path: Path, listing: str, jit_enable: int = 1,
                padded: str | None = None) -> dict[str, str]:
    """Commands the script calls, as no-ops that succeed, and a helper
    whose program list is ``listing`` (exit 4 when empty, as the real one),
    ``padded`` once an nft script has added the padding chain c1."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mark = tmp_path / "padded"
    chains = tmp_path / "chains"  # the chains the last 'nft -f' script added
    if padded is not None:
        (tmp_path / "after").write_text(padded.replace("\\n", "\n"))
    (tmp_path / "before").write_text(listing.replace("\\n", "\n"))
    after = tmp_path / ("after" if padded is not None else "before")
    scripts = {
        "id": "echo 0",
        "nft": (f'echo "$*" >> {tmp_path / "nft.log"}\n'
                f'[ "$1" = -f ] && {{ in=$(cat); grep -q " c1 {{" <<< "$in" && touch {mark}\n'
                f'  sed -n "s/^add chain ip t \\(c[0-9]*\\) .*/\\1/p" <<< "$in" > {chains}; }}\n'
                # Every chain's counter has seen plenty (but those named in
                # the file "low", which saw 3 packets).
                '[ "$1 $2" = "list chain" ] && echo "counter packets 100 bytes 6000"\n'
                '[ "$1 $2" = "list table" ] && { echo "table $3 $4 {"\n'
                f'  while read -r c; do n=100; grep -qx "$c" {tmp_path / "low"} && n=3\n'
                '    printf "\\tchain %s {\\n\\t\\ttype filter hook input priority 0; '
                'policy accept;\\n\\t\\tcounter packets %s bytes 6000\\n\\t}\\n" "$c" "$n"\n'
                f'  done < {chains}; echo "}}"; }}\n'
                "exit 0"),
        "ping": "exit 0",
        "dmesg": "exit 0",
        # ip netns exec NS CMD...: run CMD here.
        "ip": '[ "$1 $2" = "netns exec" ] && { shift 3; exec "$@"; }; exit 0',
        "progs": ('case "$1" in\n'
                  f"-n) if [ -e {mark} ]; then f={after}; else f={tmp_path / 'before'}; fi\n"
                  '    cat "$f"; [ -s "$f" ] || exit 4 ;;\n'
                  '-s) [ "$3" = 9 ] && echo EPERM || echo OK ;;\n'
                  "esac\n"),
    }
    for name, body in scripts.items():
        f = bin_dir / name
        f.write_text(f"#!/bin/bash\n{body}\n")
        f.chmod(0o755)
    switch = tmp_path / "switch"
    switch.write_text("1\n")
    jit = tmp_path / "bpf_jit_enable"
    jit.write_text(f"{jit_enable}\n")
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "NF_HOOK_BPF_PROGS": str(bin_dir / "progs"),
            "SWITCH": str(switch), "JIT": str(jit)}


def _script_text(env: dict[str, str], main: str | None = None) -> str:
    text = SCRIPT.read_text().replace("/proc/sys/net/netfilter/nf_hook_bpf", env["SWITCH"])
    text = text.replace("/proc/sys/net/core/bpf_jit_enable", env["JIT"])
    text = text.replace("> /dev/kmsg", "> /dev/null")
    if main is not None:
        text = text[:text.index("# One base chain in a netns of its own")] + main
    return text


# Programs built before the JIT was switched off stay; the guest boots
# with it on and has three by then.
@pytest.mark.parametrize("listing", ["", "5 nf_hook_1 00112233445566aa\\n"])
def test_script_skips_where_no_program_is_generated(tmp_path: Path, listing: str) -> None:
    """Without the JIT (bpf_jit_enable=0) no new location gets a program:
    the script failed many_hooks and netns_exit instead of skipping (a
    maintainer's read), and still did where programs from before the JIT
    went off were left (a JIT-off guest run, planned)."""
    env = _fake_world(tmp_path, listing, jit_enable=0)
    proc = subprocess.run(["bash", "-c", _script_text(env)], capture_output=True, text=True,
                          env=dict(os.environ, **env), timeout=120)
    assert proc.returncode == 4, proc.stdout
    assert "1..0 # SKIP no new nf_hook_ program without the JIT" in proc.stdout


def test_script_fails_where_the_jit_is_on_and_no_program_is_generated(tmp_path: Path) -> None:
    """A skip there would hide a broken generator (a hostile maintainer's
    read of the probe)."""
    env = _fake_world(tmp_path, "", jit_enable=1)
    proc = subprocess.run(["bash", "-c", _script_text(env)], capture_output=True, text=True,
                          env=dict(os.environ, **env), timeout=120)
    assert proc.returncode == 1, proc.stdout
    assert "1..8" in proc.stdout and "not ok" in proc.stdout


ONE = "5 nf_hook_1 00112233445566aa\\n"
ELEVEN = "6 nf_hook_11 00112233445566bb\\n"


@pytest.mark.parametrize("listing, padded, verdict", [
    # No program for the location: nf_hook_slow() compared with itself.
    (ONE, ONE, "not ok 1 drop_errno"),
    # One of that many hooks, but from before: another location's (a
    # hostile read: the check matched by name anywhere in the system).
    (ONE + ELEVEN, ONE + ELEVEN, "not ok 1 drop_errno"),
    (ONE, ONE + ELEVEN, "ok 1 drop_errno"),
    # A hook of another subsystem (an LSM at LOCAL_OUT) shares the
    # location: its program has one hook more.
    (ONE, ONE + "7 nf_hook_12 00112233445566cc\\n", "ok 1 drop_errno"),
])
def test_drop_errno_needs_a_program_at_its_location(tmp_path: Path, listing: str, padded: str,
                                                    verdict: str) -> None:
    """With no program for its location the case compared nf_hook_slow()
    with itself and passed."""
    env = _fake_world(tmp_path, listing, padded=padded)
    proc = subprocess.run(["bash", "-c", _script_text(env, "test_drop_errno\n")],
                          capture_output=True, text=True, env=dict(os.environ, **env), timeout=60)
    assert verdict in proc.stdout.splitlines(), proc.stdout


def test_what_the_bpf_patch_says_is_refused_must_fail_in_the_walk() -> None:
    """Patch 5 says user space cannot pin a generated program or put it into
    a map (bpf_prog_get_ok() refuses it); the selftest's bpf(2) walk must
    then require those commands to fail, not merely allow it."""
    message = (SELFTEST.parent / "commit" / "05-bpf-kernel-prog.txt.j2").read_text()
    assert "pin" in message and "into a map" in message
    helper = HELPER_C.read_text()
    for command in ("OBJ_PIN", "PROG_BIND_MAP"):
        calls = [line for line in helper.splitlines() if f'"{command}", sys_bpf(' in line]
        assert calls and all("MUST_FAIL" in line for line in calls), (command, calls)


@pytest.mark.parametrize("padded, verdict", [
    (ONE + "8 nf_hook_64 00112233445566dd\\n", "ok 1 many_hooks"),
    # An LSM's hook at the location: one more (a hostile read: the case
    # wanted exactly nf_hook_64, while the other cases allow for it).
    (ONE + "8 nf_hook_65 00112233445566dd\\n", "ok 1 many_hooks"),
    (ONE, "not ok 1 many_hooks"),
])
def test_many_hooks_allows_for_hooks_sharing_the_location(tmp_path: Path, padded: str,
                                                          verdict: str) -> None:
    env = _fake_world(tmp_path, ONE, padded=padded)
    proc = subprocess.run(["bash", "-c", _script_text(env, "test_many_hooks\n")],
                          capture_output=True, text=True, env=dict(os.environ, **env), timeout=60)
    assert verdict in proc.stdout.splitlines(), proc.stdout


@pytest.mark.parametrize("low, verdict", [
    ([], "ok 1 many_hooks"),
    # One chain of the 200 saw too few packets: the case says so and fails.
    (["c150"], "not ok 1 many_hooks"),
])
def test_many_hooks_reads_each_table_once_per_switch_position(
        tmp_path: Path, low: list[str], verdict: str) -> None:
    """One 'nft list' per chain was 528 nft runs: under the kselftest
    runner on a TCG guest the script ran past its timeout in this case."""
    env = _fake_world(tmp_path, ONE, padded=ONE + "8 nf_hook_64 00112233445566dd\\n")
    (tmp_path / "low").write_text("".join(f"{c}\n" for c in low))
    proc = subprocess.run(["bash", "-c", _script_text(env, "test_many_hooks\n")],
                          capture_output=True, text=True, env=dict(os.environ, **env), timeout=60)
    assert verdict in proc.stdout.splitlines(), proc.stdout
    lists = [line for line in (tmp_path / "nft.log").read_text().splitlines() if " list " in
             f" {line}"]
    assert len(lists) == 4, lists[:10]  # 64 and 200 hooks, switch 1 and 0
    if low:
        assert "# 200 hooks, switch 1: 1 chains counted fewer than 6 packets" in proc.stdout


def _fake_namespaces(tmp_path: Path, trigger: str, before: str, one: str, many: str,
                     deleted: str) -> dict[str, str]:
    """The fake world, with a helper whose program list follows the
    namespaces: ``before`` until an 'nft -f' script containing ``trigger``
    has run, ``one`` after the first such script, ``many`` after more, and
    ``deleted`` once a netns has been deleted after that."""
    env = _fake_world(tmp_path, before)
    bin_dir = Path(env["PATH"].split(":")[0])
    for name, text in (("before", before), ("one", one), ("many", many),
                       ("deleted", deleted)):
        (tmp_path / f"l.{name}").write_text(text.replace("\\n", "\n"))
    loads, dels = tmp_path / "loads", tmp_path / "dels"
    (bin_dir / "nft").write_text(
        "#!/bin/bash\n"
        f'[ "$1" = -f ] && grep -q "{trigger}" && echo x >> {loads}\n'
        "exit 0\n")
    (bin_dir / "ip").write_text(
        "#!/bin/bash\n"
        '[ "$1 $2" = "netns exec" ] && { shift 3; exec "$@"; }\n'
        f'[ "$1 $2" = "netns del" ] && [ -e {loads} ] && echo x >> {dels}\n'
        "exit 0\n")
    (bin_dir / "progs").write_text(
        "#!/bin/bash\n"
        '[ "$1" = -n ] || exit 0\n'
        f"k=$(cat {loads} 2> /dev/null | wc -l)\n"
        f"if [ -s {dels} ]; then f=deleted; elif [ $k -ge 2 ]; then f=many;\n"
        "elif [ $k -eq 1 ]; then f=one; else f=before; fi\n"
        f'cat {tmp_path}/l.$f; [ -s {tmp_path}/l.$f ] || exit 4\n')
    return env


def _prog(pid: int, hooks: int) -> str:
    return f"{pid} nf_hook_{hooks} 00112233445566{pid:02x}\\n"


# Programs 7 and 8 belong to namespaces an earlier case deleted, still being
# torn down: they go while this case runs.
DYING = _prog(7, 3) + _prog(8, 4)


@pytest.mark.parametrize("before, with_ns, deleted, verdict", [
    (ONE, ONE + _prog(20, 1) + _prog(21, 3), ONE, "ok 1 netns_exit"),
    # The CI run that failed: the earlier case's programs went while the
    # namespaces came up, and the count did not grow.
    (ONE + DYING, ONE + _prog(20, 1) + _prog(21, 3), ONE, "ok 1 netns_exit"),
    # A program of the deleted namespaces stays: the earlier case's going
    # hid it from a count.
    (ONE + DYING, ONE + DYING + _prog(20, 1) + _prog(21, 3), ONE + _prog(20, 1),
     "not ok 1 netns_exit"),
    # Nothing was made for the namespaces: nothing to see go.
    (ONE + _prog(7, 3), ONE + _prog(7, 3), ONE, "not ok 1 netns_exit"),
])
def test_netns_exit_follows_the_programs_made_for_its_namespaces(
        tmp_path: Path, before: str, with_ns: str, deleted: str, verdict: str) -> None:
    """The case compared program counts, and another case's namespaces going
    meanwhile made it fail (CI, TCG, two guests) or pass over a leak."""
    env = _fake_namespaces(tmp_path, "table netdev t", before, with_ns, with_ns, deleted)
    text = _script_text(env, "test_netns_exit\n").replace("RELEASE_WAIT=60", "RELEASE_WAIT=2")
    proc = subprocess.run(["bash", "-c", text], capture_output=True, text=True,
                          env=dict(os.environ, **env), timeout=120)
    assert verdict in proc.stdout.splitlines(), proc.stdout


@pytest.mark.parametrize("one, many, verdict", [
    (ONE + DYING + _prog(20, 1), ONE + _prog(20, 1), "ok 1 netns_sharing"),
    # The nine other namespaces made a program of their own: the earlier
    # case's going hid it from a count.
    (ONE + DYING + _prog(20, 1) + _prog(21, 1), ONE + _prog(20, 1) + _prog(21, 1)
     + _prog(30, 1), "not ok 1 netns_sharing"),
    # The first netns made more than one program per location.
    (ONE + "".join(_prog(20 + i, 1) for i in range(7)),
     ONE + "".join(_prog(20 + i, 1) for i in range(7)), "not ok 1 netns_sharing"),
])
def test_netns_sharing_counts_programs_made_not_programs_there(
        tmp_path: Path, one: str, many: str, verdict: str) -> None:
    env = _fake_namespaces(tmp_path, "table inet filter", ONE + DYING, one, many, ONE)
    proc = subprocess.run(["bash", "-c", _script_text(env, "test_netns_sharing\n")],
                          capture_output=True, text=True, env=dict(os.environ, **env), timeout=120)
    assert verdict in proc.stdout.splitlines(), proc.stdout

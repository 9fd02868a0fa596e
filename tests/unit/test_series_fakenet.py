"""The recipes on a miniature netfilter tree: golden patches, discovery, errors.

Set PATCHGEN_UPDATE_GOLDEN=1 to rewrite the golden files after a deliberate
change; review the diff before committing it.
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from patchgen.errors import UserError
from patchgen.series.generate import PatchResult
from patchgen.series.hooks import CallKind, discover
from patchgen.series.view import RecipeError, TreeView
from tests.series_helpers import patch_text, plan_for

GOLDEN = Path(__file__).parent.parent / "data" / "fakenet"


def test_patches_match_golden(fakenet: Path, tmp_path: Path) -> None:
    plan = plan_for(fakenet, tmp_path / "cache")
    assert [p.spec.number for p in plan.patches] == list(range(1, 11))
    for p in plan.patches:
        golden = GOLDEN / f"{p.spec.number:02d}-{p.spec.slug}.golden.txt"
        text = patch_text(p)
        if os.environ.get("PATCHGEN_UPDATE_GOLDEN"):
            golden.write_text(text)
        assert text == golden.read_text(), golden.name


def test_discovery_finds_every_spelling_and_ignores_a_namesake(fakenet: Path) -> None:
    inv = discover(TreeView(fakenet))
    reasons = {h.name: h.reason for h in inv.hooks}
    assert set(reasons) == {"accept_all", "fake_broute", "fake_do_table", "fake_ipv6_hook",
                            "nf_nat_inet_fn", "nf_nat_ipv4_fn", "nf_nat_ipv4_out"}
    assert reasons["accept_all"].startswith("registered (.hook = accept_all, net/netfilter/core.c")
    assert "argument of xt_hook_ops_alloc()" in reasons["fake_do_table"]
    assert reasons["fake_ipv6_hook"].startswith("registered ([...] = fake_ipv6_hook")
    assert reasons["nf_nat_inet_fn"] == "called by hook nf_nat_ipv4_fn"
    assert [s.function.name for s in inv.unclassified] == ["lonely_helper"]
    kinds = {(c.caller, c.callee): c.kind for c in inv.calls}
    assert kinds[("fake_broute", "fake_do_table")] is CallKind.OWN_STATE
    assert kinds[("fake_broute", "fake_ipv6_hook")] is CallKind.PASSTHROUGH
    assert kinds[("nf_nat_ipv4_out", "nf_nat_ipv4_fn")] is CallKind.PASSTHROUGH
    # The header prototype, the #else static inline stub: both are found.
    ipv6 = inv.by_name("fake_ipv6_hook")
    assert [s.path for s in ipv6.prototypes] == ["include/net/netfilter/nf_table_hooks.h"]
    assert [s.path for s in ipv6.definitions] == ["include/net/netfilter/nf_table_hooks.h"]


def test_unclassified_hook_lookalike_is_reported(fakenet: Path, tmp_path: Path) -> None:
    plan = plan_for(fakenet, tmp_path / "cache", upto=4)
    (warning,) = plan.patches[3].warnings
    assert warning.startswith("net/ipv4/netfilter/fake_tables.c:32: lonely_helper()")


def test_unsupported_call_is_an_error_naming_the_place(fakenet: Path, tmp_path: Path) -> None:
    src = fakenet / "net" / "bridge" / "br_input.c"
    src.write_text(src.read_text().replace("fake_ipv6_hook(priv, skb, s)",
                                           "fake_ipv6_hook(NULL, skb, s)"))
    subprocess.run(["git", "-C", str(fakenet), "commit", "-qam", "odd call"], check=True)
    with pytest.raises(UserError, match=r"br_input\.c:\d+: fake_broute\(\) calls "
                                        r"fake_ipv6_hook\(NULL, skb, s\)"):
        plan_for(fakenet, tmp_path / "cache", upto=4)


def test_recipe_names_what_it_expected(fakenet: Path, tmp_path: Path) -> None:
    core = fakenet / "net" / "netfilter" / "core.c"
    core.write_text(core.read_text().replace("#define MAX_HOOK_COUNT\t\t1024\n", ""))
    subprocess.run(["git", "-C", str(fakenet), "commit", "-qam", "no limit"], check=True)
    with pytest.raises(UserError, match=r"patch 1 .*MAX_HOOK_COUNT is not defined"):
        plan_for(fakenet, tmp_path / "cache", upto=1)


def test_generator_follows_the_tree_facts(fakenet: Path, tmp_path: Path) -> None:
    """A tree whose kfree_skb_reason() is inline drops with sk_skb_reason_drop()."""
    skbuff = fakenet / "include" / "linux" / "skbuff.h"
    skbuff.write_text(
        "void __fix_address sk_skb_reason_drop(struct sock *sk, struct sk_buff *skb,\n"
        "\t\t\t\t      enum skb_drop_reason reason);\n\n"
        "static inline void\nkfree_skb_reason(struct sk_buff *skb, enum skb_drop_reason reason)\n"
        "{\n\tsk_skb_reason_drop(NULL, skb, reason);\n}\n")
    ns = fakenet / "include" / "net" / "net_namespace.h"
    ns.write_text(ns.read_text() + "#define register_net_sysctl(net, path, table) \\\n"
                  "\tregister_net_sysctl_sz(net, path, table, ARRAY_SIZE(table))\n")
    subprocess.run(["git", "-C", str(fakenet), "commit", "-qam", "newer"], check=True)
    plan = plan_for(fakenet, tmp_path / "cache", upto=6)
    gen = next(c.new for c in plan.patches[5].changes if c.path.endswith("nf_hook_bpf.c"))
    assert "emit_call(p, sk_skb_reason_drop)" in gen and "kfree_skb_reason)" not in gen
    assert "\t{ }\n" not in gen  # no sysctl sentinel with sized registration
    assert "sk_skb_reason_drop()" in plan.patches[5].message


@pytest.mark.parametrize(("declaration", "call"), [
    ("extern int security_bpf_prog_alloc(struct bpf_prog_aux *aux);",
     "security_bpf_prog_alloc(prog->aux)"),
    ("extern int security_bpf_prog_load(struct bpf_prog *prog, union bpf_attr *attr,\n"
     "\t\t\t\t  struct bpf_token *token);",
     "security_bpf_prog_load(prog, NULL, NULL)"),
    ("extern int security_bpf_prog_load(struct bpf_prog *prog, union bpf_attr *attr,\n"
     "\t\t\t\t  struct bpf_token *token, bool kernel);",
     "security_bpf_prog_load(prog, NULL, NULL, true)"),
])
def test_kernel_prog_helper_calls_the_lsm_hook_the_tree_declares(
        fakenet: Path, tmp_path: Path, declaration: str, call: str) -> None:
    """6.1: prog_alloc(aux); 6.12: prog_load(prog, attr, token); 7.2: ..., bool kernel.

    The LSM blob is the BPF core's business (patch 5, bpf_prog_load_kernel());
    it is freed with the program, the generator has no LSM code of its own.
    """
    security = fakenet / "include" / "linux" / "security.h"
    security.write_text(f"{declaration}\nextern void security_bpf_prog_free(void *p);\n")
    subprocess.run(["git", "-C", str(fakenet), "commit", "-qam", "lsm"], check=True)
    plan = plan_for(fakenet, tmp_path / "cache", upto=6)
    helper = next(c.new for c in plan.patches[4].changes if c.path == "kernel/bpf/syscall.c")
    assert f"\terr = {call};\n" in helper
    assert helper.count("security_bpf_prog_") == 1  # freed by __bpf_prog_put_noref()
    gen = next(c.new for c in plan.patches[5].changes if c.path.endswith("nf_hook_bpf.c"))
    assert "security_" not in gen and "bpf_prog_alloc_id" not in gen
    assert "bpf_prog_load_kernel(p.insns, p.len, name)" in gen


def test_commit_makes_a_branch_and_a_second_run_keeps_it(fakenet: Path, tmp_path: Path) -> None:
    from patchgen.series import generate

    plan = plan_for(fakenet, tmp_path / "cache")
    first = generate.commit(plan, "patchgen/test", "2026-01-01T00:00:00+0000")
    assert not first.reused and len(first.commits) == 10
    head = subprocess.run(["git", "-C", str(fakenet), "symbolic-ref", "--short", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert head != "patchgen/test"  # the user's checkout stays where it was
    again = generate.commit(plan_for(fakenet, tmp_path / "cache"), "patchgen/test",
                            "2026-02-02T00:00:00+0000")
    assert again.reused and again.commits == first.commits
    status = subprocess.run(["git", "-C", str(fakenet), "status", "--porcelain"],
                            capture_output=True, text=True, check=True).stdout
    assert status == ""


def test_an_explicit_new_date_makes_new_commits(fakenet: Path, tmp_path: Path) -> None:
    from patchgen.series import generate

    first = generate.commit(plan_for(fakenet, tmp_path / "cache"), "patchgen/test",
                            "2026-01-01T00:00:00+0000", keep_dates=True)
    same = generate.commit(plan_for(fakenet, tmp_path / "cache"), "patchgen/test",
                           "2026-01-01T00:00:00+0000", keep_dates=True)
    assert same.reused and same.commits == first.commits
    later = generate.commit(plan_for(fakenet, tmp_path / "cache"), "patchgen/test",
                            "2027-01-02T03:04:05+0000", keep_dates=True)
    assert not later.reused and len(later.commits) == 10
    assert set(later.commits).isdisjoint(first.commits)


def test_switch_variants_follow_the_generator(fakenet: Path, tmp_path: Path) -> None:
    from patchgen import settings
    from patchgen.errors import UserError as UE
    from patchgen.progress import null_progress
    from patchgen.series import generate
    from patchgen.stages import switch_variants
    from patchgen.tree import TreeRequest, prepare

    plan = plan_for(fakenet, tmp_path / "cache")
    runtime = plan.spec.runtime
    done = generate.commit(plan, "patchgen/test", "2026-01-01T00:00:00+0000")
    tree = prepare(TreeRequest(path=fakenet), settings.load(tmp_path / "c2"), null_progress())
    tip = done.commits[-1]
    assert [v.name for v in switch_variants(tree, tip, "auto", runtime)] == [
        "nf_hook_bpf=1", "nf_hook_bpf=0"]
    assert switch_variants(tree, tip, "0", runtime)[0].sysctls == {
        "net.netfilter.nf_hook_bpf": "0"}
    assert [v.name for v in switch_variants(tree, tree.base, "auto", runtime)] == [""]
    with pytest.raises(UE, match=r"no net/netfilter/nf_hook_bpf\.c"):
        switch_variants(tree, tree.base, "1", runtime)


def _function(source: str, signature: str) -> str:
    start = source.index(signature)
    return source[start:source.index("\n}\n", start) + 3]


def test_releasing_a_program_allocates_nothing_that_can_fail(fakenet: Path,
                                                             tmp_path: Path) -> None:
    """Unregistration cannot fail, and must not wait for the work item.

    The release entry comes with __GFP_NOFAIL, not with a flush_work()
    fallback that waits, under nf_hook_mutex (and the RTNL for netdev hooks),
    for every queued dispatcher change (a grace period each) when memory
    is short.  Attaching may fail: the location keeps nf_hook_slow().
    """
    plan = plan_for(fakenet, tmp_path / "cache", upto=6)
    gen = next(c.new for c in plan.patches[5].changes if c.path.endswith("nf_hook_bpf.c"))
    assert "flush_work" not in gen
    detach = _function(gen, "void nf_hook_bpf_detach(struct nf_hook_entries *e)\n")
    assert "GFP_KERNEL_ACCOUNT | __GFP_NOFAIL" in detach
    attach = _function(gen, "void nf_hook_bpf_attach(struct nf_hook_entries *e)\n")
    assert "kmalloc(sizeof(*c), GFP_KERNEL_ACCOUNT);" in attach
    assert "__GFP_NOFAIL" not in attach


@pytest.mark.parametrize("fault", ["skip-hook", "verdict", "build"])
def test_injected_faults_are_marked_in_the_generated_code(fakenet: Path, tmp_path: Path,
                                                          fault: str) -> None:
    from patchgen import settings
    from patchgen.progress import null_progress
    from patchgen.series import generate
    from patchgen.series.render import Renderer
    from patchgen.tree import TreeRequest, prepare
    from tests.series_helpers import AUTHOR

    s = settings.load(tmp_path / "cache")
    tree = prepare(TreeRequest(path=fakenet), s, null_progress())
    plan = generate.plan(tree, Renderer(s.templates_dir), generate.load_spec(s.templates_dir),
                         AUTHOR, upto=6, fault=fault)
    gen = next(c.new for c in plan.patches[5].changes if c.path.endswith("nf_hook_bpf.c"))
    assert f"--inject-fault {fault}" in gen
    clean = plan_for(fakenet, tmp_path / "cache2", upto=6)
    assert "FAULT" not in next(c.new for c in clean.patches[5].changes
                               if c.path.endswith("nf_hook_bpf.c"))


def test_attribution_follows_the_rfc(fakenet: Path, tmp_path: Path) -> None:
    """RFC-derived patches keep Florian as author and first sign-off, with a Link:
    to the posting; patches new to the series are the user's; nothing about
    changes since the RFC in a commit message (that goes to the cover letter)."""
    plan = plan_for(fakenet, tmp_path / "cache")
    florian = "Florian Westphal <fw@strlen.de>"
    link = "Link: https://lore.kernel.org/all/20221005141309.31758-1-fw@strlen.de/"
    for p in plan.patches:
        body, _, trailer_block = p.message.rstrip("\n").rpartition("\n\n")
        trailer_lines = trailer_block.splitlines()
        assert "Changes since" not in p.message and "changes since" not in body.lower()
        assert "---" not in p.message.splitlines()
        if p.spec.origin == "rfc":
            assert str(p.author) == florian
            assert trailer_lines == [link, f"Signed-off-by: {florian}",
                                     "Signed-off-by: Test User <test@example.org>"]
        else:
            assert p.author is not None and str(p.author) == "Test User <test@example.org>"
            assert trailer_lines == ["Signed-off-by: Test User <test@example.org>"]
    assert {p.spec.origin for p in plan.patches} == {"rfc", "new"}
    assert plan.patches[4].subject.startswith("bpf: ")
    assert plan.patches[4].spec.origin == "new"


def test_commits_carry_the_patch_author_and_the_user_as_committer(
        fakenet: Path, tmp_path: Path) -> None:
    from patchgen.git import Git
    from patchgen.series import generate

    plan = plan_for(fakenet, tmp_path / "cache")
    done = generate.commit(plan, "patchgen/test", "2026-01-01T00:00:00+00:00")
    git = Git(plan.tree.repo)
    fmt = "%an <%ae>|%cn <%ce>"
    people = [git.out("show", "-s", f"--format={fmt}", sha).strip() for sha in done.commits]
    user = "Test User <test@example.org>"
    assert people[0] == f"Florian Westphal <fw@strlen.de>|{user}"
    assert people[4] == f"{user}|{user}"


def test_selftest_list_spellings() -> None:
    """The three ways netfilter's selftest Makefiles spell their lists (6.1, 6.12, 7.x)."""
    from patchgen.series.selftest_recipe import add_to_list

    v61 = "TEST_PROGS := a.sh \\\n\tz.sh\n\nTEST_GEN_FILES =  q r\n\ninclude ../lib.mk\n"
    out = add_to_list(add_to_list(v61, "TEST_PROGS", "n.sh", "M"), "TEST_GEN_FILES", "n", "M")
    assert out == ("TEST_PROGS := a.sh \\\n\tz.sh\nTEST_PROGS += n.sh\n\n"
                   "TEST_GEN_FILES =  q r\nTEST_GEN_FILES += n\n\ninclude ../lib.mk\n")
    v612 = "TEST_PROGS := a.sh\nTEST_PROGS += z.sh\n\nTEST_GEN_FILES = q\n"
    assert add_to_list(v612, "TEST_PROGS", "n.sh", "M") == \
        "TEST_PROGS := a.sh\nTEST_PROGS += z.sh\nTEST_PROGS += n.sh\n\nTEST_GEN_FILES = q\n"
    v72 = "TEST_PROGS := \\\n\ta.sh \\\n\tz.sh \\\n# end of TEST_PROGS\n"
    assert add_to_list(v72, "TEST_PROGS", "n.sh", "M") == \
        "TEST_PROGS := \\\n\ta.sh \\\n\tn.sh \\\n\tz.sh \\\n# end of TEST_PROGS\n"
    with pytest.raises(RecipeError, match="no TEST_GEN_PROGS list"):
        add_to_list(v72, "TEST_GEN_PROGS", "x", "M")


def test_selftest_patch_adds_an_executable_script(fakenet: Path, tmp_path: Path) -> None:
    plan = plan_for(fakenet, tmp_path / "cache")
    last = plan.patches[-1]
    assert last.subject == "selftests: netfilter: test the generated base hook programs"
    files = {c.path: c for c in last.changes}
    script = files["tools/testing/selftests/netfilter/nf_hook_bpf.sh"]
    assert script.executable and script.old is None
    assert "tools/testing/selftests/netfilter/nf_hook_bpf_progs.c" in files
    make = files["tools/testing/selftests/netfilter/Makefile"].new
    assert "TEST_PROGS += nf_hook_bpf.sh\n" in make
    assert "TEST_GEN_FILES += nf_hook_bpf_progs\n" in make


MACRO_HOOK = """
#define DEFINE_HOOK(name) static unsigned int name(void *priv, struct sk_buff *skb, \\
\t\t\t\t\t\t   const struct nf_hook_state *state)

DEFINE_HOOK(my_hook)
{
\treturn NF_ACCEPT;
}

static const struct nf_hook_ops my_ops = {
\t.hook = my_hook,
};
"""

HIDDEN_HOOK = """
#define HOOK_ARGS void *priv, struct sk_buff *skb, const struct nf_hook_state *state
#define HOOKFN(n) static unsigned int n(HOOK_ARGS)

HOOKFN(hidden_hook)
{
\treturn NF_ACCEPT;
}

static const struct nf_hook_ops hidden_ops[] = {
\t{
\t\t.hook = (nf_hookfn *)hidden_hook,
\t},
};
"""


def _add_to_core(fakenet: Path, text: str) -> int:
    core = fakenet / "net" / "netfilter" / "core.c"
    before = core.read_text()
    core.write_text(before + text)
    subprocess.run(["git", "-C", str(fakenet), "commit", "-qam", "macro hook"], check=True)
    return before.count("\n") + 1  # line of the first added line


def test_a_hook_defined_through_a_macro_stops_generate_naming_it(fakenet: Path,
                                                                  tmp_path: Path) -> None:
    """Left unconverted, patch 4 would not build (-Werror=incompatible-pointer-types)."""
    first = _add_to_core(fakenet, MACRO_HOOK)
    with pytest.raises(UserError) as info:
        plan_for(fakenet, tmp_path / "cache", upto=4)
    assert info.value.message.startswith("patch 4 (")
    assert (f"net/netfilter/core.c:{first + 4}: my_hook() is defined through the macro "
            f"DEFINE_HOOK() (net/netfilter/core.c:{first + 1})") in info.value.message


def test_a_registered_hook_without_a_visible_definition_stops_generate(fakenet: Path,
                                                                       tmp_path: Path) -> None:
    first = _add_to_core(fakenet, HIDDEN_HOOK)
    with pytest.raises(UserError) as info:
        plan_for(fakenet, tmp_path / "cache", upto=4)
    assert (f"net/netfilter/core.c:{first + 11}: hidden_hook() is registered (.hook = "
            "hidden_hook) but patchgen found no definition of it with the hook "
            "signature") in info.value.message


def test_a_test_run_without_identity_signs_off_as_a_local_run(
        fakenet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """generate refuses a placeholder identity; run (README command 1 on a fresh
    machine) goes on as LOCAL_RUN, which prep refuses to send."""
    from patchgen import settings
    from patchgen.progress import null_progress
    from patchgen.series import generate
    from patchgen.tree import TreeRequest, prepare

    monkeypatch.setenv("GIT_COMMITTER_NAME", "Seed maintainers")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "maintainers@users.noreply.r-seed.example")
    tree = prepare(TreeRequest(path=fakenet), settings.load(tmp_path / "c"), null_progress())
    with pytest.raises(UserError, match="is a placeholder"):
        generate.identity_for(tree, None)
    assert generate.identity_for(tree, None, local_ok=True) == generate.LOCAL_RUN
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "ada@kernel.org")
    assert str(generate.identity_for(tree, None)) == "Seed maintainers <ada@kernel.org>"


def _kconfig_depends(plan_patches: Sequence[PatchResult], symbol: str) -> list[str]:
    """The symbols ``config SYMBOL`` depends on, in the series' Kconfig."""
    import re

    for p in plan_patches:
        for c in p.changes:
            m = re.search(rf"^config {symbol}\n(?:\t.*\n)*?\tdepends on (.*)\n", c.new, re.M)
            if c.path.endswith("Kconfig") and m:
                return re.findall(r"[A-Z0-9_]+", m.group(1))
    raise AssertionError(f"no config {symbol} in the series")


def test_the_generator_message_names_every_dependency(fakenet: Path, tmp_path: Path) -> None:
    """Its Kconfig entry depends on the retpoline option too, which makes the
    feature x86-only; the message once said "depends on 64BIT and the JIT"."""
    import re

    plan = plan_for(fakenet, tmp_path / "cache", upto=6)
    deps = _kconfig_depends(plan.patches, "NF_HOOK_BPF")
    assert len(deps) >= 4, deps
    message = plan.patches[5].message
    for symbol in deps:
        assert re.search(rf"\b{symbol}\b", message), f"patch 6's message does not name {symbol}"
    assert "x86" in message


def test_the_selftest_directory_gets_what_the_test_needs(fakenet: Path, tmp_path: Path) -> None:
    """merge_config drops CONFIG_NF_HOOK_BPF=y when what it depends on is off
    (x86_64_defconfig has no BPF_SYSCALL, no BPF_JIT): the test would always
    skip.  The helper is built against the tree's uapi (it uses enum values
    older system headers lack), and its binary is ignored by git."""
    plan = plan_for(fakenet, tmp_path / "cache")
    files = {c.path: c.new for c in plan.patches[-1].changes}
    d = "tools/testing/selftests/netfilter"
    config = files[f"{d}/config"].splitlines()
    for symbol in ["NF_HOOK_BPF", *_kconfig_depends(plan.patches, "NF_HOOK_BPF")]:
        if symbol != "64BIT":  # the architecture's, not a fragment's
            assert f"CONFIG_{symbol}=y" in config, symbol
    assert "CONFIG_NFT_QUEUE=m" in config  # what was there stays
    # What the script itself uses (veth pairs, "ct state", "table ip"),
    # which 6.1's fragment relies on a default config for (a maintainer's
    # read): series.toml [runtime] selftest_config.
    for option in ("CONFIG_VETH=m", "CONFIG_NF_CONNTRACK=m", "CONFIG_NFT_CT=m",
                   "CONFIG_NF_TABLES_IPV4=y"):
        assert option in config, option
    assert "nf_hook_bpf_progs" in files[f"{d}/.gitignore"].splitlines()
    make = files[f"{d}/Makefile"]
    rule = "$(OUTPUT)/nf_hook_bpf_progs: CFLAGS += $(KHDR_INCLUDES)\n"
    assert rule in make and make.index("include ../lib.mk") < make.index(rule)


def test_the_selftest_cleans_up_when_the_runner_times_it_out() -> None:
    """The kselftest runner ends a test that runs too long with SIGTERM,
    and bash runs no EXIT trap on a signal it does not handle: the switch
    would stay at the test's value, namespaces and mounts would stay."""
    import re

    script = (Path(__file__).parents[2] / "templates" / "selftest" / "nf_hook_bpf.sh").read_text()
    traps = re.findall(r"^trap (.*)$", script, re.M)
    assert any(re.search(r"\bTERM\b", t) and re.search(r"\bINT\b", t) for t in traps), traps


def test_the_series_is_computed_from_the_commit_not_from_ignored_files(fakenet: Path,
                                                                       tmp_path: Path) -> None:
    """A file git ignores is not part of the tree: the committed 7.2 tree had
    no tools/testing/selftests/net/netfilter/.gitignore (the kernel's own
    .gitignore hides dot files there), yet the file sat on disk, and the
    selftest patch "created" it with the contents it found."""
    d = fakenet / "tools/testing/selftests/netfilter"
    subprocess.run(["git", "-C", str(fakenet), "rm", "-q", "--cached", f"{d}/.gitignore"],
                   check=True)
    (fakenet / ".git/info/exclude").write_text(".gitignore\n")
    subprocess.run(["git", "-C", str(fakenet), "commit", "-q", "-m", "no .gitignore"], check=True)
    assert (d / ".gitignore").exists()
    plan = plan_for(fakenet, tmp_path / "cache")
    paths = {c.path for c in plan.patches[-1].changes}
    assert "tools/testing/selftests/netfilter/.gitignore" not in paths


def test_a_location_that_walks_its_hooks_itself_is_named(fakenet: Path, tmp_path: Path) -> None:
    """Bridge prerouting calls its hooks in nf_hook_bridge_pre(), not through
    nf_hook_slow(): the switch never reaches it, and the message said the
    sysctl "switches every location" (a maintainer's first read)."""
    plan = plan_for(fakenet, tmp_path / "cache", upto=6)
    walk = "nf_hook_bridge_pre() in net/bridge/br_input.c"
    message = " ".join(plan.patches[5].message.split())
    assert f"Not reached by it: {walk}, which walks the hooks of its location" in message
    doc = next(c.new for c in plan.patches[5].changes if c.path.endswith(".rst"))
    assert walk in doc
    # NAT's own lookup hooks are not a location; nf_hook_slow() itself is not either.
    assert "nf_nat" not in message.split("Not reached by it:")[1].split(".")[0]
    assert "no program is built for such a location" in message
    # ... and none is: attach leaves that location to its own walk.
    gen = next(c.new for c in plan.patches[5].changes if c.path.endswith("nf_hook_bpf.c"))
    assert "#include <linux/netfilter_bridge.h>\n" in gen
    unused = _function(gen, "static bool nf_hook_bpf_unused(const struct nf_hook_entries *e)\n")
    assert "ops[i]->pf == NFPROTO_BRIDGE && ops[i]->hooknum == NF_BR_PRE_ROUTING" in unused
    attach = _function(gen, "void nf_hook_bpf_attach(struct nf_hook_entries *e)\n")
    assert attach.index("nf_hook_bpf_unused(e)") < attach.index("kmalloc(")


def test_what_the_inline_nf_hook_reads_is_exported_like_nf_hook_slow(fakenet: Path,
                                                                     tmp_path: Path) -> None:
    """nf_hook() is inline: every module that calls NF_HOOK() reads the
    switch's static key, whatever its licence, as it calls nf_hook_slow().
    The key was EXPORT_SYMBOL_GPL while nf_hook_slow() is EXPORT_SYMBOL: a
    module that built against the tree before would not load after it."""
    import re

    core = (fakenet / "net/netfilter/core.c").read_text()
    slow = re.search(r"^(EXPORT_SYMBOL\w*)\(nf_hook_slow\);", core, re.M)
    assert slow is not None
    plan = plan_for(fakenet, tmp_path / "cache", upto=6)
    files = {c.path: c.new for c in plan.patches[5].changes}
    header = files["include/linux/netfilter.h"]
    inline = _function(header, "static __always_inline int nf_hook_entries_run(")
    gen = files["net/netfilter/nf_hook_bpf.c"]
    exports = dict((sym, macro) for macro, sym in re.findall(r"^(EXPORT_SYMBOL\w*)\((\w+)\);",
                                                             gen, re.M))
    read = [sym for sym in exports if re.search(rf"\b{sym}\b", inline)]
    assert read, "the inline reads none of the generator's exports"
    for sym in read:
        assert exports[sym] == slow.group(1), (sym, exports[sym])


def test_the_instruction_buffer_is_sized_from_the_hook_count(fakenet: Path,
                                                             tmp_path: Path) -> None:
    """Each cache miss allocated BPF_MAXINSNS instructions (32 KiB, an
    order-3 allocation) for programs of a few dozen instructions."""
    import re

    plan = plan_for(fakenet, tmp_path / "cache", upto=6)
    gen = next(c.new for c in plan.patches[5].changes if c.path.endswith("nf_hook_bpf.c"))
    create = _function(gen, "static struct bpf_prog *nf_hook_bpf_create(")
    assert "p.size = NF_HOOK_BPF_INSNS(n);" in create
    assert re.search(r"kcalloc\(p\.size,", create), create
    assert "p->len >= p->size" in _function(gen, "static bool emit(")
    macro = re.search(r"^#define NF_HOOK_BPF_INSNS\(n\)\t+\(6 \* \(n\) \+ (\d+)\)$", gen, re.M)
    max_hooks = re.search(r"^#define NF_HOOK_BPF_MAX_HOOKS\t+(\d+)$", gen, re.M)
    assert macro is not None and max_hooks is not None, "no size per hook count"
    # At the largest location a program serves: an order-1 allocation at most.
    assert (6 * int(max_hooks.group(1)) + int(macro.group(1))) * 8 <= 8192


def test_the_sysctl_documentation_is_well_formed_rst(fakenet: Path, tmp_path: Path) -> None:
    """The sentence naming a location walked elsewhere was glued to its
    neighbours with tabs ("nf_hook_slow().<TAB>nf_hook_bridge_pre() ...",
    a 116-column line): a maintainer's read of the 7.2 series."""
    plan = plan_for(fakenet, tmp_path / "cache", upto=6)
    doc = next(c for c in plan.patches[5].changes if c.path.endswith(".rst"))
    added = doc.new[len(doc.old or ""):] if doc.old and doc.new.startswith(doc.old) else doc.new
    for line in added.splitlines():
        body = line.lstrip("\t")
        assert "\t" not in body, repr(line)
        assert len(line.expandtabs(8)) <= 80, repr(line)
    assert "nf_hook_bridge_pre() in net/bridge/br_input.c\n" in added


def test_the_sysctl_documentation_says_what_the_switch_does_without_the_jit(
        fakenet: Path, tmp_path: Path) -> None:
    """Without the JIT no program is built: the documentation did not say so
    (a hostile read of the selftest's skip), then said the switch changed
    nothing, wrong for the programs built before the JIT went off (the next
    hostile read)."""
    plan = plan_for(fakenet, tmp_path / "cache", upto=6)
    doc = next(c for c in plan.patches[5].changes if c.path.endswith(".rst"))
    text = " ".join(doc.new.split())
    assert "locations whose hooks change while the BPF JIT is off " \
        "(net.core.bpf_jit_enable=0) get none, and use nf_hook_slow() whatever the switch" in text


def test_the_change_queue_is_charged_and_drained_off_system_wq(fakenet: Path,
                                                               tmp_path: Path) -> None:
    """A netns adding and deleting chains in a loop queues a dispatcher
    change each time, and each change waits a grace period in the work
    item: the entries were not charged to anyone, and the work sat on
    system_wq, where long sleeping work holds up others (a maintainer's
    read of the 7.2 series)."""
    plan = plan_for(fakenet, tmp_path / "cache", upto=6)
    gen = next(c.new for c in plan.patches[5].changes if c.path.endswith("nf_hook_bpf.c"))
    assert "schedule_work(" not in gen
    assert "queue_work(system_unbound_wq, &nf_hook_bpf_work);" in gen
    attach = _function(gen, "void nf_hook_bpf_attach(struct nf_hook_entries *e)\n")
    detach = _function(gen, "void nf_hook_bpf_detach(struct nf_hook_entries *e)\n")
    assert "kmalloc(sizeof(*c), GFP_KERNEL_ACCOUNT);" in attach
    assert "kmalloc(sizeof(*c), GFP_KERNEL_ACCOUNT | __GFP_NOFAIL);" in detach


def _generator_with(fakenet: Path, tmp_path: Path, header: str, text: str) -> str:
    """Patch 6's generator on fakenet with ``header`` committed as ``text``."""
    h = fakenet / header
    h.parent.mkdir(parents=True, exist_ok=True)
    h.write_text(text)
    subprocess.run(["git", "-C", str(fakenet), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(fakenet), "commit", "-q", "-m", header], check=True)
    plan = plan_for(fakenet, tmp_path / "cache", upto=6)
    return next(c.new for c in plan.patches[5].changes if c.path.endswith("nf_hook_bpf.c"))


def test_the_unbound_workqueue_goes_by_the_name_the_tree_wants(fakenet: Path,
                                                               tmp_path: Path) -> None:
    """7.x names it system_dfl_wq (system_unbound_wq stays for a transition)."""
    gen = _generator_with(fakenet, tmp_path, "include/linux/workqueue.h",
                          "extern struct workqueue_struct *system_unbound_wq;\n"
                          "extern struct workqueue_struct *system_dfl_wq;\n")
    assert "queue_work(system_dfl_wq, &nf_hook_bpf_work);" in gen


def test_one_object_is_allocated_the_way_the_tree_wants(fakenet: Path, tmp_path: Path) -> None:
    """7.2's checkpatch warns "Prefer kmalloc_obj over kmalloc with sizeof"
    (patchgen check on the 7.2 series: patch 6 had 0/3/0, two of them this)."""
    gen = _generator_with(fakenet, tmp_path, "include/linux/slab.h",
                          "#define kmalloc_obj(VAR_OR_TYPE, ...) \\\n"
                          "\t__alloc_objs(kmalloc, default_gfp(__VA_ARGS__), "
                          "typeof(VAR_OR_TYPE), 1)\n")
    assert "kmalloc(sizeof" not in gen
    attach = _function(gen, "void nf_hook_bpf_attach(struct nf_hook_entries *e)\n")
    detach = _function(gen, "void nf_hook_bpf_detach(struct nf_hook_entries *e)\n")
    assert "c = kmalloc_obj(*c, GFP_KERNEL_ACCOUNT);" in attach
    assert "c = kmalloc_obj(*c, GFP_KERNEL_ACCOUNT | __GFP_NOFAIL);" in detach


def _grown_structs(old: str, new: str) -> set[str]:
    """Structs of a header that have more member lines in ``new``."""
    def members(text: str) -> dict[str, int]:
        out: dict[str, int] = {}
        name = None
        for line in text.splitlines():
            m = re.match(r"struct (\w+) \{$", line)
            if m:
                name = m[1]
                out[name] = 0
            elif line.startswith("};"):
                name = None
            elif name and re.match(r"\t[\w \t]+[\s*]\**\w+(\[\w*\])?;$", line):
                out[name] += 1
        return out
    before, after = members(old), members(new)
    return {s for s, n in after.items() if s in before and n > before[s]}


def test_a_patch_that_grows_a_struct_says_so(fakenet: Path, tmp_path: Path) -> None:
    """A maintainer wants to know what a change costs every packet: a patch
    that adds members to a struct of a header names it and says whether
    (and by how much) it grows."""
    plan = plan_for(fakenet, tmp_path / "cache")
    grown = {}
    for p in plan.patches:
        structs = set()
        for c in p.changes:
            if c.path.endswith(".h") and c.old is not None:
                structs |= _grown_structs(c.old, c.new)
        for struct in structs:
            grown[(p.spec.number, struct)] = (f"struct {struct}" in p.message
                                              and "grow" in p.message)
    assert (4, "nf_hook_state") in grown  # the miniature tree has it
    assert all(grown.values()), grown


def test_blobs_no_program_runs_get_none_from_the_generator_patch_on(fakenet: Path,
                                                                     tmp_path: Path) -> None:
    """The NAT lookup blobs (nf_hook_entries_delete_raw()) are never run by
    a program; the generator patch must not build them one that the next
    patch then quietly stops building.  That patch only adds check_net()."""
    plan = plan_for(fakenet, tmp_path / "cache")
    core = "net/netfilter/core.c"
    gen = next(c for c in plan.patches[5].changes if c.path == core).new
    raw = gen[gen.index("void nf_hook_entries_delete_raw("):]
    raw = raw[:raw.index("\n}\n")]
    assert "__nf_hook_entries_try_shrink(p, pp, false);" in raw
    dying = next(c for c in plan.patches[6].changes if c.path == core)
    removed = [line for line in difflib.unified_diff(
        (dying.old or "").splitlines(), dying.new.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert removed == ["-\tp = __nf_hook_entries_try_shrink(p, pp, true);",
                       "+\tp = __nf_hook_entries_try_shrink(p, pp, check_net(net));"]


def test_the_inline_dispatch_reads_the_program_only_when_switched_on(fakenet: Path,
                                                                     tmp_path: Path) -> None:
    """nf_hook_entries_run() is inlined into every NF_HOOK(): with the
    switch at 0 (its static key off) it must not load e->hook_prog first."""
    plan = plan_for(fakenet, tmp_path / "cache")
    header = next(c.new for c in plan.patches[5].changes
                  if c.path == "include/linux/netfilter.h")
    body = header[header.index("static __always_inline int nf_hook_entries_run("):]
    body = body[:body.index("\n}\n")]
    assert body.index("static_branch_likely(&nf_hook_bpf_enabled)") < \
        body.index("READ_ONCE(e->hook_prog)")


def test_the_sysctl_documentation_says_where_an_admin_sees_the_programs(
        fakenet: Path, tmp_path: Path) -> None:
    """An administrator reads this page, not the commit messages: how the
    programs show up (bpftool) and which limit they count against."""
    plan = plan_for(fakenet, tmp_path / "cache", upto=6)
    doc = next(c for c in plan.patches[5].changes if c.path.endswith(".rst"))
    text = " ".join(doc.new.split())
    assert "bpftool prog show" in text and "nf_hook_<number of hooks>" in text
    assert "net.core.bpf_jit_limit" in text

"""The series is data: what the generic stages need to know about it comes
from templates/series.toml, not from their code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from patchgen.series import generate

ROOT = Path(__file__).parent.parent.parent
# Stages and commands that run any series: build, test, check, boot, bench, prep.
GENERIC = ("stages.py", "commands/build.py", "commands/check.py", "commands/test.py",
           "commands/boot.py", "commands/bench.py", "commands/prep.py", "check.py", "bench.py",
           "prep.py", "kselftest.py", "report.py")


def test_runtime_particulars_come_from_the_spec() -> None:
    runtime = generate.load_spec(ROOT / "templates").runtime
    assert runtime.switch == "net.netfilter.nf_hook_bpf"
    assert runtime.switch_name == "nf_hook_bpf"
    assert runtime.switch_file == "/proc/sys/net/netfilter/nf_hook_bpf"
    assert runtime.generator == "net/netfilter/nf_hook_bpf.c"
    assert runtime.kconfig == "NF_HOOK_BPF"
    assert (ROOT / "selftests" / "guest" / runtime.checks).is_file()
    assert (ROOT / "templates" / "selftest" / runtime.selftest).is_file()
    assert (ROOT / "templates" / "selftest" / f"{runtime.helper}.c").is_file()
    assert runtime.helper_env in (ROOT / "templates" / "selftest" / runtime.selftest).read_text()
    # The guest checks' module: its source, its Kbuild, and the variable
    # the checks read it from.
    module = ROOT / "selftests" / "guest" / "module"
    assert (module / f"{runtime.checks_module}.c").is_file()
    assert f"obj-m += {runtime.checks_module}.o" in (module / "Kbuild").read_text()
    checks = (ROOT / "selftests" / "guest" / runtime.checks).read_text()
    assert f"${{{runtime.checks_module_env}:-}}" in checks
    assert f"rmmod {runtime.checks_module}" in checks


def test_the_guest_checks_get_the_module_they_unload(tmp_path: Path) -> None:
    from patchgen import stages
    from patchgen.settings import Settings

    runtime = generate.load_spec(ROOT / "templates").runtime
    settings = Settings(cache=tmp_path, jobs=1)
    ko = tmp_path / f"{runtime.checks_module}.ko"
    checks = stages.guest_scripts(settings, runtime, True, module=ko)[0]
    assert checks.env[runtime.checks_module_env] == str(ko)
    assert runtime.checks_module_env not in stages.guest_scripts(settings, runtime, True)[0].env


def _code_strings(path: Path) -> list[str]:
    """String constants of a module, docstrings left out (they may explain)."""
    tree = ast.parse(path.read_text())
    docs = {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
            and isinstance(node.body[0], ast.Expr)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docs]


@pytest.mark.parametrize("module", GENERIC)
def test_generic_stages_name_no_particular_of_the_series(module: str) -> None:
    strings = _code_strings(ROOT / "patchgen" / module)
    assert [s for s in strings if "nf_hook_bpf" in s.lower()] == []


def test_a_spec_without_runtime_is_refused(tmp_path: Path) -> None:
    text = (ROOT / "templates" / "series.toml").read_text()
    (tmp_path / "series.toml").write_text(text.split("\n[runtime]\n")[0])
    with pytest.raises(ValueError, match=r"series.toml: no \[runtime\] table"):
        generate.load_spec(tmp_path)


def test_the_templates_declare_what_the_spec_names() -> None:
    """The Kconfig entry and the sysctl table are C in templates; they must
    say what the stages look for."""
    runtime = generate.load_spec(ROOT / "templates").runtime
    kconfig = (ROOT / "templates" / "c" / "Kconfig-nf_hook_bpf.j2").read_text()
    assert kconfig.startswith(f"config {runtime.kconfig}\n")
    generator = (ROOT / "templates" / "c" / "nf_hook_bpf.c.j2").read_text()
    assert f'.procname\t= "{runtime.switch_name}"' in generator
    assert 'register_net_sysctl(&init_net, "net/netfilter"' in generator
    assert runtime.switch.startswith("net.netfilter.")


def test_a_module_that_does_not_build_fails_its_case_not_the_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build failure of the checks' module ended test (and made check
    --boot and bisect call the commit not built): it is not the kernel's."""
    import io

    from patchgen import build as kbuild
    from patchgen import stages
    from patchgen import tree as trees
    from patchgen.build import BuildResult
    from patchgen.errors import BuildFailure
    from patchgen.progress import Progress
    from patchgen.settings import Settings

    def fails(*_: object) -> Path:
        raise BuildFailure("module nf_hook_unload did not build", hint="log: x.log")

    monkeypatch.setattr(kbuild, "build_module", fails)
    monkeypatch.setattr(trees, "worktree", lambda *_: tmp_path)
    runtime = generate.load_spec(ROOT / "templates").runtime
    out = io.StringIO()
    built = BuildResult(tmp_path, tmp_path / "bzImage", "abc", "d", 1.0, 0, False, tmp_path / "l")
    ko = stages.build_checks_module(object(), built, runtime,  # type: ignore[arg-type]
                                    Settings(cache=tmp_path, jobs=1), Progress(stream=out),
                                    tmp_path)
    assert ko == tmp_path / "checks-module" / f"{runtime.checks_module}.ko"
    assert "did not build (log: x.log)" in out.getvalue()

"""Golden command lines: make, vng, the KVM probe, the kernel command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchgen.build import BuildResult, make_argv
from patchgen.kconfig import merge_config_argv
from patchgen.kselftest import TestPlan, guest_test_argv, guest_test_env, install_argv
from patchgen.settings import PROJECT_ROOT, Settings
from patchgen.stages import guest_spec
from patchgen.tree import apt_argv, apt_sources_line
from patchgen.vm.accel import Accel, AccelDecision, kvm_probe_argv
from patchgen.vm.argv import MAX_APPEND, GuestSpec, kernel_cmdline, qemu_opts, vng_argv


def test_make_argv() -> None:
    argv = make_argv(Path("/src"), Path("/out"), ["bzImage"], jobs=2, make_vars={"W": "1"})
    assert argv == ["make", "-C", "/src", "O=/out", "ARCH=x86_64", "-j2", "W=1", "bzImage"]


def test_make_argv_sorts_variables_for_stable_reproducers() -> None:
    a = make_argv(Path("/s"), Path("/o"), ["x"], jobs=1, make_vars={"W": "1", "C": "1"})
    assert a[-3:] == ["C=1", "W=1", "x"]


def test_kselftest_install_argv() -> None:
    assert install_argv(Path("/s"), Path("/o"), "net/netfilter", 2) == [
        "make", "-C", "/s", "O=/o", "ARCH=x86_64", "-j2", "TARGETS=net/netfilter",
        "kselftest-install"]


def test_merge_config_argv_uses_allnoconfig() -> None:
    argv = merge_config_argv(Path("/s"), Path("/o"), [Path("/k/a.config"), Path("/k/b.config")])
    assert argv == ["/s/scripts/kconfig/merge_config.sh", "-n", "-O", "/o",
                    "/k/a.config", "/k/b.config"]


def _value(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_vng_argv_tcg() -> None:
    """What matters of the vng line: the kernel, the SSH port, the guest's size,
    single-threaded TCG, panics that stop the guest, the caller's appends last,
    and patchgen's init as the command."""
    spec = GuestSpec(Path("/o/bzImage"), Accel.TCG, 2222, Path("/p/init.sh"), "2G", 2,
                     ("foo=1",))
    argv = vng_argv(spec)
    assert argv[:3] == ["vng", "--run", "/o/bzImage"]
    assert (_value(argv, "--ssh"), _value(argv, "--memory"), _value(argv, "--cpus")) == \
        ("2222", "2G", "2")
    assert "--disable-kvm" in argv and "--qemu-opts=-accel tcg,thread=single" in argv
    # The root over 9p at once: vng's virtiofsd probe costs 3.1 s per boot here.
    assert "--force-9p" in argv
    appended = [argv[i + 1] for i, a in enumerate(argv) if a == "--append"]
    assert {"oops=panic", "hung_task_panic=1", "softlockup_panic=1"} <= set(appended)
    assert appended[-1] == "foo=1"
    assert argv[-2:] == ["--exec", "/p/init.sh"]


def test_vng_argv_names_the_build_dir_for_the_guest_init() -> None:
    spec = GuestSpec(Path("/o/arch/x86/boot/bzImage"), Accel.TCG, 2222, Path("/p/init.sh"),
                     build_dir=Path("/o"), append=("foo=1",))
    argv = vng_argv(spec)
    appended = [argv[i + 1] for i, a in enumerate(argv) if a == "--append"]
    assert appended[-2:] == ["patchgen.build_dir=/o", "foo=1"]


def test_vng_argv_kvm_has_no_disable_flag() -> None:
    spec = GuestSpec(Path("/b"), Accel.KVM, 1, Path("/i"))
    argv = vng_argv(spec)
    assert "--disable-kvm" not in argv
    assert not [a for a in argv if a.startswith("--qemu-opts")]


def test_kernel_cmdline_length_guard() -> None:
    with pytest.raises(ValueError, match="too long"):
        kernel_cmdline(["x" * MAX_APPEND])


def test_kvm_probe_uses_the_cpu_model_vng_uses_with_kvm() -> None:
    argv = kvm_probe_argv("qemu-system-x86_64", Path("/b"))
    assert argv[:5] == ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host"]
    assert "-no-reboot" in argv
    assert argv[-1] == "console=ttyS0 earlyprintk=serial panic=-1"


def test_apt_argv_keeps_system_sources_alone() -> None:
    argv = apt_argv(Path("/c/apt"), "download", "linux-source-6.12")
    assert "Dir::Etc::SourceList=/c/apt/sources.list" in argv
    assert "Dir::Etc::SourceParts=/nonexistent" in argv
    assert argv[-2:] == ["download", "linux-source-6.12"]
    assert apt_sources_line(("bookworm-backports",), "http://m/debian") == \
        "deb http://m/debian bookworm-backports main\n"


def test_guest_test_argv() -> None:
    plan = TestPlan("bridge_brouter.sh", 300, {}, {"ebtables": "/usr/sbin/ebtables-legacy"})
    argv = guest_test_argv("netfilter", plan)
    assert argv[:2] == ["sh", "-c"]
    assert argv[2] == (
        "echo timeout=300 > /tmp/patchgen-ksft/netfilter/settings"
        " && mkdir -p /run/patchgen/tools"
        " && ln -sf /usr/sbin/ebtables-legacy /run/patchgen/tools/ebtables"
        " && cd /tmp/patchgen-ksft && ./run_kselftest.sh -t netfilter:bridge_brouter.sh 2>&1"
        " | cat")


def test_tcg_guest_tells_the_selftests_it_is_a_slow_machine() -> None:
    plan = TestPlan("br_netfilter.sh", 300)
    assert guest_test_env(plan, Accel.TCG) == {"KSFT_MACHINE_SLOW": "yes"}
    assert guest_test_env(plan, Accel.KVM) == {}


def test_a_tests_own_env_and_tools_come_on_top() -> None:
    plan = TestPlan("x.sh", 300, {"KSFT_MACHINE_SLOW": "no", "quicktest": "1"},
                    {"ebtables": "/usr/sbin/ebtables-legacy"})
    env = guest_test_env(plan, Accel.TCG)
    assert env["KSFT_MACHINE_SLOW"] == "no" and env["quicktest"] == "1"
    assert env["PATH"].startswith("/run/patchgen/tools:")


def test_every_stage_boots_the_build_with_patchgen_s_guest_init(tmp_path: Path) -> None:
    built = BuildResult(Path("/o"), Path("/o/arch/x86/boot/bzImage"), "c0ffee", "d", 1.0, 0,
                        True, Path("/o/build.log"))
    spec = guest_spec(built, AccelDecision(Accel.TCG, "test"), Settings(tmp_path, 2), "3G", 1,
                      ("mitigations=off",))
    assert spec.init_script == PROJECT_ROOT / "selftests/guest/patchgen-guest-init.sh"
    assert spec.init_script.exists()
    assert (spec.kernel, spec.build_dir, spec.accel) == (built.image, built.outdir, Accel.TCG)
    assert (spec.memory, spec.cpus, spec.append) == ("3G", 1, ("mitigations=off",))
    assert 0 < spec.ssh_port < 65536


def test_an_icount_guest_counts_instructions_on_one_host_thread() -> None:
    # -icount needs single-threaded TCG; shift=0: one virtual ns per
    # instruction; sleep=off: an idle vCPU does not wait for the host clock.
    spec = GuestSpec(Path("/b"), Accel.TCG, 1, Path("/i"), cpus=1, icount=True)
    assert "--qemu-opts=-accel tcg,thread=single -icount shift=0,sleep=off" in vng_argv(spec)
    assert qemu_opts(Accel.TCG, icount=True) == \
        "-accel tcg,thread=single -icount shift=0,sleep=off"
    assert qemu_opts(Accel.TCG) == "-accel tcg,thread=single"


def test_icount_is_a_tcg_thing() -> None:
    with pytest.raises(ValueError, match="TCG"):
        qemu_opts(Accel.KVM, icount=True)

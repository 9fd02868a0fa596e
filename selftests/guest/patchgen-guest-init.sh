#!/bin/sh
# Runs inside the guest as vng's --exec command, after virtme-ng-init has
# started sshd.  It prepares the guest for being driven over SSH and then
# stays alive (the guest lives as long as this script does).
#
# The guest's root file system is the host's, read-only; everything here
# changes only the guest's own view of it.

# Under TCG every program started here costs tens of milliseconds of the
# boot (the guest waits for this script): shell built-ins where they do.
read -r kver < /proc/sys/kernel/osrelease

# The host's ~/.bashrc (pyenv init and friends) runs for every SSH command
# and every bash script a test starts, costing seconds each under TCG.
# Mask it in the guest only.
: > /run/patchgen-empty
for rc in /root/.bashrc /root/.bash_profile /root/.profile; do
	[ -f "$rc" ] && mount --bind /run/patchgen-empty "$rc"
done

# virtme-ng points /dev/stdout and friends at its virtio script ports;
# programs run over SSH (the kselftest runner writes each test's output to
# /dev/stdout) must reach their own stdout instead.
for i in 0:stdin 1:stdout 2:stderr; do
	ln -sfn "/proc/self/fd/${i%%:*}" "/dev/${i#*:}"
done

# Selftests ask "modprobe -q sctp" before using sctp (7.x trees skip
# conntrack_sctp_collision.sh when it fails).  Our kernel has no modules,
# everything is built in, but modprobe only knows that from
# /lib/modules/$(uname -r), which the host's /lib (a writable overlay here)
# does not have for this kernel: list the build's built-ins there.
build_dir=
read -r cmdline < /proc/cmdline
set -f  # split the command line into words, expand no patterns
for arg in $cmdline; do
	case $arg in patchgen.build_dir=*) build_dir=${arg#*=} ;; esac
done
set +f
kmods=/lib/modules/$kver
if [ -n "$build_dir" ] && [ -r "$build_dir/modules.builtin" ] && [ ! -e "$kmods/modules.builtin" ]; then
	if ! { mkdir -p "$kmods" &&
		cp "$build_dir/modules.builtin" "$build_dir/modules.builtin.modinfo" "$kmods/" &&
		depmod -a 2>/dev/null; }; then
		echo "patchgen: could not list the built-in modules; modprobe will not know them" >&2
	fi
fi

# IPv6 duplicate address detection stays on, as on any kernel the selftests
# normally see: turning it off in every namespace (tried, to stop
# nft_conntrack_helper.sh connecting to a still-tentative address under
# TCG) made nft_fib.sh fail: its rpfilter rule then dropped the link-local
# MLD reports and router solicitations a new interface sends, which the test
# counts as a failure.  That flake is a retry with a 120 s limit instead.

echo "patchgen-guest-ready $kver" > /dev/kmsg
echo "patchgen-guest-ready $kver"
exec sleep infinity

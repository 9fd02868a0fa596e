#!/bin/sh
# Runs inside the guest as vng's --exec command, after virtme-ng-init has
# started sshd.  It prepares the guest for being driven over SSH and then
# stays alive (the guest lives as long as this script does).
#
# The guest's root file system is the host's, read-only; everything here
# changes only the guest's own view of it.

mkdir -p /run/patchgen

# The host's ~/.bashrc (pyenv init and friends) runs for every SSH command
# and every bash script a test starts, costing seconds each under TCG.
# Mask it in the guest only.
: > /run/patchgen/empty
for rc in /root/.bashrc /root/.bash_profile /root/.profile; do
	[ -f "$rc" ] && mount --bind /run/patchgen/empty "$rc"
done

# virtme-ng points /dev/stdout and friends at its virtio script ports;
# programs run over SSH (the kselftest runner writes each test's output to
# /dev/stdout) must reach their own stdout instead.
for i in 0:stdin 1:stdout 2:stderr; do
	ln -sfn "/proc/self/fd/${i%%:*}" "/dev/${i#*:}"
done

echo "patchgen-guest-ready $(uname -r)" > /dev/kmsg
echo "patchgen-guest-ready $(uname -r)"
exec sleep infinity

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

# IPv6 duplicate address detection keeps a new address "tentative" for a
# second or more under TCG; several netfilter selftests connect right after
# adding one (nft_conntrack_helper.sh: a "nc -l" that then waits forever, a
# 300 s timeout).  DAD is not what they test: new namespaces inherit
# accept_dad=0 from here.
sysctl -qw net.core.devconf_inherit_init_net=1
sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0

echo "patchgen-guest-ready $(uname -r)" > /dev/kmsg
echo "patchgen-guest-ready $(uname -r)"
exec sleep infinity

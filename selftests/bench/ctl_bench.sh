#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Control-plane cost in the guest, printed as "CTL key=value ..." lines:
#
#   what=netns count=<n>   NETNS network namespaces are created one by one,
#                          each with an iptables filter table and conntrack
#                          (one rule matching on conntrack state); at 1, 10
#                          and NETNS namespaces the generated programs are
#                          counted with their memory: namespaces with the
#                          same hooks must share one program per location.
#                          ns: guest time to create them all so far.
#   what=netns_destroy     guest time to delete them all again.
#   what=nft_chains        one nft transaction that adds CHAINS base chains
#                          at one hook, and the programs afterwards.
#
# Times are the guest's clock: under QEMU's instruction counter that is
# executed instructions plus idle time skipped.
#
# Usage: ctl_bench.sh   env: NETNS (100), CHAINS (50)

set -u
NETNS=${NETNS:-100}
CHAINS=${CHAINS:-50}
IPT=iptables
command -v iptables-legacy >/dev/null && IPT=iptables-legacy

now() { date +%s%N; }

. "$(dirname "$0")/../lib/nf_progs.sh"

# "programs=<n> prog_bytes=<memlock bytes>" of the generated programs
# (named nf_hook_<hooks>), from bpftool's JSON.
programs() {
	bpftool -j prog show 2>/dev/null | python3 -c '
import json, sys
progs = [p for p in json.load(sys.stdin) if p.get("name", "").startswith("nf_hook_")]
print("programs=%d prog_bytes=%d" % (len(progs), sum(p.get("bytes_memlock", 0) for p in progs)))'
}

# One row: the time since t0, then the settled programs; the wait for
# them is not counted (t0 moves past it).
row() {
	local el=$(($(now) - t0)) t1

	t1=$(now)
	echo "CTL what=$1 count=$2 $(settled programs) ns=$el"
	t0=$((t0 + $(now) - t1))
}

cleanup() {
	for i in $(seq 1 "$NETNS"); do ip netns del "ctl$i" 2>/dev/null; done
	ip netns del ctlnft 2>/dev/null
}
trap cleanup EXIT

command -v bpftool >/dev/null || { echo "bpftool is missing" >&2; exit 4; }
cleanup
before=$(settled programs)
echo "CTL what=before count=0 $before ns=0"

t0=$(now)
for i in $(seq 1 "$NETNS"); do
	ip netns add "ctl$i" || exit 3
	ip netns exec "ctl$i" $IPT -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED \
		-j ACCEPT || exit 3
	case $i in
	1 | 10 | "$NETNS") row netns "$i" ;;
	esac
done
t0=$(now)
for i in $(seq 1 "$NETNS"); do ip netns del "ctl$i"; done
# Namespaces are dismantled by a worker: wait until their programs are gone.
for _ in $(seq 1 600); do
	[ "$(programs)" = "$before" ] && break
	sleep 0.1
done
echo "CTL what=netns_destroy count=$NETNS $(programs) ns=$(($(now) - t0))"

ip netns add ctlnft
{
	echo "table inet ctl {"
	for i in $(seq 1 "$CHAINS"); do
		echo "  chain c$i { type filter hook forward priority $i; }"
	done
	echo "}"
} > /tmp/ctl_bench.nft
t0=$(now)
ip netns exec ctlnft nft -f /tmp/ctl_bench.nft || exit 3
row nft_chains "$CHAINS"
t0=$(now)
ip netns exec ctlnft nft delete table inet ctl || exit 3
row nft_chains_delete "$CHAINS"

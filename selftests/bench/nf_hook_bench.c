// SPDX-License-Identifier: GPL-2.0
/*
 * Time nf_hook() itself: register @hooks accepting hooks at IPv4 FORWARD
 * of init_net (nothing else forwards in the benchmark guest), then call
 * nf_hook() @iters times on one skb and report the mean cost per call.
 * Which dispatch path runs is whatever net.netfilter.nf_hook_bpf says.
 *
 * Loading runs the measurement and prints one line; the module then
 * refuses to stay loaded (-EAGAIN), so the next round is a fresh insmod.
 */
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/netdevice.h>
#include <linux/netfilter.h>
#include <linux/skbuff.h>
#include <net/net_namespace.h>

static unsigned int hooks = 1;
module_param(hooks, uint, 0444);
static unsigned int iters = 200000;
module_param(iters, uint, 0444);

#define MAX_BENCH_HOOKS	20

static unsigned int bench_accept(const struct nf_hook_state *state)
{
	return NF_ACCEPT;
}

static int bench_okfn(struct net *net, struct sock *sk, struct sk_buff *skb)
{
	return 0;
}

static struct nf_hook_ops ops[MAX_BENCH_HOOKS];

static int __init nf_hook_bench_init(void)
{
	struct net_device *dev = init_net.loopback_dev;
	struct sk_buff *skb;
	unsigned int i, passed = 0;
	u64 start, ns;
	int err;

	if (hooks == 0 || hooks > MAX_BENCH_HOOKS)
		return -EINVAL;

	for (i = 0; i < hooks; i++) {
		ops[i].hook = bench_accept;
		ops[i].pf = NFPROTO_IPV4;
		ops[i].hooknum = NF_INET_FORWARD;
		ops[i].priority = 100 + i;
	}
	err = nf_register_net_hooks(&init_net, ops, hooks);
	if (err)
		return err;

	skb = alloc_skb(128, GFP_KERNEL);
	if (!skb) {
		nf_unregister_net_hooks(&init_net, ops, hooks);
		return -ENOMEM;
	}
	skb->dev = dev;

	local_bh_disable();
	start = ktime_get_ns();
	for (i = 0; i < iters; i++)
		passed += nf_hook(NFPROTO_IPV4, NF_INET_FORWARD, &init_net, NULL, skb,
				  dev, dev, bench_okfn) == 1;
	ns = ktime_get_ns() - start;
	local_bh_enable();

	kfree_skb(skb);
	nf_unregister_net_hooks(&init_net, ops, hooks);
	pr_info("nf_hook_bench: hooks=%u iters=%u passed=%u total_ns=%llu\n",
		hooks, iters, passed, ns);
	return -EAGAIN;
}
module_init(nf_hook_bench_init);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("patchgen: cost of nf_hook() per call");

// SPDX-License-Identifier: GPL-2.0
/*
 * Hook functions that live in a module, for the runtime check
 * module_unload: in every network namespace, accepting hooks at the IPv4
 * locations a ping crosses, so that the programs generated for those
 * locations call into this module's text directly.  Unloading the module
 * unregisters them in every namespace (pernet exit); from then on no
 * program may call into it, whether the packets run the programs or
 * nf_hook_slow().
 *
 * The hooks count their calls; the module prints the count when it goes,
 * so that the check knows they ran.
 */
#include <linux/atomic.h>
#include <linux/module.h>
#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <net/net_namespace.h>

/* The series gives hook functions one argument (the state); the base
 * kernel passes three.  Built against both, like the benchmark module.
 */
#define HOOK_ONE_ARG \
	__builtin_types_compatible_p(nf_hookfn, unsigned int (const struct nf_hook_state *))

static atomic_long_t calls;

static unsigned int __maybe_unused unload_accept_1(const struct nf_hook_state *state)
{
	atomic_long_inc(&calls);
	return NF_ACCEPT;
}

static unsigned int __maybe_unused unload_accept_3(void *priv, struct sk_buff *skb,
						   const struct nf_hook_state *state)
{
	atomic_long_inc(&calls);
	return NF_ACCEPT;
}

#define UNLOAD_HOOK(h, prio) {							\
	.hook = __builtin_choose_expr(HOOK_ONE_ARG, unload_accept_1,		\
				      unload_accept_3),				\
	.pf = NFPROTO_IPV4,							\
	.hooknum = (h),								\
	.priority = (prio),							\
}

/* Two at LOCAL_OUT: a program with more than one call into the module. */
static const struct nf_hook_ops unload_ops[] = {
	UNLOAD_HOOK(NF_INET_PRE_ROUTING, -7),
	UNLOAD_HOOK(NF_INET_LOCAL_IN, -7),
	UNLOAD_HOOK(NF_INET_LOCAL_OUT, -7),
	UNLOAD_HOOK(NF_INET_LOCAL_OUT, 7),
	UNLOAD_HOOK(NF_INET_POST_ROUTING, -7),
};

static int __net_init unload_net_init(struct net *net)
{
	return nf_register_net_hooks(net, unload_ops, ARRAY_SIZE(unload_ops));
}

static void __net_exit unload_net_exit(struct net *net)
{
	nf_unregister_net_hooks(net, unload_ops, ARRAY_SIZE(unload_ops));
}

static struct pernet_operations unload_net_ops = {
	.init = unload_net_init,
	.exit = unload_net_exit,
};

static int __init nf_hook_unload_init(void)
{
	return register_pernet_subsys(&unload_net_ops);
}

static void __exit nf_hook_unload_exit(void)
{
	unregister_pernet_subsys(&unload_net_ops);
	pr_info("nf_hook_unload: calls=%ld\n", atomic_long_read(&calls));
}

module_init(nf_hook_unload_init);
module_exit(nf_hook_unload_exit);
MODULE_DESCRIPTION("netfilter hooks in a module, for the unload check");
MODULE_LICENSE("GPL");

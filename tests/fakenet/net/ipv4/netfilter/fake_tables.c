// SPDX-License-Identifier: GPL-2.0
#include <linux/netfilter.h>
#include <net/netfilter/nf_table_hooks.h>

unsigned int fake_do_table(void *priv,
			   struct sk_buff *skb,
			   const struct nf_hook_state *state)
{
	const struct xt_table *table = priv;
	unsigned int hook = state->hook;

	if (skb->len < 20)
		return NF_DROP;
	pr_debug("table %s at %u: %d bytes\n", table->name, hook, skb->len);
	return NF_ACCEPT;
}
EXPORT_SYMBOL(fake_do_table);

static int __net_init fake_table_init(struct net *net, struct xt_table *table)
{
	table->ops = xt_hook_ops_alloc(table, fake_do_table);
	return 0;
}

static const struct nft_chain_type fake_chain = {
	.hooks		= {
		[NF_INET_LOCAL_IN]	= fake_ipv6_hook,
	},
};

/* Looks like a hook, but nothing registers or calls it from a hook. */
static unsigned int lonely_helper(void *priv, struct sk_buff *skb,
				  const struct nf_hook_state *state)
{
	return NF_ACCEPT;
}

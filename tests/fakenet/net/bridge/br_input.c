// SPDX-License-Identifier: GPL-2.0
#include <linux/netfilter.h>
#include <net/netfilter/nf_queue.h>

static int nf_hook_bridge_pre(struct sk_buff *skb, struct nf_hook_entries *e)
{
	struct nf_hook_state state;
	unsigned int verdict, i;
	int ret;

	nf_hook_state_init(&state, NF_BR_PRE_ROUTING, NFPROTO_BRIDGE, NULL);
	for (i = 0; i < e->num_hook_entries; i++) {
		verdict = nf_hook_entry_hookfn(&e->hooks[i], skb, &state);
		switch (verdict & NF_VERDICT_MASK) {
		case NF_QUEUE:
			ret = nf_queue(skb, &state, i, verdict);
			if (ret == 1)
				continue;
			return 0;
		}
	}
	return 1;
}

int br_nf_hook_thresh(unsigned int hook, struct net *net, struct sk_buff *skb,
		      struct nf_hook_entries *e, unsigned int i)
{
	struct nf_hook_state state;

	nf_hook_state_init(&state, hook, NFPROTO_BRIDGE, net);

	return nf_hook_slow(skb, &state, e, i);
}

/* An own state handed to a hook called directly. */
static unsigned int fake_broute(void *priv, struct sk_buff *skb,
				const struct nf_hook_state *s)
{
	struct nf_hook_state state;
	int ret;

	nf_hook_state_init(&state, NF_BR_BROUTING, NFPROTO_BRIDGE, s->net);
	ret = fake_do_table(priv, skb, &state);
	if (ret != NF_DROP)
		return ret;
	return fake_ipv6_hook(priv, skb, s) == NF_ACCEPT && skb->len > 10 ? NF_ACCEPT : NF_DROP;
}

static struct nf_hook_ops broute_ops = {
	.hook		= fake_broute,
};

// SPDX-License-Identifier: GPL-2.0
#include <linux/netfilter.h>

unsigned int
nf_nat_inet_fn(void *priv, struct sk_buff *skb,
	       const struct nf_hook_state *state)
{
	enum nf_nat_manip_type maniptype = HOOK2MANIP(state->hook);
	struct nf_conn *ct = nf_ct_get(skb);

	switch (ct->state) {
	case IP_CT_NEW:
		if (!nf_nat_initialized(ct, maniptype)) {
			struct nf_nat_lookup_hook_priv *lpriv = priv;
			struct nf_hook_entries *e = rcu_dereference(lpriv->entries);
			unsigned int ret;
			int i;

			if (!e)
				goto null_bind;

			for (i = 0; i < e->num_hook_entries; i++) {
				ret = e->hooks[i].hook(e->hooks[i].priv, skb,
						       state);
				if (ret != NF_ACCEPT)
					return ret;
				if (nf_nat_initialized(ct, maniptype))
					goto do_nat;
			}
null_bind:
			ret = nf_nat_alloc_null_binding(ct, state->hook);
			if (ret != NF_ACCEPT)
				return ret;
		}
		break;
	default:
		break;
	}
do_nat:
	return nf_nat_packet(ct, state->hook, skb);
}
EXPORT_SYMBOL_GPL(nf_nat_inet_fn);

static unsigned int nf_nat_ipv4_fn(void *priv, struct sk_buff *skb,
				   const struct nf_hook_state *state)
{
	if (!skb)
		return NF_DROP;
	return nf_nat_inet_fn(priv, skb, state);
}

static unsigned int nf_nat_ipv4_out(void *priv, struct sk_buff *skb,
				    const struct nf_hook_state *state)
{
#ifdef CONFIG_XFRM
	const struct nf_conn *ct;
	enum ip_conntrack_info ctinfo;
	int err;
#endif
	unsigned int ret;

	ret = nf_nat_ipv4_fn(priv, skb, state);
#ifdef CONFIG_XFRM
	if (ret != NF_ACCEPT)
		return ret;

	if (IPCB(skb)->flags & IPSKB_XFRM_TRANSFORMED)
		return ret;

	ct = nf_ct_get(skb, &ctinfo);
	if (ct) {
		if (ct->status & IPS_SRC_NAT) {
			err = nf_xfrm_me_harder(state->net, skb, AF_INET);
			if (err < 0)
				ret = NF_DROP_ERR(err);
		}
	}
#endif
	return ret;
}

static const struct nf_hook_ops nf_nat_ipv4_ops[] = {
	{
		.hook		= nf_nat_ipv4_out,
		.pf		= NFPROTO_IPV4,
	},
	{
		.hook =	nf_nat_ipv4_fn,
		.pf		= NFPROTO_IPV4,
	},
};

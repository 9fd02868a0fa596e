/* SPDX-License-Identifier: GPL-2.0 */
extern unsigned int fake_do_table(void *priv,
				  struct sk_buff *skb,
				  const struct nf_hook_state *state);

#if IS_ENABLED(CONFIG_FAKE_IPV6)
unsigned int fake_ipv6_hook(void *priv, struct sk_buff *skb,
			    const struct nf_hook_state *state);
#else
static inline unsigned int
fake_ipv6_hook(void *priv, struct sk_buff *skb,
	       const struct nf_hook_state *state)
{
	return NF_ACCEPT;
}
#endif

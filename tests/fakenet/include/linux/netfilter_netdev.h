/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _NETFILTER_NETDEV_H_
#define _NETFILTER_NETDEV_H_

#include <linux/netfilter.h>

static inline int nf_hook_ingress(struct sk_buff *skb)
{
	struct nf_hook_entries *e = rcu_dereference(skb->dev->nf_hooks_ingress);
	struct nf_hook_state state;
	int ret;

	if (unlikely(!e))
		return 0;

	nf_hook_state_init(&state, NF_NETDEV_INGRESS, NFPROTO_NETDEV, dev_net(skb->dev));
	ret = nf_hook_slow(skb, &state, e, 0);
	if (ret == 0)
		return -1;

	return ret;
}

static inline struct sk_buff *nf_hook_egress(struct sk_buff *skb, int *rc,
					     struct net_device *dev)
{
	struct nf_hook_entries *e = rcu_dereference_check(dev->nf_hooks_egress, rcu_read_lock_bh_held());
	struct nf_hook_state state;
	int ret;

	if (!e)
		return skb;

	nf_hook_state_init(&state, NF_NETDEV_EGRESS, NFPROTO_NETDEV, dev_net(dev));
	rcu_read_lock();
	ret = nf_hook_slow(skb, &state, e, 0);
	rcu_read_unlock();

	return ret == 1 ? skb : NULL;
}

#endif /* _NETFILTER_NETDEV_H_ */

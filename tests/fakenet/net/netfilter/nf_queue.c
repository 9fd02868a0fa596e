// SPDX-License-Identifier: GPL-2.0
#include <net/netfilter/nf_queue.h>

static int __nf_queue(struct sk_buff *skb, const struct nf_hook_state *state,
		      unsigned int index, unsigned int queuenum)
{
	struct nf_queue_entry *entry = kmalloc(sizeof(*entry), GFP_ATOMIC);

	*entry = (struct nf_queue_entry) {
		.skb	= skb,
		.state	= *state,
		.hook_index = index,
	};
	return queue_it(entry, queuenum);
}

int nf_queue(struct sk_buff *skb, struct nf_hook_state *state,
	     unsigned int index, unsigned int verdict)
{
	return __nf_queue(skb, state, index, verdict >> NF_VERDICT_QBITS);
}

void nf_reinject(struct nf_queue_entry *entry, unsigned int verdict)
{
	struct sk_buff *skb = entry->skb;
	unsigned int i;
	int err;

	i = entry->hook_index;
	switch (verdict) {
	case NF_QUEUE:
		err = nf_queue(skb, &entry->state, i, verdict);
		break;
	}
}

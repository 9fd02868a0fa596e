// SPDX-License-Identifier: GPL-2.0
#include <linux/netfilter.h>
#include <net/netfilter/nf_queue.h>

#define MAX_HOOK_COUNT		1024

static unsigned int accept_all(void *priv,
			       struct sk_buff *skb,
			       const struct nf_hook_state *state)
{
	return NF_ACCEPT;
}

static const struct nf_hook_ops dummy_ops = {
	.hook = accept_all,
	.priority = INT_MIN,
};

static void nf_hook_entries_free(struct nf_hook_entries *e)
{
	if (!e)
		return;

	call_rcu(&e->head, __nf_hook_entries_free);
}

/*
 * __nf_hook_entries_try_shrink - try to shrink hook array
 *
 * @old -- current hook blob at @pp
 * @pp -- location of hook blob
 */
static void *__nf_hook_entries_try_shrink(struct nf_hook_entries *old,
					  struct nf_hook_entries __rcu **pp)
{
	struct nf_hook_entries *new = allocate_smaller(old);

	if (!new)
		return NULL;

	hooks_validate(new);
	rcu_assign_pointer(*pp, new);
	return old;
}

static int __nf_register_net_hook(struct net *net, int pf,
				  const struct nf_hook_ops *reg)
{
	struct nf_hook_entries __rcu **pp = nf_hook_entry_head(net, pf, reg->hooknum);
	struct nf_hook_entries *p, *new_hooks;

	mutex_lock(&nf_hook_mutex);
	p = nf_entry_dereference(*pp);
	new_hooks = nf_hook_entries_grow(p, reg);
	if (!IS_ERR(new_hooks)) {
		hooks_validate(new_hooks);
		rcu_assign_pointer(*pp, new_hooks);
	}
	mutex_unlock(&nf_hook_mutex);
	nf_hook_entries_free(p);
	return 0;
}

static bool nf_remove_net_hook(struct nf_hook_entries *old,
			       const struct nf_hook_ops *unreg)
{
	struct nf_hook_ops **orig_ops = nf_hook_entries_get_hook_ops(old);
	unsigned int i;

	for (i = 0; i < old->num_hook_entries; i++) {
		if (orig_ops[i] != unreg)
			continue;
		WRITE_ONCE(old->hooks[i].hook, accept_all);
		WRITE_ONCE(orig_ops[i], (void *)&dummy_ops);
		return true;
	}

	return false;
}

static void __nf_unregister_net_hook(struct net *net, int pf,
				     const struct nf_hook_ops *reg)
{
	struct nf_hook_entries __rcu **pp = nf_hook_entry_head(net, pf, reg->hooknum);
	struct nf_hook_entries *p;

	mutex_lock(&nf_hook_mutex);
	p = nf_entry_dereference(*pp);
	nf_remove_net_hook(p, reg);
	p = __nf_hook_entries_try_shrink(p, pp);
	mutex_unlock(&nf_hook_mutex);
	nf_hook_entries_free(p);
}

void nf_hook_entries_delete_raw(struct nf_hook_entries __rcu **pp,
				const struct nf_hook_ops *reg)
{
	struct nf_hook_entries *p = rcu_dereference_raw(*pp);

	if (nf_remove_net_hook(p, reg)) {
		p = __nf_hook_entries_try_shrink(p, pp);
		nf_hook_entries_free(p);
	}
}

int nf_hook_slow(struct sk_buff *skb, struct nf_hook_state *state,
		 const struct nf_hook_entries *e, unsigned int s)
{
	unsigned int verdict;
	int ret;

	for (; s < e->num_hook_entries; s++) {
		verdict = nf_hook_entry_hookfn(&e->hooks[s], skb, state);
		switch (verdict & NF_VERDICT_MASK) {
		case NF_ACCEPT:
			break;
		case NF_QUEUE:
			ret = nf_queue(skb, state, s, verdict);
			if (ret == 1)
				continue;
			return ret;
		default:
			return 0;
		}
	}

	return 1;
}
EXPORT_SYMBOL(nf_hook_slow);

void nf_hook_slow_list(struct list_head *head, struct nf_hook_state *state,
		       const struct nf_hook_entries *e)
{
	struct sk_buff *skb, *next;
	int ret;

	list_for_each_entry_safe(skb, next, head, list) {
		ret = nf_hook_slow(skb, state, e, 0);
		if (ret == 1)
			list_add_tail(&skb->list, head);
	}
}

int __init netfilter_init(void)
{
	int ret;

	ret = register_pernet_subsys(&netfilter_net_ops);
	return ret;
}

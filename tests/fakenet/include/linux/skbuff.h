/* SPDX-License-Identifier: GPL-2.0-or-later */
void __fix_address
kfree_skb_reason(struct sk_buff *skb, enum skb_drop_reason reason);

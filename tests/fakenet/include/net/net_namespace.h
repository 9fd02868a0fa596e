/* SPDX-License-Identifier: GPL-2.0 */
struct ctl_table_header *register_net_sysctl(struct net *net, const char *path,
					     struct ctl_table *table);

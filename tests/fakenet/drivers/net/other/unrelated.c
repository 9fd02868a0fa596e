// SPDX-License-Identifier: GPL-2.0
/* A driver with a local variable named like netfilter's static hook. */
static int setup(struct dev *d)
{
	bool accept_all = d->promisc;

	return accept_all ? 1 : 0;
}

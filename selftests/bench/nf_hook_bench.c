// SPDX-License-Identifier: GPL-2.0
/*
 * Time nf_hook() itself: register @hooks accepting hooks at IPv4 FORWARD
 * of init_net (nothing else forwards in the benchmark guest), then call
 * nf_hook() @iters times on one skb and report the cost of all calls.
 * Which dispatch path runs is whatever net.netfilter.nf_hook_bpf says.
 *
 * The timed loops run with interrupts off: under QEMU's instruction
 * counter (-icount shift=0) the clock advances one nanosecond per
 * instruction the vCPU executes, an interrupt's included, so only a loop
 * nothing can interrupt gives the same count twice.
 *
 * Every run also prints a calibration: @iters direct calls and @iters
 * calls through a function pointer to the same empty function, and the
 * empty loop.  Indirect minus direct is what one indirect call costs on
 * this kernel (with retpolines: the thunk), the yardstick that turns a
 * difference in counts into a number of indirect calls.
 *
 * @fill creates that many network devices first and gives the netdev
 * ingress hook of each a different sequence of hook functions, so that
 * @fill more programs exist: with more than the nf_hook_base dispatcher
 * holds (BPF_DISPATCHER_MAX), the measured location's program is entered
 * through the dispatcher's fallback, an indirect jump.
 *
 * @ctl measures the control plane instead: @ctl times, register one more
 * hook at the location that holds @hooks, then unregister it, timing each
 * and counting the RCU grace periods that passed meanwhile.
 *
 * Loading runs the measurement and prints its lines; the module then
 * refuses to stay loaded (-EAGAIN), so the next round is a fresh insmod.
 */
#include <linux/etherdevice.h>
#include <linux/kernel_stat.h>
#include <linux/delay.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/netdevice.h>
#include <linux/netfilter.h>
#include <linux/rcupdate.h>
#include <linux/skbuff.h>
#include <net/net_namespace.h>

static unsigned int hooks = 1;
module_param(hooks, uint, 0444);
static unsigned int iters = 200000;
module_param(iters, uint, 0444);
static unsigned int fill;
module_param(fill, uint, 0444);
static unsigned int ctl;
module_param(ctl, uint, 0444);
/* Seconds to wait with every hook registered, before measuring: time to
 * look at the programs from user space (bpftool prog show).
 */
static unsigned int hold;
module_param(hold, uint, 0444);
/* Milliseconds to wait after registering, before measuring: the series
 * puts programs into its BPF dispatcher from a work item (one RCU grace
 * period per change); until then the dispatcher calls them indirectly.
 */
static unsigned int settle = 2000;
module_param(settle, uint, 0444);

#define MAX_BENCH_HOOKS	64
/* Fill sequences: FILL_LEN hooks, each one of two functions: 2^6 programs. */
#define FILL_LEN	6
#define MAX_FILL	(1 << FILL_LEN)

/*
 * The series gives hook functions one argument (the state); the base
 * kernel passes three.  The module builds against both, so that the
 * control plane of the unpatched kernel can be measured too.
 */
#define HOOK_ONE_ARG \
	__builtin_types_compatible_p(nf_hookfn, unsigned int (const struct nf_hook_state *))

#define DEFINE_ACCEPT(name)							\
static unsigned int name##_1(const struct nf_hook_state *state)		\
{										\
	return NF_ACCEPT;							\
}										\
static unsigned int name##_3(void *priv, struct sk_buff *skb,			\
			     const struct nf_hook_state *state)		\
{										\
	return NF_ACCEPT;							\
}
#define ACCEPT_FN(name)	__builtin_choose_expr(HOOK_ONE_ARG, name##_1, name##_3)

DEFINE_ACCEPT(bench_accept)
DEFINE_ACCEPT(fill_a)
DEFINE_ACCEPT(fill_b)

static int bench_okfn(struct net *net, struct sock *sk, struct sk_buff *skb)
{
	return 0;
}

static struct nf_hook_ops ops[MAX_BENCH_HOOKS + 1];
static struct nf_hook_ops fill_ops[MAX_FILL][FILL_LEN];
static struct net_device *fill_dev[MAX_FILL];

/* -- calibration: what a call costs, direct and through a pointer ------- */
static noinline void calib_target(void)
{
	barrier();
}

static void (*calib_ptr)(void) = calib_target;

static void calibrate(void)
{
	void (*fn)(void) = READ_ONCE(calib_ptr);
	unsigned long flags;
	u64 t0, t1, t2, t3;
	unsigned int i;

	local_irq_save(flags);
	t0 = ktime_get_ns();
	for (i = 0; i < iters; i++)
		barrier();
	t1 = ktime_get_ns();
	for (i = 0; i < iters; i++)
		calib_target();
	t2 = ktime_get_ns();
	for (i = 0; i < iters; i++) {
		/* Reload the pointer so the compiler cannot make it direct. */
		fn = READ_ONCE(calib_ptr);
		fn();
	}
	t3 = ktime_get_ns();
	local_irq_restore(flags);
	pr_info("nf_hook_bench: calib iters=%u loop_ns=%llu direct_ns=%llu indirect_ns=%llu\n",
		iters, t1 - t0, t2 - t1, t3 - t2);
}

/* -- filler programs ----------------------------------------------------- */
static netdev_tx_t fill_xmit(struct sk_buff *skb, struct net_device *dev)
{
	dev_kfree_skb(skb);
	return NETDEV_TX_OK;
}

static const struct net_device_ops fill_netdev_ops = {
	.ndo_start_xmit = fill_xmit,
};

static void fill_setup(struct net_device *dev)
{
	ether_setup(dev);
	dev->netdev_ops = &fill_netdev_ops;
	dev->needs_free_netdev = true;
}

static void fill_teardown(unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		nf_unregister_net_hooks(&init_net, fill_ops[i], FILL_LEN);
		unregister_netdev(fill_dev[i]);
	}
}

/* Device i gets fill_a/fill_b after the bits of i: a sequence no other
 * device and no measured location has, hence a program of its own.
 */
static int fill_setup_all(unsigned int n)
{
	unsigned int i, j;
	int err;

	for (i = 0; i < n; i++) {
		struct net_device *dev = alloc_netdev(0, "nfbfill%d", NET_NAME_ENUM, fill_setup);

		if (!dev) {
			err = -ENOMEM;
			goto fail;
		}
		err = register_netdev(dev);
		if (err) {
			free_netdev(dev);
			goto fail;
		}
		for (j = 0; j < FILL_LEN; j++) {
			fill_ops[i][j].hook = (i >> j) & 1 ? ACCEPT_FN(fill_b) : ACCEPT_FN(fill_a);
			fill_ops[i][j].pf = NFPROTO_NETDEV;
			fill_ops[i][j].hooknum = NF_NETDEV_INGRESS;
			fill_ops[i][j].priority = j;
			fill_ops[i][j].dev = dev;
		}
		err = nf_register_net_hooks(&init_net, fill_ops[i], FILL_LEN);
		if (err) {
			unregister_netdev(dev);
			goto fail;
		}
		fill_dev[i] = dev;
	}
	return 0;
fail:
	fill_teardown(i);
	return err;
}

/* -- the data path: nf_hook() ------------------------------------------- */
static int time_nf_hook(void)
{
	struct net_device *dev = init_net.loopback_dev;
	unsigned int i, passed = 0;
	unsigned long flags;
	struct sk_buff *skb;
	u64 start, ns;

	skb = alloc_skb(128, GFP_KERNEL);
	if (!skb)
		return -ENOMEM;
	skb->dev = dev;

	/* One call outside the window: the first call faults in what the
	 * later ones find ready.
	 */
	local_bh_disable();
	nf_hook(NFPROTO_IPV4, NF_INET_FORWARD, &init_net, NULL, skb, dev, dev, bench_okfn);
	local_irq_save(flags);
	start = ktime_get_ns();
	for (i = 0; i < iters; i++)
		passed += nf_hook(NFPROTO_IPV4, NF_INET_FORWARD, &init_net, NULL, skb,
				  dev, dev, bench_okfn) == 1;
	ns = ktime_get_ns() - start;
	local_irq_restore(flags);
	local_bh_enable();

	kfree_skb(skb);
	pr_info("nf_hook_bench: hooks=%u iters=%u passed=%u total_ns=%llu fill=%u\n",
		hooks, iters, passed, ns, fill);
	return 0;
}

/* -- the control plane: one more hook, registered and unregistered ------ */
static void init_op(struct nf_hook_ops *op, int priority)
{
	op->hook = ACCEPT_FN(bench_accept);
	op->pf = NFPROTO_IPV4;
	op->hooknum = NF_INET_FORWARD;
	op->priority = priority;
}

/* Idle time of all CPUs, as the tick accounts it (jiffy resolution). */
static u64 idle_ns(void)
{
	u64 sum = 0;
	int cpu;

	for_each_online_cpu(cpu)
		sum += kcpustat_cpu(cpu).cpustat[CPUTIME_IDLE];
	return sum;
}

static int time_register(void)
{
	struct nf_hook_ops *extra = &ops[MAX_BENCH_HOOKS];
	unsigned long gp0;
	u64 t, idle0, reg_ns = 0, unreg_ns = 0;
	unsigned int i;
	int err = 0;

	init_op(extra, 50);
	/* The polling cookie follows the grace periods, expedited ones too. */
	gp0 = get_state_synchronize_rcu();
	idle0 = idle_ns();
	for (i = 0; i < ctl; i++) {
		t = ktime_get_ns();
		err = nf_register_net_hook(&init_net, extra);
		reg_ns += ktime_get_ns() - t;
		if (err)
			break;
		t = ktime_get_ns();
		nf_unregister_net_hook(&init_net, extra);
		unreg_ns += ktime_get_ns() - t;
	}
	/* The cookie counts in steps of 4 (its low bits are state). */
	pr_info("nf_hook_bench: ctl hooks=%u rounds=%u reg_ns=%llu unreg_ns=%llu gp=%lu idle_ns=%llu cpus=%u\n",
		hooks, i, reg_ns, unreg_ns, (get_state_synchronize_rcu() - gp0) >> 2,
		idle_ns() - idle0, num_online_cpus());
	return err;
}

static int __init nf_hook_bench_init(void)
{
	unsigned int i;
	int err;

	if (hooks > MAX_BENCH_HOOKS || (hooks == 0 && !ctl) || fill > MAX_FILL)
		return -EINVAL;

	err = fill_setup_all(fill);
	if (err)
		return err;

	for (i = 0; i < hooks; i++)
		init_op(&ops[i], 100 + i);
	err = nf_register_net_hooks(&init_net, ops, hooks);
	if (err)
		goto out_fill;

	if (settle)
		msleep(settle);
	if (hold)
		msleep(hold * 1000);

	if (ctl) {
		err = time_register();
	} else {
		calibrate();
		err = time_nf_hook();
	}

	nf_unregister_net_hooks(&init_net, ops, hooks);
out_fill:
	fill_teardown(fill);
	return err ?: -EAGAIN;
}
module_init(nf_hook_bench_init);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("patchgen: cost of nf_hook() per call, and of registering a hook");

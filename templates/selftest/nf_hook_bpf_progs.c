// SPDX-License-Identifier: GPL-2.0
/*
 * Exercise the BPF programs that netfilter generates for its base hooks.
 *
 * The kernel builds a program for the hooks of a location (named
 * nf_hook_<hooks>; locations with the same hooks share one) itself; user
 * space never loads them.  They still get an id, so
 * BPF_PROG_GET_FD_BY_ID hands out a file descriptor and every command that
 * takes a program fd can reach them.  They expect a struct nf_hook_state
 * as context and call hook functions directly, so they must never run
 * anywhere else.  Each command must therefore either fail or do something
 * harmless (show the program, pin it, bind a map to it).  A command that
 * runs the program (BPF_PROG_TEST_RUN) or attaches it where it would run
 * on a foreign context (cgroup, XDP, socket filter, tail call map, perf
 * event, link) and succeeds is a failure; the attachment is undone at once.
 *
 * Usage:
 *   nf_hook_bpf_progs [-N] [-v] [-x CMD[,CMD...]] [-p BPFFS_DIR] [-c CGROUP2_DIR]
 *	walk every nf_hook_ program through every command; exit 0 when all
 *	passed, 1 on a failure, 4 when there is no such program.
 *	-N runs in a new network namespace (XDP on its loopback device),
 *	-v prints every attach type's outcome, -x skips command groups
 *	(see cmd_names[]).
 *   nf_hook_bpf_progs -n
 *	list the programs: id name tag jited_len xlated_len
 *   nf_hook_bpf_progs -k SECONDS
 *	hold a reference (an fd) on every program for SECONDS
 *   nf_hook_bpf_progs -s ADDR PORT
 *	send one UDP datagram, print OK or the errno name of sendto()
 *
 * A command that oopses the kernel kills this process; the caller has to
 * watch the kernel log and taint flags for that.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/vfs.h>

#include <linux/bpf.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <linux/netlink.h>
#include <linux/perf_event.h>
#include <linux/rtnetlink.h>

#define KSFT_PASS	0
#define KSFT_FAIL	1
#define KSFT_SKIP	4

#define NAME_PREFIX	"nf_hook_"
#define LO_IFINDEX	1

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define ptr_to_u64(p)	((__u64)(unsigned long)(p))

/* Command groups, in the order they run; -x takes these names. */
enum cmd {
	CMD_INFO,
	CMD_FDINFO,
	CMD_PIN,
	CMD_BIND_MAP,
	CMD_PROG_MAP,
	CMD_PROG_ATTACH,
	CMD_LINK_CREATE,
	CMD_LINK_UPDATE,
	CMD_RAW_TP,
	CMD_SOCKOPT,
	CMD_PERF_EVENT,
	CMD_XDP_NETLINK,
	CMD_ATTACH_PROG_FD,
	CMD_QUERY,
	/* Last: on a kernel that cannot refuse it, it is the one that oopses. */
	CMD_TEST_RUN,
	CMD_MAX
};

static const char * const cmd_names[CMD_MAX] = {
	[CMD_INFO]		= "info",
	[CMD_FDINFO]		= "fdinfo",
	[CMD_PIN]		= "pin",
	[CMD_BIND_MAP]		= "bind_map",
	[CMD_PROG_MAP]		= "prog_map",
	[CMD_PROG_ATTACH]	= "prog_attach",
	[CMD_LINK_CREATE]	= "link_create",
	[CMD_LINK_UPDATE]	= "link_update",
	[CMD_RAW_TP]		= "raw_tp",
	[CMD_SOCKOPT]		= "sockopt",
	[CMD_PERF_EVENT]	= "perf_event",
	[CMD_XDP_NETLINK]	= "xdp_netlink",
	[CMD_ATTACH_PROG_FD]	= "attach_prog_fd",
	[CMD_QUERY]		= "query",
	[CMD_TEST_RUN]		= "test_run",
};

static bool skip_cmd[CMD_MAX];
static bool verbose;

enum expect {
	MAY_WORK,	/* harmless if it works: it must then do what it says */
	MUST_FAIL,	/* working would run or attach the program */
};

struct prog {
	__u32 id;
	int fd;
	char name[BPF_OBJ_NAME_LEN];
	char tag[2 * BPF_TAG_SIZE + 1];
	__u32 jited_len;
	__u32 xlated_len;
	unsigned int failures;
};

/* Objects the commands attach to, set up once; -1 when unavailable. */
static struct {
	const char *bpffs;
	char cgroup[512];
	int cgroup_fd;
	int netns_fd;
	int sockmap_fd;
	int array_fd;
	__u32 array_id;
	int perf_fd;
	int cg_prog_fd;
	int cg_link_fd;
	int xdp_prog_fd;
	int xdp_link_fd;
} res = {
	.cgroup_fd = -1, .netns_fd = -1, .sockmap_fd = -1, .array_fd = -1,
	.perf_fd = -1, .cg_prog_fd = -1, .cg_link_fd = -1, .xdp_prog_fd = -1,
	.xdp_link_fd = -1,
};

static const struct {
	int err;
	const char *name;
} errno_names[] = {
#define E(e) { e, #e }
	E(EPERM), E(ENOENT), E(ESRCH), E(EINTR), E(EIO), E(ENXIO), E(E2BIG),
	E(EBADF), E(EAGAIN), E(ENOMEM), E(EACCES), E(EFAULT), E(EBUSY),
	E(EEXIST), E(EXDEV), E(ENODEV), E(ENOTDIR), E(EISDIR), E(EINVAL),
	E(ENFILE), E(EMFILE), E(ENOTTY), E(ENOSPC), E(EROFS), E(EMLINK),
	E(ERANGE), E(EDEADLK), E(ENOTEMPTY), E(ELOOP), E(ENOLINK),
	E(EPROTO), E(EOVERFLOW), E(EBADFD), E(ENOTSOCK), E(EDESTADDRREQ),
	E(EMSGSIZE), E(EPROTOTYPE), E(ENOPROTOOPT), E(EPROTONOSUPPORT),
	E(EOPNOTSUPP), E(EAFNOSUPPORT), E(EADDRINUSE), E(EADDRNOTAVAIL),
	E(ENETDOWN), E(ENETUNREACH), E(ENOBUFS), E(ENOTCONN), E(ETIMEDOUT),
	E(ECONNREFUSED), E(EHOSTDOWN), E(EHOSTUNREACH), E(ECANCELED),
#undef E
	/* Kernel-internal code that bpf(2) lets through, e.g. from TEST_RUN. */
	{ 524, "ENOTSUPP" },
};

static const char *errno_name(int err)
{
	static char buf[32];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(errno_names); i++) {
		if (errno_names[i].err == err)
			return errno_names[i].name;
	}
	snprintf(buf, sizeof(buf), "errno %d", err);
	return buf;
}

/* Returns what the command returned, or -errno. */
static int sys_bpf(int cmd, union bpf_attr *attr)
{
	int ret = syscall(__NR_bpf, cmd, attr, sizeof(*attr));

	return ret < 0 ? -errno : ret;
}

static int neg_errno(int ret)
{
	return ret < 0 ? -errno : ret;
}

/* Print the outcome of one command; true when the command worked. */
static bool outcome(struct prog *p, const char *what, int ret, enum expect exp)
{
	bool fail = ret >= 0 && exp == MUST_FAIL;

	printf("# prog %u %s: %s -> %s (expected: %s)%s\n", p->id, p->name, what,
	       ret < 0 ? errno_name(-ret) : "ok", exp == MUST_FAIL ? "error" : "any",
	       fail ? " FAIL" : "");
	if (fail)
		p->failures++;
	return ret >= 0;
}

static void problem(struct prog *p, const char *what, const char *why)
{
	printf("# prog %u %s: %s FAIL: %s\n", p->id, p->name, what, why);
	p->failures++;
}

static void report_undo(struct prog *p, const char *what, const char *how, int ret)
{
	printf("# prog %u %s: %s undone by %s -> %s\n", p->id, p->name, what, how,
	       ret < 0 ? errno_name(-ret) : "ok");
}

static int prog_info(int fd, struct bpf_prog_info *info, __u32 len)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.info.bpf_fd = fd;
	attr.info.info_len = len;
	attr.info.info = ptr_to_u64(info);
	return sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr);
}

static int map_create(enum bpf_map_type type, __u32 key_size, __u32 value_size,
		      const char *name)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.map_type = type;
	attr.key_size = key_size;
	attr.value_size = value_size;
	attr.max_entries = 1;
	snprintf(attr.map_name, sizeof(attr.map_name), "%s", name);
	return sys_bpf(BPF_MAP_CREATE, &attr);
}

static int map_update(int map_fd, const void *key, const void *value)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.map_fd = map_fd;
	attr.key = ptr_to_u64(key);
	attr.value = ptr_to_u64(value);
	return sys_bpf(BPF_MAP_UPDATE_ELEM, &attr);
}

static int map_delete(int map_fd, const void *key)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.map_fd = map_fd;
	attr.key = ptr_to_u64(key);
	return sys_bpf(BPF_MAP_DELETE_ELEM, &attr);
}

/* "r0 = ret; exit": something to hold a link the commands can point at. */
static int load_trivial(enum bpf_prog_type type, enum bpf_attach_type attach, int ret,
			int attach_prog_fd, char *log, size_t log_size)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = ret },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = type;
	attr.expected_attach_type = attach;
	attr.insns = ptr_to_u64(insns);
	attr.insn_cnt = ARRAY_SIZE(insns);
	attr.license = ptr_to_u64("GPL");
	snprintf(attr.prog_name, sizeof(attr.prog_name), "ksft_trivial");
	if (attach_prog_fd >= 0) {
		attr.attach_prog_fd = attach_prog_fd;
		/* Any id: the target has to bring the BTF to look it up in. */
		attr.attach_btf_id = 1;
	}
	if (log) {
		log[0] = '\0';
		attr.log_buf = ptr_to_u64(log);
		attr.log_size = log_size;
		attr.log_level = 1;
	}
	return sys_bpf(BPF_PROG_LOAD, &attr);
}

static int link_create(int prog_fd, int target, enum bpf_attach_type type)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.link_create.prog_fd = prog_fd;
	attr.link_create.target_fd = target;	/* or target_ifindex */
	attr.link_create.attach_type = type;
	return sys_bpf(BPF_LINK_CREATE, &attr);
}

static int link_detach(int link_fd)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.link_detach.link_fd = link_fd;
	return sys_bpf(BPF_LINK_DETACH, &attr);
}

static const char * const attach_names[__MAX_BPF_ATTACH_TYPE] = {
	[BPF_CGROUP_INET_INGRESS]		= "cgroup_inet_ingress",
	[BPF_CGROUP_INET_EGRESS]		= "cgroup_inet_egress",
	[BPF_CGROUP_INET_SOCK_CREATE]		= "cgroup_inet_sock_create",
	[BPF_CGROUP_SOCK_OPS]			= "cgroup_sock_ops",
	[BPF_SK_SKB_STREAM_PARSER]		= "sk_skb_stream_parser",
	[BPF_SK_SKB_STREAM_VERDICT]		= "sk_skb_stream_verdict",
	[BPF_CGROUP_DEVICE]			= "cgroup_device",
	[BPF_SK_MSG_VERDICT]			= "sk_msg_verdict",
	[BPF_CGROUP_INET4_BIND]			= "cgroup_inet4_bind",
	[BPF_CGROUP_INET6_BIND]			= "cgroup_inet6_bind",
	[BPF_CGROUP_INET4_CONNECT]		= "cgroup_inet4_connect",
	[BPF_CGROUP_INET6_CONNECT]		= "cgroup_inet6_connect",
	[BPF_CGROUP_INET4_POST_BIND]		= "cgroup_inet4_post_bind",
	[BPF_CGROUP_INET6_POST_BIND]		= "cgroup_inet6_post_bind",
	[BPF_CGROUP_UDP4_SENDMSG]		= "cgroup_udp4_sendmsg",
	[BPF_CGROUP_UDP6_SENDMSG]		= "cgroup_udp6_sendmsg",
	[BPF_LIRC_MODE2]			= "lirc_mode2",
	[BPF_FLOW_DISSECTOR]			= "flow_dissector",
	[BPF_CGROUP_SYSCTL]			= "cgroup_sysctl",
	[BPF_CGROUP_UDP4_RECVMSG]		= "cgroup_udp4_recvmsg",
	[BPF_CGROUP_UDP6_RECVMSG]		= "cgroup_udp6_recvmsg",
	[BPF_CGROUP_GETSOCKOPT]			= "cgroup_getsockopt",
	[BPF_CGROUP_SETSOCKOPT]			= "cgroup_setsockopt",
	[BPF_TRACE_RAW_TP]			= "trace_raw_tp",
	[BPF_TRACE_FENTRY]			= "trace_fentry",
	[BPF_TRACE_FEXIT]			= "trace_fexit",
	[BPF_MODIFY_RETURN]			= "modify_return",
	[BPF_LSM_MAC]				= "lsm_mac",
	[BPF_TRACE_ITER]			= "trace_iter",
	[BPF_CGROUP_INET4_GETPEERNAME]		= "cgroup_inet4_getpeername",
	[BPF_CGROUP_INET6_GETPEERNAME]		= "cgroup_inet6_getpeername",
	[BPF_CGROUP_INET4_GETSOCKNAME]		= "cgroup_inet4_getsockname",
	[BPF_CGROUP_INET6_GETSOCKNAME]		= "cgroup_inet6_getsockname",
	[BPF_XDP_DEVMAP]			= "xdp_devmap",
	[BPF_CGROUP_INET_SOCK_RELEASE]		= "cgroup_inet_sock_release",
	[BPF_XDP_CPUMAP]			= "xdp_cpumap",
	[BPF_SK_LOOKUP]				= "sk_lookup",
	[BPF_XDP]				= "xdp",
	[BPF_SK_SKB_VERDICT]			= "sk_skb_verdict",
	[BPF_SK_REUSEPORT_SELECT]		= "sk_reuseport_select",
	[BPF_SK_REUSEPORT_SELECT_OR_MIGRATE]	= "sk_reuseport_select_or_migrate",
	[BPF_PERF_EVENT]			= "perf_event",
	[BPF_TRACE_KPROBE_MULTI]		= "trace_kprobe_multi",
	[BPF_LSM_CGROUP]			= "lsm_cgroup",
};

static const char *attach_name(int type)
{
	static char buf[32];

	if (type < (int)ARRAY_SIZE(attach_names) && attach_names[type])
		return attach_names[type];
	/* Attach types newer than the ones named here are tried as well. */
	snprintf(buf, sizeof(buf), "attach_type_%d", type);
	return buf;
}

enum target_kind {
	T_NONE,
	T_CGROUP,
	T_SOCKMAP,
	T_NETNS,
	T_IFINDEX,
	T_PERF,
};

/*
 * What each attach type attaches to.  The kernel should refuse the program
 * before it looks at the target, but a real target makes sure a command
 * that does not would really attach, and be caught.
 */
static enum target_kind target_kind(int type)
{
	switch (type) {
	case BPF_SK_SKB_STREAM_PARSER:
	case BPF_SK_SKB_STREAM_VERDICT:
	case BPF_SK_MSG_VERDICT:
	case BPF_SK_SKB_VERDICT:
		return T_SOCKMAP;
	case BPF_FLOW_DISSECTOR:
	case BPF_SK_LOOKUP:
		return T_NETNS;
	case BPF_XDP:
	case BPF_XDP_DEVMAP:
	case BPF_XDP_CPUMAP:
		return T_IFINDEX;
	case BPF_PERF_EVENT:
		return T_PERF;
	case BPF_LIRC_MODE2:
	case BPF_TRACE_RAW_TP:
	case BPF_TRACE_FENTRY:
	case BPF_TRACE_FEXIT:
	case BPF_MODIFY_RETURN:
	case BPF_LSM_MAC:
	case BPF_TRACE_ITER:
	case BPF_SK_REUSEPORT_SELECT:
	case BPF_SK_REUSEPORT_SELECT_OR_MIGRATE:
	case BPF_TRACE_KPROBE_MULTI:
		return T_NONE;
	default:
		/* All cgroup types, and the best guess for newer ones. */
		return T_CGROUP;
	}
}

static int attach_target(int type, bool link)
{
	switch (target_kind(type)) {
	case T_CGROUP:
		return res.cgroup_fd;
	case T_SOCKMAP:
		return res.sockmap_fd;
	case T_NETNS:
		/* BPF_PROG_ATTACH works on the caller's netns, target 0. */
		return link ? res.netns_fd : 0;
	case T_IFINDEX:
		return LO_IFINDEX;
	case T_PERF:
		return res.perf_fd;
	default:
		return 0;
	}
}

static void do_info(struct prog *p)
{
	struct bpf_prog_info base, info;
	void *xlated = NULL, *jited = NULL, *ksyms = NULL, *func_lens = NULL;
	void *line_info = NULL, *jited_line_info = NULL, *func_info = NULL;
	void *tags = NULL, *map_ids = NULL;
	char what[128];
	int ret;

	memset(&base, 0, sizeof(base));
	ret = prog_info(p->fd, &base, sizeof(base));
	if (!outcome(p, "OBJ_GET_INFO_BY_FD(counts)", ret, MAY_WORK))
		return;
	printf("# prog %u %s: type %u, xlated %u, jited %u, ksyms %u, func lens %u,",
	       p->id, p->name, base.type, base.xlated_prog_len, base.jited_prog_len,
	       base.nr_jited_ksyms, base.nr_jited_func_lens);
	printf(" line info %u/%u, func info %u, tags %u, maps %u, btf %u\n",
	       base.nr_line_info, base.nr_jited_line_info, base.nr_func_info,
	       base.nr_prog_tags, base.nr_map_ids, base.btf_id);

	/* Buffers for everything the kernel reported; +1 so none is empty. */
	xlated = calloc(1, base.xlated_prog_len + 1);
	jited = calloc(1, base.jited_prog_len + 1);
	ksyms = calloc(base.nr_jited_ksyms + 1, sizeof(__u64));
	func_lens = calloc(base.nr_jited_func_lens + 1, sizeof(__u32));
	line_info = calloc(base.nr_line_info + 1, base.line_info_rec_size + 1);
	jited_line_info = calloc(base.nr_jited_line_info + 1, sizeof(__u64));
	func_info = calloc(base.nr_func_info + 1, base.func_info_rec_size + 1);
	tags = calloc(base.nr_prog_tags + 1, BPF_TAG_SIZE);
	map_ids = calloc(base.nr_map_ids + 1, sizeof(__u32));
	if (!xlated || !jited || !ksyms || !func_lens || !line_info ||
	    !jited_line_info || !func_info || !tags || !map_ids) {
		problem(p, "OBJ_GET_INFO_BY_FD", "out of memory");
		goto out;
	}

	/* One buffer at a time: each is copied out by its own code. */
	memset(&info, 0, sizeof(info));
	info.xlated_prog_len = base.xlated_prog_len;
	info.xlated_prog_insns = ptr_to_u64(xlated);
	outcome(p, "OBJ_GET_INFO_BY_FD(xlated)", prog_info(p->fd, &info, sizeof(info)), MAY_WORK);

	memset(&info, 0, sizeof(info));
	info.jited_prog_len = base.jited_prog_len;
	info.jited_prog_insns = ptr_to_u64(jited);
	outcome(p, "OBJ_GET_INFO_BY_FD(jited)", prog_info(p->fd, &info, sizeof(info)), MAY_WORK);

	memset(&info, 0, sizeof(info));
	info.nr_jited_ksyms = base.nr_jited_ksyms;
	info.jited_ksyms = ptr_to_u64(ksyms);
	info.nr_jited_func_lens = base.nr_jited_func_lens;
	info.jited_func_lens = ptr_to_u64(func_lens);
	outcome(p, "OBJ_GET_INFO_BY_FD(jited_ksyms, jited_func_lens)",
		prog_info(p->fd, &info, sizeof(info)), MAY_WORK);

	if (base.nr_line_info || base.nr_jited_line_info) {
		memset(&info, 0, sizeof(info));
		info.nr_line_info = base.nr_line_info;
		info.line_info_rec_size = base.line_info_rec_size;
		info.line_info = ptr_to_u64(line_info);
		info.nr_jited_line_info = base.nr_jited_line_info;
		info.jited_line_info_rec_size = base.jited_line_info_rec_size;
		info.jited_line_info = ptr_to_u64(jited_line_info);
		outcome(p, "OBJ_GET_INFO_BY_FD(line_info)",
			prog_info(p->fd, &info, sizeof(info)), MAY_WORK);
	}
	if (base.nr_func_info) {
		memset(&info, 0, sizeof(info));
		info.nr_func_info = base.nr_func_info;
		info.func_info_rec_size = base.func_info_rec_size;
		info.func_info = ptr_to_u64(func_info);
		outcome(p, "OBJ_GET_INFO_BY_FD(func_info)",
			prog_info(p->fd, &info, sizeof(info)), MAY_WORK);
	}

	/* Buffers shorter than the program: the kernel copies what fits. */
	if (base.xlated_prog_len > sizeof(struct bpf_insn) && base.jited_prog_len > 1) {
		memset(&info, 0, sizeof(info));
		info.xlated_prog_len = sizeof(struct bpf_insn);
		info.xlated_prog_insns = ptr_to_u64(xlated);
		info.jited_prog_len = 1;
		info.jited_prog_insns = ptr_to_u64(jited);
		outcome(p, "OBJ_GET_INFO_BY_FD(short buffers)",
			prog_info(p->fd, &info, sizeof(info)), MAY_WORK);
	}

	/* An info struct shorter than this header's: older user space. */
	memset(&info, 0, sizeof(info));
	outcome(p, "OBJ_GET_INFO_BY_FD(8 bytes)", prog_info(p->fd, &info, 8), MAY_WORK);

	/* Everything at once; the program must look as it did before. */
	memset(&info, 0, sizeof(info));
	info.xlated_prog_len = base.xlated_prog_len;
	info.xlated_prog_insns = ptr_to_u64(xlated);
	info.jited_prog_len = base.jited_prog_len;
	info.jited_prog_insns = ptr_to_u64(jited);
	info.nr_jited_ksyms = base.nr_jited_ksyms;
	info.jited_ksyms = ptr_to_u64(ksyms);
	info.nr_jited_func_lens = base.nr_jited_func_lens;
	info.jited_func_lens = ptr_to_u64(func_lens);
	info.nr_line_info = base.nr_line_info;
	info.line_info_rec_size = base.line_info_rec_size;
	info.line_info = ptr_to_u64(line_info);
	info.nr_jited_line_info = base.nr_jited_line_info;
	info.jited_line_info_rec_size = base.jited_line_info_rec_size;
	info.jited_line_info = ptr_to_u64(jited_line_info);
	info.nr_func_info = base.nr_func_info;
	info.func_info_rec_size = base.func_info_rec_size;
	info.func_info = ptr_to_u64(func_info);
	info.nr_prog_tags = base.nr_prog_tags;
	info.prog_tags = ptr_to_u64(tags);
	info.nr_map_ids = base.nr_map_ids;
	info.map_ids = ptr_to_u64(map_ids);
	ret = prog_info(p->fd, &info, sizeof(info));
	if (!outcome(p, "OBJ_GET_INFO_BY_FD(all buffers)", ret, MAY_WORK))
		goto out;
	snprintf(what, sizeof(what), "OBJ_GET_INFO_BY_FD(all buffers)");
	if (info.id != p->id || strncmp(info.name, p->name, sizeof(info.name)))
		problem(p, what, "id or name changed");
	if (info.xlated_prog_len != base.xlated_prog_len ||
	    info.jited_prog_len != base.jited_prog_len)
		problem(p, what, "program length changed");
	if (base.nr_prog_tags && memcmp(tags, base.tag, BPF_TAG_SIZE))
		problem(p, what, "tag in prog_tags differs from tag");
out:
	free(xlated);
	free(jited);
	free(ksyms);
	free(func_lens);
	free(line_info);
	free(jited_line_info);
	free(func_info);
	free(tags);
	free(map_ids);
}

static void do_fdinfo(struct prog *p, int fd, const char *what)
{
	char path[64], buf[4096];
	ssize_t len = -1;
	char *s;
	int f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = open(path, O_RDONLY);
	if (f >= 0) {
		len = read(f, buf, sizeof(buf) - 1);
		close(f);
	}
	if (!outcome(p, what, neg_errno(len), MAY_WORK))
		return;
	buf[len] = '\0';
	s = strstr(buf, "prog_id:");
	if (!s || strtoul(s + strlen("prog_id:"), NULL, 10) != p->id)
		problem(p, what, "no prog_id line with this program's id");
}

static void do_pin(struct prog *p)
{
	struct bpf_prog_info info;
	union bpf_attr attr;
	char path[512];
	int fd, ret;

	/* No dots: bpffs keeps names with dots for itself. */
	snprintf(path, sizeof(path), "%s/nf_hook_bpf_progs_%d_%u", res.bpffs, getpid(), p->id);
	memset(&attr, 0, sizeof(attr));
	attr.pathname = ptr_to_u64(path);
	attr.bpf_fd = p->fd;
	/* Refused: bpf_prog_get() fails for it (bpf_prog_get_ok()). */
	if (!outcome(p, "OBJ_PIN", sys_bpf(BPF_OBJ_PIN, &attr), MUST_FAIL))
		return;

	memset(&attr, 0, sizeof(attr));
	attr.pathname = ptr_to_u64(path);
	fd = sys_bpf(BPF_OBJ_GET, &attr);
	if (outcome(p, "OBJ_GET", fd, MAY_WORK)) {
		memset(&info, 0, sizeof(info));
		ret = prog_info(fd, &info, sizeof(info));
		if (ret < 0 || info.id != p->id)
			problem(p, "OBJ_GET", "the pinned fd is not this program");
		do_fdinfo(p, fd, "fdinfo(OBJ_GET fd)");
		close(fd);
	}

	/* Nothing in bpffs reads a program; open() must fail cleanly. */
	fd = open(path, O_RDONLY);
	outcome(p, "open(pinned)", neg_errno(fd), MAY_WORK);
	if (fd >= 0)
		close(fd);

	if (unlink(path))
		problem(p, "unlink(pinned)", strerror(errno));
}

static bool map_has_id(int fd, __u32 map_id)
{
	struct bpf_prog_info info;
	__u32 ids[64];
	__u32 i;

	memset(&info, 0, sizeof(info));
	info.nr_map_ids = ARRAY_SIZE(ids);
	info.map_ids = ptr_to_u64(ids);
	if (prog_info(fd, &info, sizeof(info)) < 0)
		return false;
	for (i = 0; i < info.nr_map_ids && i < ARRAY_SIZE(ids); i++) {
		if (ids[i] == map_id)
			return true;
	}
	return false;
}

static void do_bind_map(struct prog *p)
{
	union bpf_attr attr;

	if (res.array_fd < 0) {
		printf("# prog %u %s: PROG_BIND_MAP skipped: no array map\n", p->id, p->name);
		return;
	}
	/* Refused: bpf_prog_get() fails for it (bpf_prog_get_ok()). */
	memset(&attr, 0, sizeof(attr));
	attr.prog_bind_map.prog_fd = p->fd;
	attr.prog_bind_map.map_fd = res.array_fd;
	outcome(p, "PROG_BIND_MAP", sys_bpf(BPF_PROG_BIND_MAP, &attr), MUST_FAIL);
	if (map_has_id(p->fd, res.array_id))
		problem(p, "PROG_BIND_MAP", "the map is among the program's map ids");
}

/* The program as the value of a map of @type: the update must fail. */
static void prog_in_map(struct prog *p, enum bpf_map_type type, const char *kind,
			const void *value, __u32 value_size)
{
	__u32 key = 0;
	char what[64];
	int fd, ret;

	fd = map_create(type, sizeof(key), value_size, "ksft_progs");
	if (fd < 0) {
		printf("# prog %u %s: %s skipped: MAP_CREATE -> %s\n",
		       p->id, p->name, kind, errno_name(-fd));
		return;
	}
	snprintf(what, sizeof(what), "MAP_UPDATE_ELEM(%s)", kind);
	ret = map_update(fd, &key, value);
	if (outcome(p, what, ret, MUST_FAIL))
		report_undo(p, what, "MAP_DELETE_ELEM", map_delete(fd, &key));
	close(fd);
}

static void do_prog_map(struct prog *p)
{
	struct bpf_devmap_val dev_val;
	struct bpf_cpumap_val cpu_val;
	__u32 prog_fd = p->fd;

	/* A tail call target: any program calling into the array runs it. */
	prog_in_map(p, BPF_MAP_TYPE_PROG_ARRAY, "prog_array", &prog_fd, sizeof(prog_fd));

	/* Maps whose values name an XDP program to run on redirect. */
	memset(&dev_val, 0, sizeof(dev_val));
	dev_val.ifindex = LO_IFINDEX;
	dev_val.bpf_prog.fd = p->fd;
	prog_in_map(p, BPF_MAP_TYPE_DEVMAP, "devmap", &dev_val, sizeof(dev_val));

	memset(&cpu_val, 0, sizeof(cpu_val));
	cpu_val.qsize = 16;
	cpu_val.bpf_prog.fd = p->fd;
	prog_in_map(p, BPF_MAP_TYPE_CPUMAP, "cpumap", &cpu_val, sizeof(cpu_val));
}

/*
 * The loops over every attach type print one line per errno, not one per
 * attach type (unless -v); a command that works is always printed.
 */
struct tally {
	const char *cmd;
	unsigned int n;
	int err[16];
	unsigned int count[16];
};

static bool tally_outcome(struct prog *p, struct tally *t, int type, int ret)
{
	char what[96];
	unsigned int i;

	for (i = 0; ret < 0 && i < t->n && t->err[i] != -ret; i++)
		;
	if (ret >= 0 || verbose || i == ARRAY_SIZE(t->err)) {
		snprintf(what, sizeof(what), "%s(%s)", t->cmd, attach_name(type));
		return outcome(p, what, ret, MUST_FAIL);
	}
	if (i == t->n)
		t->err[t->n++] = -ret;
	t->count[i]++;
	return false;
}

static void tally_print(struct prog *p, const struct tally *t)
{
	unsigned int i;

	for (i = 0; i < t->n; i++)
		printf("# prog %u %s: %s(%u attach types) -> %s (expected: error)\n",
		       p->id, p->name, t->cmd, t->count[i], errno_name(t->err[i]));
}

static void do_prog_attach(struct prog *p)
{
	struct tally attach = { .cmd = "PROG_ATTACH" }, detach = { .cmd = "PROG_DETACH" };
	union bpf_attr attr;
	char what[96];
	int type, ret;

	for (type = 0; type < __MAX_BPF_ATTACH_TYPE; type++) {
		memset(&attr, 0, sizeof(attr));
		attr.target_fd = attach_target(type, false);
		attr.attach_bpf_fd = p->fd;
		attr.attach_type = type;
		/* With BPF_F_ALLOW_MULTI a detach names the program it detaches. */
		if (target_kind(type) == T_CGROUP)
			attr.attach_flags = BPF_F_ALLOW_MULTI;
		ret = sys_bpf(BPF_PROG_ATTACH, &attr);
		/* BPF_PROG_DETACH takes no flags. */
		attr.attach_flags = 0;
		if (tally_outcome(p, &attach, type, ret)) {
			snprintf(what, sizeof(what), "PROG_ATTACH(%s)", attach_name(type));
			report_undo(p, what, "PROG_DETACH", sys_bpf(BPF_PROG_DETACH, &attr));
			continue;
		}

		/*
		 * Detach by this program's fd.  Where the fd is not accepted
		 * for the type, cgroups detach whatever single program is
		 * attached; the cgroup is our own, empty one, so that can only
		 * be this program.
		 */
		tally_outcome(p, &detach, type, sys_bpf(BPF_PROG_DETACH, &attr));
	}
	tally_print(p, &attach);
	tally_print(p, &detach);
}

static void do_link_create(struct prog *p)
{
	struct tally create = { .cmd = "LINK_CREATE" };
	char what[96];
	int type, fd;

	for (type = 0; type < __MAX_BPF_ATTACH_TYPE; type++) {
		fd = link_create(p->fd, attach_target(type, true), type);
		if (tally_outcome(p, &create, type, fd)) {
			snprintf(what, sizeof(what), "LINK_CREATE(%s)", attach_name(type));
			report_undo(p, what, "LINK_DETACH", link_detach(fd));
			close(fd);
		}
	}
	tally_print(p, &create);
}

static int link_update(int link_fd, int new_fd, int old_fd)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.link_update.link_fd = link_fd;
	attr.link_update.new_prog_fd = new_fd;
	if (old_fd >= 0) {
		attr.link_update.flags = BPF_F_REPLACE;
		attr.link_update.old_prog_fd = old_fd;
	}
	return sys_bpf(BPF_LINK_UPDATE, &attr);
}

static void link_update_one(struct prog *p, const char *kind, int link_fd, int prog_fd)
{
	char what[96];

	if (link_fd < 0) {
		printf("# prog %u %s: LINK_UPDATE(%s) skipped: no link\n", p->id, p->name, kind);
		return;
	}
	/* Swapping the program into a working link attaches it there. */
	snprintf(what, sizeof(what), "LINK_UPDATE(%s, new)", kind);
	if (outcome(p, what, link_update(link_fd, p->fd, -1), MUST_FAIL))
		report_undo(p, what, "LINK_UPDATE", link_update(link_fd, prog_fd, -1));

	/* Working would mean the link ran this program all along. */
	snprintf(what, sizeof(what), "LINK_UPDATE(%s, old)", kind);
	outcome(p, what, link_update(link_fd, prog_fd, p->fd), MUST_FAIL);
}

static void do_link_update(struct prog *p)
{
	link_update_one(p, "cgroup", res.cg_link_fd, res.cg_prog_fd);
	link_update_one(p, "xdp", res.xdp_link_fd, res.xdp_prog_fd);
}

static void do_raw_tp(struct prog *p)
{
	union bpf_attr attr;
	int fd;

	memset(&attr, 0, sizeof(attr));
	attr.raw_tracepoint.name = ptr_to_u64("sys_enter");
	attr.raw_tracepoint.prog_fd = p->fd;
	fd = sys_bpf(BPF_RAW_TRACEPOINT_OPEN, &attr);
	if (outcome(p, "RAW_TRACEPOINT_OPEN(sys_enter)", fd, MUST_FAIL)) {
		close(fd);
		report_undo(p, "RAW_TRACEPOINT_OPEN(sys_enter)", "close", 0);
	}

	/* Without a name: how tracing programs attach to their target. */
	attr.raw_tracepoint.name = 0;
	fd = sys_bpf(BPF_RAW_TRACEPOINT_OPEN, &attr);
	if (outcome(p, "RAW_TRACEPOINT_OPEN(no name)", fd, MUST_FAIL)) {
		close(fd);
		report_undo(p, "RAW_TRACEPOINT_OPEN(no name)", "close", 0);
	}
}

static void sockopt_attach(struct prog *p, int type, int opt, int detach, const char *what)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int one = 1, s, ret;

	s = socket(AF_INET, type, 0);
	if (s < 0) {
		printf("# prog %u %s: %s skipped: socket -> %s\n", p->id, p->name, what,
		       errno_name(errno));
		return;
	}
	if (opt == SO_ATTACH_REUSEPORT_EBPF &&
	    (setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	     bind(s, (struct sockaddr *)&sin, sizeof(sin)))) {
		printf("# prog %u %s: %s skipped: SO_REUSEPORT/bind -> %s\n", p->id, p->name,
		       what, errno_name(errno));
		close(s);
		return;
	}
	ret = neg_errno(setsockopt(s, SOL_SOCKET, opt, &p->fd, sizeof(p->fd)));
	if (outcome(p, what, ret, MUST_FAIL)) {
		ret = neg_errno(setsockopt(s, SOL_SOCKET, detach, &one, sizeof(one)));
		report_undo(p, what, "detach", ret);
	}
	close(s);
}

static void do_sockopt(struct prog *p)
{
	sockopt_attach(p, SOCK_DGRAM, SO_ATTACH_BPF, SO_DETACH_BPF, "SO_ATTACH_BPF(udp)");
	sockopt_attach(p, SOCK_STREAM, SO_ATTACH_BPF, SO_DETACH_BPF, "SO_ATTACH_BPF(tcp)");
	sockopt_attach(p, SOCK_DGRAM, SO_ATTACH_REUSEPORT_EBPF, SO_DETACH_REUSEPORT_BPF,
		       "SO_ATTACH_REUSEPORT_EBPF(udp)");
}

static int perf_open(__u32 type, __u64 config)
{
	struct perf_event_attr pa;

	memset(&pa, 0, sizeof(pa));
	pa.size = sizeof(pa);
	pa.type = type;
	pa.config = config;
	pa.sample_period = 1;
	pa.disabled = 1;
	return neg_errno(syscall(__NR_perf_event_open, &pa, 0, -1, -1, PERF_FLAG_FD_CLOEXEC));
}

static long tracepoint_id(const char *event)
{
	static const char * const roots[] = { "/sys/kernel/tracing", "/sys/kernel/debug/tracing" };
	char path[256], buf[32];
	size_t i;
	ssize_t n;
	int fd;

	for (i = 0; i < ARRAY_SIZE(roots); i++) {
		snprintf(path, sizeof(path), "%s/events/%s/id", roots[i], event);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			return strtol(buf, NULL, 10);
		}
	}
	return -1;
}

static void perf_set_bpf(struct prog *p, int pfd, const char *what)
{
	int ret;

	if (pfd < 0) {
		printf("# prog %u %s: %s skipped: perf_event_open -> %s\n", p->id, p->name,
		       what, errno_name(-pfd));
		return;
	}
	ret = neg_errno(ioctl(pfd, PERF_EVENT_IOC_SET_BPF, p->fd));
	/* Closing the event is the only way to take the program off again. */
	if (outcome(p, what, ret, MUST_FAIL))
		report_undo(p, what, "close", 0);
	close(pfd);
}

static void do_perf_event(struct prog *p)
{
	long id;

	perf_set_bpf(p, perf_open(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK),
		     "PERF_EVENT_IOC_SET_BPF(cpu-clock)");
	id = tracepoint_id("raw_syscalls/sys_enter");
	if (id < 0) {
		printf("# prog %u %s: PERF_EVENT_IOC_SET_BPF(tracepoint) skipped: no tracefs\n",
		       p->id, p->name);
		return;
	}
	perf_set_bpf(p, perf_open(PERF_TYPE_TRACEPOINT, id),
		     "PERF_EVENT_IOC_SET_BPF(tracepoint)");
}

static int rta_put(struct nlmsghdr *nh, size_t room, unsigned short type,
		   const void *data, size_t len)
{
	struct rtattr *rta = (struct rtattr *)((char *)nh + NLMSG_ALIGN(nh->nlmsg_len));

	if (NLMSG_ALIGN(nh->nlmsg_len) + RTA_SPACE(len) > room)
		return -1;
	rta->rta_type = type;
	rta->rta_len = RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(rta), data, len);
	nh->nlmsg_len = NLMSG_ALIGN(nh->nlmsg_len) + RTA_ALIGN(rta->rta_len);
	return 0;
}

/* RTM_SETLINK with IFLA_XDP, the way ip link set dev lo xdp does it. */
static int xdp_netlink(int ifindex, int prog_fd)
{
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
		char attrs[64];
	} req;
	struct {
		struct nlmsghdr nh;
		struct nlmsgerr err;
		char more[512];
	} ack;
	__u32 flags = XDP_FLAGS_SKB_MODE;
	struct rtattr *nest;
	int s, ret;
	ssize_t n;

	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(req.ifi));
	req.nh.nlmsg_type = RTM_SETLINK;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	req.ifi.ifi_family = AF_UNSPEC;
	req.ifi.ifi_index = ifindex;
	nest = (struct rtattr *)((char *)&req + NLMSG_ALIGN(req.nh.nlmsg_len));
	if (rta_put(&req.nh, sizeof(req), IFLA_XDP | NLA_F_NESTED, NULL, 0) ||
	    rta_put(&req.nh, sizeof(req), IFLA_XDP_FD, &prog_fd, sizeof(prog_fd)) ||
	    rta_put(&req.nh, sizeof(req), IFLA_XDP_FLAGS, &flags, sizeof(flags)))
		return -EMSGSIZE;
	nest->rta_len = (char *)&req + req.nh.nlmsg_len - (char *)nest;

	s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (s < 0)
		return -errno;
	if (send(s, &req, req.nh.nlmsg_len, 0) < 0) {
		ret = -errno;
		close(s);
		return ret;
	}
	n = recv(s, &ack, sizeof(ack), 0);
	ret = n < 0 ? -errno : -EPROTO;
	if (n >= (ssize_t)NLMSG_LENGTH(sizeof(ack.err)) && ack.nh.nlmsg_type == NLMSG_ERROR)
		ret = ack.err.error;
	close(s);
	return ret;
}

static void do_xdp_netlink(struct prog *p)
{
	if (outcome(p, "RTM_SETLINK(IFLA_XDP, lo)", xdp_netlink(LO_IFINDEX, p->fd), MUST_FAIL))
		report_undo(p, "RTM_SETLINK(IFLA_XDP, lo)", "IFLA_XDP_FD -1",
			    xdp_netlink(LO_IFINDEX, -1));
}

/* Print why the verifier refused a load: its last line before the stats. */
static void print_log_reason(struct prog *p, const char *what, char *log)
{
	char *line, *save = NULL, *reason = NULL;

	for (line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "processed ", 10) && strncmp(line, "verification time", 17))
			reason = line;
	}
	if (reason)
		printf("# prog %u %s: %s: verifier: %s\n", p->id, p->name, what, reason);
}

static void do_attach_prog_fd(struct prog *p)
{
	static char log[65536];
	int fd;

	/* A program that would replace (freplace) a function of this one. */
	fd = load_trivial(BPF_PROG_TYPE_EXT, 0, 0, p->fd, log, sizeof(log));
	if (outcome(p, "PROG_LOAD(ext, attach_prog_fd)", fd, MUST_FAIL)) {
		close(fd);
		report_undo(p, "PROG_LOAD(ext, attach_prog_fd)", "close", 0);
	}
	print_log_reason(p, "PROG_LOAD(ext, attach_prog_fd)", log);

	/* A program that would trace (fentry) a function of this one. */
	fd = load_trivial(BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, 0, p->fd, log, sizeof(log));
	if (outcome(p, "PROG_LOAD(fentry, attach_prog_fd)", fd, MUST_FAIL)) {
		close(fd);
		report_undo(p, "PROG_LOAD(fentry, attach_prog_fd)", "close", 0);
	}
	print_log_reason(p, "PROG_LOAD(fentry, attach_prog_fd)", log);
}

/* After all the attach attempts, nothing may list this program. */
static void do_query(struct prog *p)
{
	union bpf_attr attr;
	__u32 ids[64], i;
	bool found = false;
	char what[96];
	int type, target, ret;

	for (type = 0; type < __MAX_BPF_ATTACH_TYPE; type++) {
		enum target_kind kind = target_kind(type);

		if (kind != T_CGROUP && kind != T_NETNS)
			continue;
		target = kind == T_CGROUP ? res.cgroup_fd : res.netns_fd;
		memset(&attr, 0, sizeof(attr));
		attr.query.target_fd = target;
		attr.query.attach_type = type;
		attr.query.prog_ids = ptr_to_u64(ids);
		attr.query.prog_cnt = ARRAY_SIZE(ids);
		ret = sys_bpf(BPF_PROG_QUERY, &attr);
		if (ret < 0)
			continue;
		for (i = 0; i < attr.query.prog_cnt && i < ARRAY_SIZE(ids); i++) {
			if (ids[i] != p->id)
				continue;
			snprintf(what, sizeof(what), "PROG_QUERY(%s)", attach_name(type));
			problem(p, what, "the program is attached");
			found = true;
		}
	}
	if (!found)
		printf("# prog %u %s: PROG_QUERY(cgroup, netns) -> not attached\n",
		       p->id, p->name);
}

static void test_run(struct prog *p, const char *what, const void *data, __u32 data_len,
		     const void *ctx, __u32 ctx_len, __u32 repeat, __u32 flags)
{
	static unsigned char data_out[256], ctx_out[256];
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.test.prog_fd = p->fd;
	attr.test.repeat = repeat;
	attr.test.flags = flags;
	if (data) {
		attr.test.data_in = ptr_to_u64(data);
		attr.test.data_size_in = data_len;
		attr.test.data_out = ptr_to_u64(data_out);
		attr.test.data_size_out = sizeof(data_out);
	}
	if (ctx) {
		attr.test.ctx_in = ptr_to_u64(ctx);
		attr.test.ctx_size_in = ctx_len;
		attr.test.ctx_out = ptr_to_u64(ctx_out);
		attr.test.ctx_size_out = sizeof(ctx_out);
	}
	if (flags & BPF_F_TEST_XDP_LIVE_FRAMES)
		attr.test.batch_size = 1;
	fflush(stdout);
	/* Working would mean the program ran on a made-up context. */
	outcome(p, what, sys_bpf(BPF_PROG_TEST_RUN, &attr), MUST_FAIL);
}

static void do_test_run(struct prog *p)
{
	/* Ethernet, IPv4 127.0.0.1 -> 127.0.0.1, UDP 9 -> 9, 18 bytes payload. */
	static const unsigned char pkt[64] = {
		[12] = 0x08, [13] = 0x00,
		[14] = 0x45, [16] = 0x00, [17] = 50, [22] = 64, [23] = IPPROTO_UDP,
		[26] = 127, [29] = 1, [30] = 127, [33] = 1,
		[35] = 9, [37] = 9, [39] = 30,
	};
	static const unsigned char ctx[256];

	printf("# prog %u %s: TEST_RUN next: a kernel that cannot refuse it may oops here\n",
	       p->id, p->name);
	test_run(p, "TEST_RUN", NULL, 0, NULL, 0, 0, 0);
	test_run(p, "TEST_RUN(data_in)", pkt, sizeof(pkt), NULL, 0, 0, 0);
	test_run(p, "TEST_RUN(data_in, repeat 100)", pkt, sizeof(pkt), NULL, 0, 100, 0);
	test_run(p, "TEST_RUN(ctx_in)", NULL, 0, ctx, sizeof(ctx), 0, 0);
	test_run(p, "TEST_RUN(data_in, ctx_in)", pkt, sizeof(pkt), ctx, sizeof(ctx), 0, 0);
	test_run(p, "TEST_RUN(on cpu 0)", NULL, 0, NULL, 0, 0, BPF_F_TEST_RUN_ON_CPU);
	test_run(p, "TEST_RUN(xdp live frames)", pkt, sizeof(pkt), NULL, 0, 1,
		 BPF_F_TEST_XDP_LIVE_FRAMES);
}

typedef void (*cmd_fn)(struct prog *p);

static void do_fdinfo_cmd(struct prog *p)
{
	do_fdinfo(p, p->fd, "fdinfo");
}

static const cmd_fn cmd_fns[CMD_MAX] = {
	[CMD_INFO]		= do_info,
	[CMD_FDINFO]		= do_fdinfo_cmd,
	[CMD_PIN]		= do_pin,
	[CMD_BIND_MAP]		= do_bind_map,
	[CMD_PROG_MAP]		= do_prog_map,
	[CMD_PROG_ATTACH]	= do_prog_attach,
	[CMD_LINK_CREATE]	= do_link_create,
	[CMD_LINK_UPDATE]	= do_link_update,
	[CMD_RAW_TP]		= do_raw_tp,
	[CMD_SOCKOPT]		= do_sockopt,
	[CMD_PERF_EVENT]	= do_perf_event,
	[CMD_XDP_NETLINK]	= do_xdp_netlink,
	[CMD_ATTACH_PROG_FD]	= do_attach_prog_fd,
	[CMD_QUERY]		= do_query,
	[CMD_TEST_RUN]		= do_test_run,
};

static void hex(char *out, const unsigned char *in, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02x", in[i]);
}

/*
 * Next nf_hook_ program after *id, opened.  Returns 1 with p filled in,
 * 0 at the end, -errno when the walk cannot go on.
 */
static int next_prog(__u32 *id, struct prog *p)
{
	struct bpf_prog_info info;
	union bpf_attr attr;
	int fd, ret;

	for (;;) {
		memset(&attr, 0, sizeof(attr));
		attr.start_id = *id;
		ret = sys_bpf(BPF_PROG_GET_NEXT_ID, &attr);
		if (ret == -ENOENT)
			return 0;
		if (ret < 0)
			return ret;
		*id = attr.next_id;

		memset(&attr, 0, sizeof(attr));
		attr.prog_id = *id;
		fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
		if (fd == -ENOENT)	/* gone in between */
			continue;
		if (fd < 0)
			return fd;

		memset(&info, 0, sizeof(info));
		if (prog_info(fd, &info, sizeof(info)) < 0 ||
		    strncmp(info.name, NAME_PREFIX, strlen(NAME_PREFIX))) {
			close(fd);
			continue;
		}
		memset(p, 0, sizeof(*p));
		p->id = *id;
		p->fd = fd;
		memcpy(p->name, info.name, sizeof(p->name) - 1);
		hex(p->tag, info.tag, sizeof(info.tag));
		p->jited_len = info.jited_prog_len;
		p->xlated_len = info.xlated_prog_len;
		return 1;
	}
}

static int walk_error(int ret)
{
	printf("# BPF_PROG_GET_NEXT_ID/GET_FD_BY_ID: %s\n", errno_name(-ret));
	/* Without the right to look, there is nothing to test. */
	return ret == -EPERM ? KSFT_SKIP : KSFT_FAIL;
}

static int list_progs(void)
{
	struct prog p;
	__u32 id = 0;
	int n = 0, ret;

	while ((ret = next_prog(&id, &p)) > 0) {
		printf("%u %s %s %u %u\n", p.id, p.name, p.tag, p.jited_len, p.xlated_len);
		close(p.fd);
		n++;
	}
	if (ret < 0)
		return walk_error(ret);
	return n ? KSFT_PASS : KSFT_SKIP;
}

static int hold_progs(unsigned int seconds)
{
	unsigned int n = 0, i;
	int fds[1024];
	struct prog p;
	__u32 id = 0;
	int ret;

	while (n < ARRAY_SIZE(fds) && (ret = next_prog(&id, &p)) > 0)
		fds[n++] = p.fd;
	printf("# holding %u nf_hook_ programs for %u s\n", n, seconds);
	fflush(stdout);
	sleep(seconds);
	for (i = 0; i < n; i++)
		close(fds[i]);
	return n ? KSFT_PASS : KSFT_SKIP;
}

static int send_udp(const char *addr, const char *port)
{
	struct addrinfo hints = {
		.ai_socktype = SOCK_DGRAM,
		.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
	};
	struct addrinfo *ai;
	int s, ret;

	ret = getaddrinfo(addr, port, &hints, &ai);
	if (ret) {
		fprintf(stderr, "%s %s: %s\n", addr, port, gai_strerror(ret));
		return KSFT_FAIL;
	}
	s = socket(ai->ai_family, SOCK_DGRAM, 0);
	if (s < 0) {
		fprintf(stderr, "socket: %s\n", strerror(errno));
		freeaddrinfo(ai);
		return KSFT_FAIL;
	}
	/* The errno of sendto() is the verdict of the output hooks. */
	ret = sendto(s, "nf_hook_bpf", 11, 0, ai->ai_addr, ai->ai_addrlen);
	printf("%s\n", ret < 0 ? errno_name(errno) : "OK");
	close(s);
	freeaddrinfo(ai);
	return KSFT_PASS;
}

static bool is_fs(const char *dir, long magic)
{
	struct statfs st;

	return !statfs(dir, &st) && st.f_type == magic;
}

static void setup(const char *cgroup_root)
{
	struct bpf_map_info minfo;
	__u32 len = sizeof(minfo);
	union bpf_attr attr;

	if (!is_fs(res.bpffs, BPF_FS_MAGIC))
		printf("# %s is not a bpf file system: OBJ_PIN will fail\n", res.bpffs);

	/*
	 * A cgroup of our own, without tasks: an attach that should not work
	 * but does cannot affect anything, and a detach by a refused fd
	 * (which detaches any single program) finds nothing to detach.
	 */
	if (is_fs(cgroup_root, CGROUP2_SUPER_MAGIC)) {
		snprintf(res.cgroup, sizeof(res.cgroup), "%s/nf_hook_bpf_progs_%d",
			 cgroup_root, getpid());
		if (!mkdir(res.cgroup, 0755))
			res.cgroup_fd = open(res.cgroup, O_RDONLY | O_DIRECTORY);
		else
			res.cgroup[0] = '\0';
	}
	if (res.cgroup_fd < 0)
		printf("# no cgroup v2 at %s: cgroup attach types get fd -1\n", cgroup_root);

	res.netns_fd = open("/proc/self/ns/net", O_RDONLY);
	res.sockmap_fd = map_create(BPF_MAP_TYPE_SOCKMAP, 4, 4, "ksft_sockmap");
	res.array_fd = map_create(BPF_MAP_TYPE_ARRAY, 4, 4, "ksft_bind");
	if (res.array_fd >= 0) {
		memset(&minfo, 0, sizeof(minfo));
		memset(&attr, 0, sizeof(attr));
		attr.info.bpf_fd = res.array_fd;
		attr.info.info_len = len;
		attr.info.info = ptr_to_u64(&minfo);
		if (!sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr))
			res.array_id = minfo.id;
	}
	res.perf_fd = perf_open(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK);

	/* Working links, for LINK_UPDATE to try to swap the program into. */
	res.cg_prog_fd = load_trivial(BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_EGRESS, 1,
				      -1, NULL, 0);
	if (res.cg_prog_fd >= 0 && res.cgroup_fd >= 0)
		res.cg_link_fd = link_create(res.cg_prog_fd, res.cgroup_fd,
					     BPF_CGROUP_INET_EGRESS);
	res.xdp_prog_fd = load_trivial(BPF_PROG_TYPE_XDP, BPF_XDP, XDP_PASS, -1, NULL, 0);
	if (res.xdp_prog_fd >= 0)
		res.xdp_link_fd = link_create(res.xdp_prog_fd, LO_IFINDEX, BPF_XDP);
	printf("# targets: cgroup %s, sockmap %s, array map %s,",
	       res.cgroup_fd >= 0 ? "ok" : "none",
	       res.sockmap_fd >= 0 ? "ok" : errno_name(-res.sockmap_fd),
	       res.array_fd >= 0 ? "ok" : errno_name(-res.array_fd));
	printf(" perf event %s, cgroup link %s, xdp link %s\n",
	       res.perf_fd >= 0 ? "ok" : errno_name(-res.perf_fd),
	       res.cg_link_fd >= 0 ? "ok" : errno_name(-res.cg_link_fd),
	       res.xdp_link_fd >= 0 ? "ok" : errno_name(-res.xdp_link_fd));
}

static void cleanup(void)
{
	int *fds[] = { &res.cg_link_fd, &res.xdp_link_fd, &res.cg_prog_fd, &res.xdp_prog_fd,
		       &res.perf_fd, &res.array_fd, &res.sockmap_fd, &res.netns_fd,
		       &res.cgroup_fd };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(fds); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
	if (res.cgroup[0] && rmdir(res.cgroup))
		printf("# rmdir %s: %s\n", res.cgroup, strerror(errno));
}

static int run_progs(const char *cgroup_root)
{
	unsigned int n = 0, failed = 0;
	struct prog p;
	__u32 id = 0;
	int c, ret;

	setup(cgroup_root);
	while ((ret = next_prog(&id, &p)) > 0) {
		n++;
		printf("# prog %u %s: tag %s, jited %u bytes, xlated %u bytes\n",
		       p.id, p.name, p.tag, p.jited_len, p.xlated_len);
		for (c = 0; c < CMD_MAX; c++) {
			if (!skip_cmd[c])
				cmd_fns[c](&p);
		}
		printf("# %s prog %u %s", p.failures ? "not ok" : "ok", p.id, p.name);
		if (p.failures)
			printf(" (%u failures)", p.failures);
		printf("\n");
		failed += !!p.failures;
		close(p.fd);
		fflush(stdout);
	}
	cleanup();
	if (ret < 0)
		return walk_error(ret);
	if (!n) {
		printf("# no " NAME_PREFIX " programs\n");
		return KSFT_SKIP;
	}
	printf("# %u " NAME_PREFIX " programs, %u failed\n", n, failed);
	return failed ? KSFT_FAIL : KSFT_PASS;
}

static bool parse_skip(char *list)
{
	char *name, *save = NULL;
	int c;

	for (name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
		for (c = 0; c < CMD_MAX; c++) {
			if (!strcmp(name, cmd_names[c]))
				break;
		}
		if (c == CMD_MAX) {
			fprintf(stderr, "unknown command group '%s'\n", name);
			return false;
		}
		skip_cmd[c] = true;
	}
	return true;
}

static void print_usage(const char *prog)
{
	int c;

	fprintf(stderr,
		"usage: %s [-N] [-v] [-x CMD[,CMD...]] [-p BPFFS_DIR] [-c CGROUP2_DIR]\n"
		"       %s -n\n"
		"       %s -k SECONDS\n"
		"       %s -s ADDR PORT\n"
		"command groups:", prog, prog, prog, prog);
	for (c = 0; c < CMD_MAX; c++)
		fprintf(stderr, " %s", cmd_names[c]);
	fprintf(stderr, "\n");
}

int main(int argc, char **argv)
{
	const char *cgroup_root = "/sys/fs/cgroup";
	const char *send_addr = NULL;
	bool list = false, newns = false;
	int hold = -1;
	int opt;

	res.bpffs = "/sys/fs/bpf";
	while ((opt = getopt(argc, argv, "Nnvk:s:x:p:c:h")) != -1) {
		switch (opt) {
		case 'v':
			verbose = true;
			break;
		case 'N':
			newns = true;
			break;
		case 'n':
			list = true;
			break;
		case 'k':
			hold = atoi(optarg);
			break;
		case 's':
			send_addr = optarg;
			break;
		case 'x':
			if (!parse_skip(optarg))
				return KSFT_FAIL;
			break;
		case 'p':
			res.bpffs = optarg;
			break;
		case 'c':
			cgroup_root = optarg;
			break;
		default:
			print_usage(argv[0]);
			return opt == 'h' ? KSFT_PASS : KSFT_FAIL;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (send_addr) {
		if (optind != argc - 1) {
			print_usage(argv[0]);
			return KSFT_FAIL;
		}
		return send_udp(send_addr, argv[optind]);
	}
	if (list)
		return list_progs();
	if (hold >= 0)
		return hold_progs(hold);

	/* Keep what an attach might reach (loopback XDP, netns hooks) private. */
	if (newns && unshare(CLONE_NEWNET)) {
		printf("# unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return KSFT_SKIP;
	}
	return run_progs(cgroup_root);
}

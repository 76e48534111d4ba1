/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What keeps unfollowed or noisy processes from filling the rings: failed
 * calls of host processes are counted, not sent; every process has a token
 * bucket for the records it causes, and what goes over is counted.
 */
#ifndef CW_LIMITS_BPF_H
#define CW_LIMITS_BPF_H

const volatile __u32 rate_per_sec = 64; /* records a process may cause per second, sustained */
const volatile __u32 rate_burst = 256;	/* … and in one burst */

struct cw_bucket {
	__u64 last_ns;
	__u64 milli; /* tokens × 1000 */
};

/* What a record is, for its bucket: a process has one bucket per class, so
 * that a flood of one kind (failing calls, connects to its own sockets,
 * io_uring submissions) cannot spend the budget of another (the successful
 * escape call, the runtime-socket connect, the signal to the sensor). */
enum cw_bucket_class {
	CW_BUCKET_SC_OK = 0,
	CW_BUCKET_SC_FAILED = 1,
	CW_BUCKET_CONNECT = 2,
	CW_BUCKET_GUARD = 3,
	CW_BUCKET_URING = 4,
	CW_BUCKET_TOKEN = 5,
};

/* Key: tgid | class << 32. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct cw_bucket);
} buckets SEC(".maps");

/* Takes one token of a process's bucket; counts a refusal. Unlocked: two CPUs
 * may both take the last token, which only loosens the limit by one. */
static __always_inline bool bucket_take(__u32 tgid, enum cw_bucket_class cls)
{
	__u64 key = tgid | ((__u64)cls << 32);
	__u64 now = bpf_ktime_get_ns();
	__u64 cap = (__u64)rate_burst * 1000;
	struct cw_bucket *b = bpf_map_lookup_elem(&buckets, &key);
	__u64 m;

	if (!b) {
		struct cw_bucket n = { .last_ns = now, .milli = cap - 1000 };

		bpf_map_update_elem(&buckets, &key, &n, BPF_ANY);
		return true;
	}
	m = b->milli + (now - b->last_ns) * rate_per_sec / 1000000;
	if (m > cap)
		m = cap;
	b->last_ns = now;
	if (m < 1000) {
		b->milli = m;
		stat_inc(CW_STAT_RATE_LIMITED);
		return false;
	}
	b->milli = m - 1000;
	return true;
}

/* In the follow set, by tgid alone: the cheap test, before any task read. */
static __always_inline bool followed_tgid(__u32 tgid)
{
	struct task_state *s = bpf_map_lookup_elem(&tasks, &tgid);

	return s && (s->flags & TS_FOLLOW);
}

/* The current task outside the host's mount namespace: what keys a
 * container (probe reads: syscall tracepoints get no BTF task pointer before
 * 5.11). */
static __always_inline bool current_mnt_not_host(void)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();

	return BPF_CORE_READ(t, nsproxy, mnt_ns, ns.inum) != host_ns[CW_NS_MNT];
}

/* … or outside the host's pid namespace. */
static __always_inline bool current_in_container(void)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct pid *p;
	unsigned int level;
	struct upid up = {};

	if (current_mnt_not_host())
		return true;
	p = BPF_CORE_READ(t, group_leader, thread_pid);
	level = BPF_CORE_READ(p, level);
	bpf_core_read(&up, sizeof(up), &p->numbers[level & 31]);
	return BPF_CORE_READ(up.ns, ns.inum) != host_ns[CW_NS_PID];
}

/*
 * Called by sc_exit before it builds a syscall record: false when the record
 * is not to be sent. A failed call of a process that is neither followed nor
 * in a container is counted only (any unprivileged process could otherwise
 * fill the ring with failing setns or chroot calls); every other record
 * spends a token of its process's bucket.
 */
static __always_inline bool guard_admit_sc(__u64 id, long ret)
{
	__u32 tgid = id >> 32;
	bool failed = ret < 0;

	if (failed && !followed_tgid(tgid) && !current_in_container()) {
		stat_inc(CW_STAT_FAILED_UNFOLLOWED);
		return false;
	}
	return bucket_take(tgid, failed ? CW_BUCKET_SC_FAILED : CW_BUCKET_SC_OK);
}

#endif

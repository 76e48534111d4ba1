/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Reading a task's identity, credentials, namespaces and cgroup with CO-RE.
 * Why two readers: tp_btf arguments (and bpf_get_current_task_btf(), 5.11+)
 * are BTF pointers, so plain `a->b->c` becomes direct, fault-safe loads (still
 * relocated by CO-RE through vmlinux.h's preserve_access_index); BPF_CORE_READ
 * makes one probe-read helper call per hop, which made the host fast path cost
 * over a microsecond. The current task of a syscall tracepoint on a kernel
 * before 5.11 is only a plain address, so it is read with BPF_CORE_READ.
 * Variable array indexes need bpf_core_read in both.
 */
#ifndef CW_TASK_BPF_H
#define CW_TASK_BPF_H

static __always_inline bool ns_is_host(const __u32 ns[CW_NS_COUNT])
{
	return ns[CW_NS_MNT] == host_ns[CW_NS_MNT] && ns[CW_NS_PID] == host_ns[CW_NS_PID];
}

/* *_btf: direct loads through a BTF pointer. */
#define TRF(name)	     name##_btf
#define TR(...)		     ___arrow(__VA_ARGS__)
#define TR_COPY(dst, src, n) __builtin_memcpy(dst, src, n)
#define TR_CAP(dst, cred)    (*(dst) = cred_cap_effective(cred))
#include "task_read.bpf.h"
#undef TRF
#undef TR
#undef TR_COPY
#undef TR_CAP

/* *_core: probe reads through a plain address. */
#define TRF(name)	     name##_core
#define TR(...)		     BPF_CORE_READ(__VA_ARGS__)
#define TR_COPY(dst, src, n) bpf_core_read(dst, n, src)
#define TR_CAP(dst, cred)    bpf_core_read(dst, sizeof(*(dst)), &(cred)->cap_effective)
#include "task_read.bpf.h"
#undef TRF
#undef TR
#undef TR_COPY
#undef TR_CAP

/* The current task. bpf_get_current_task_btf() came in 5.11; on older kernels
 * the relocation below turns the condition false and the verifier never sees
 * that helper call, and the task is read through probe reads instead. */
static __always_inline bool have_task_btf(void)
{
	return bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf);
}

static __always_inline void current_fill(struct cw_task *o)
{
	if (have_task_btf())
		task_fill_btf(o, bpf_get_current_task_btf());
	else
		task_fill_core(o, (struct task_struct *)bpf_get_current_task());
}

static __always_inline void current_ns(__u32 ns[CW_NS_COUNT])
{
	if (have_task_btf())
		task_ns_btf(bpf_get_current_task_btf(), ns, NULL);
	else
		task_ns_core((struct task_struct *)bpf_get_current_task(), ns, NULL);
}

static __always_inline __u64 current_start_ns(void)
{
	if (have_task_btf())
		return bpf_get_current_task_btf()->group_leader->start_boottime;
	return BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), group_leader, start_boottime);
}

static __always_inline struct task_state *follow_get(__u32 tgid, __u64 start_ns)
{
	struct task_state *s = bpf_map_lookup_elem(&tasks, &tgid);

	if (!s || s->start_ns == start_ns)
		return s;
	/* Seeded from /proc (TS_SEEDED): same process when the start agrees to /proc's tick. */
	if ((s->flags & TS_SEEDED) && start_ns / CW_PROC_TICK_NS == s->start_ns / CW_PROC_TICK_NS) {
		s->start_ns = start_ns;
		s->flags &= ~TS_SEEDED;
		return s;
	}
	/* A stale entry of an earlier process with the same pid is not this one. */
	return NULL;
}

static __always_inline void follow_set(__u32 tgid, __u64 start_ns, __u32 flags)
{
	struct task_state *s = bpf_map_lookup_elem(&tasks, &tgid);
	struct task_state n = { .start_ns = start_ns, .flags = flags };

	if (s && s->start_ns == start_ns) {
		s->flags |= flags;
		return;
	}
	if (bpf_map_update_elem(&tasks, &tgid, &n, BPF_ANY))
		stat_inc(CW_STAT_TASKS_FULL);
}

/* A process no entry can describe yet (a new child, or an exec follow_get
 * found no entry for): written without follow_set's lookup, whose answer
 * could only be a stale entry of an earlier pid that this one replaces. */
static __always_inline void follow_new(__u32 tgid, __u64 start_ns, __u32 flags)
{
	struct task_state n = { .start_ns = start_ns, .flags = flags };

	if (bpf_map_update_elem(&tasks, &tgid, &n, BPF_ANY))
		stat_inc(CW_STAT_TASKS_FULL);
}

/* It tried to change namespaces or root (setns, unshare, chroot, pivot_root;
 * failed calls too): its forks are sent again until its next exec. */
static __always_inline void follow_moved(__u32 tgid)
{
	struct task_state *s = bpf_map_lookup_elem(&tasks, &tgid);

	if (s)
		s->flags &= ~TS_HOLD;
}

#endif

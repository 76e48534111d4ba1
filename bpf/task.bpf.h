/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Reading a task's identity, credentials, namespaces and cgroup with CO-RE.
 * Why plain `a->b->c` and not BPF_CORE_READ: the tasks here are BTF pointers
 * (tp_btf arguments, bpf_get_current_task_btf()), so the verifier turns these
 * loads into direct, fault-safe memory reads (still relocated by CO-RE through
 * vmlinux.h's preserve_access_index); BPF_CORE_READ makes one probe-read helper
 * call per hop, which made the host fast path cost over a microsecond.
 * Variable array indexes still need bpf_core_read.
 */
#ifndef CW_TASK_BPF_H
#define CW_TASK_BPF_H

static __always_inline __u32 task_pid_ns(struct task_struct *t, __u32 *nspid)
{
	struct pid *p = t->group_leader->thread_pid;
	unsigned int level = p->level;
	struct upid up = {};

	bpf_core_read(&up, sizeof(up), &p->numbers[level & 31]);
	if (nspid)
		*nspid = up.nr;
	return BPF_CORE_READ(up.ns, ns.inum);
}

static __always_inline void task_ns(struct task_struct *t, __u32 ns[CW_NS_COUNT])
{
	struct nsproxy *nsp = t->nsproxy;

	if (nsp) {
		ns[CW_NS_MNT] = nsp->mnt_ns->ns.inum;
		ns[CW_NS_NET] = nsp->net_ns->ns.inum;
		ns[CW_NS_UTS] = nsp->uts_ns->ns.inum;
		ns[CW_NS_IPC] = nsp->ipc_ns->ns.inum;
		ns[CW_NS_CGROUP] = nsp->cgroup_ns->ns.inum;
		ns[CW_NS_TIME] = nsp->time_ns->ns.inum;
	}
	ns[CW_NS_USER] = t->cred->user_ns->ns.inum;
	ns[CW_NS_PID] = task_pid_ns(t, NULL);
}

/* kernfs id of the task's cgroup in the tracked hierarchy (see cg_subsys). */
static __always_inline __u64 task_cgroup_id(struct task_struct *t)
{
	struct css_set *cs = t->cgroups;
	struct cgroup *cg;
	int i = cg_subsys;

	if (i < 0) {
		cg = cs->dfl_cgrp;
	} else {
		struct cgroup_subsys_state *css = NULL;

		bpf_core_read(&css, sizeof(css), &cs->subsys[i & 15]);
		cg = BPF_CORE_READ(css, cgroup);
	}
	return BPF_CORE_READ(cg, kn, id);
}

static __always_inline bool ns_is_host(const __u32 ns[CW_NS_COUNT])
{
	return ns[CW_NS_MNT] == host_ns[CW_NS_MNT] && ns[CW_NS_PID] == host_ns[CW_NS_PID];
}

static __always_inline void task_fill(struct cw_task *o, struct task_struct *t)
{
	const struct cred *cred = t->cred;
	struct task_struct *parent = t->real_parent;

	o->pid = t->pid;
	o->tgid = t->tgid;
	o->start_ns = t->group_leader->start_boottime;
	o->ppid = parent->tgid;
	o->parent_start_ns = parent->group_leader->start_boottime;
	o->uid = cred->uid.val;
	o->euid = cred->euid.val;
	o->gid = cred->gid.val;
	o->egid = cred->egid.val;
	/* kernel_cap_t is one u64 since 6.3 and two u32 before: same bytes either way. */
	bpf_core_read(&o->cap_effective, sizeof(o->cap_effective), &cred->cap_effective);
	task_ns(t, o->ns);
	task_pid_ns(t, &o->nspid);
	o->cgroup_id = task_cgroup_id(t);
	o->flags = 0;
	if (!ns_is_host(o->ns))
		o->flags |= CW_TF_IN_CONTAINER;
	if (o->pid == o->tgid)
		o->flags |= CW_TF_LEADER;
	__builtin_memcpy(o->comm, t->comm, sizeof(o->comm));
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

#endif

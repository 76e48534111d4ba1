/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * One body for reading a task, compiled twice by task.bpf.h: TR(...) reads a
 * chain of fields, TR_COPY copies bytes, TR_CAP reads the effective
 * capability set (its layout changed in 6.3), TRF(name) names the variant. No
 * include guard on purpose.
 */

/* The pid namespace the task's pid lives in (not its pid_ns_for_children). */
static __always_inline struct pid_namespace *TRF(task_pid_ns_of)(struct task_struct *t, __u32 *nspid)
{
	struct pid *p = TR(t, group_leader, thread_pid);
	unsigned int level = TR(p, level);
	struct upid up = {};

	bpf_core_read(&up, sizeof(up), &p->numbers[level & 31]);
	if (nspid)
		*nspid = up.nr;
	return up.ns;
}

static __always_inline __u32 TRF(task_pid_ns)(struct task_struct *t, __u32 *nspid)
{
	return BPF_CORE_READ(TRF(task_pid_ns_of)(t, nspid), ns.inum);
}

/* nspid, when not NULL: its pid there, from the same read. */
static __always_inline void TRF(task_ns)(struct task_struct *t, __u32 ns[CW_NS_COUNT], __u32 *nspid)
{
	struct nsproxy *nsp = TR(t, nsproxy);

	if (nsp) {
		ns[CW_NS_MNT] = TR(nsp, mnt_ns, ns.inum);
		ns[CW_NS_NET] = TR(nsp, net_ns, ns.inum);
		ns[CW_NS_UTS] = TR(nsp, uts_ns, ns.inum);
		ns[CW_NS_IPC] = TR(nsp, ipc_ns, ns.inum);
		ns[CW_NS_CGROUP] = TR(nsp, cgroup_ns, ns.inum);
		ns[CW_NS_TIME] = TR(nsp, time_ns, ns.inum);
	}
	ns[CW_NS_USER] = TR(t, cred, user_ns, ns.inum);
	ns[CW_NS_PID] = TRF(task_pid_ns)(t, nspid);
}

/* kernfs id of the task's cgroup in the tracked hierarchy (see cg_subsys). */
static __always_inline __u64 TRF(task_cgroup_id)(struct task_struct *t)
{
	struct css_set *cs = TR(t, cgroups);
	struct cgroup_subsys_state *css = NULL;
	int i = cg_subsys;

	/* cgroup2: loads all the way in the _btf reader. A v1 hierarchy is
	 * found by a variable index, which only a probe read can follow. */
	if (i < 0)
		return TR(cs, dfl_cgrp, kn, id);
	bpf_core_read(&css, sizeof(css), &cs->subsys[i & 15]);
	return BPF_CORE_READ(css, cgroup, kn, id);
}

static __always_inline void TRF(task_fill)(struct cw_task *o, struct task_struct *t)
{
	const struct cred *cred = TR(t, cred);
	struct task_struct *parent = TR(t, real_parent);

	o->pid = TR(t, pid);
	o->tgid = TR(t, tgid);
	o->start_ns = TR(t, group_leader, start_boottime);
	o->ppid = TR(parent, tgid);
	o->parent_start_ns = TR(parent, group_leader, start_boottime);
	o->uid = TR(cred, uid.val);
	o->euid = TR(cred, euid.val);
	o->gid = TR(cred, gid.val);
	o->egid = TR(cred, egid.val);
	/* kernel_cap_t is one u64 since 6.3 and two u32 before: same bytes either way. */
	TR_CAP(&o->cap_effective, cred);
	TRF(task_ns)(t, o->ns, &o->nspid);
	o->cgroup_id = TRF(task_cgroup_id)(t);
	o->flags = 0;
	if (!ns_is_host(o->ns))
		o->flags |= CW_TF_IN_CONTAINER;
	if (o->pid == o->tgid)
		o->flags |= CW_TF_LEADER;
	TR_COPY(o->comm, &t->comm, sizeof(o->comm));
}

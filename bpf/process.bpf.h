/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Process life: fork, exec, exit. */
#ifndef CW_PROCESS_BPF_H
#define CW_PROCESS_BPF_H

#define SIGNAL_GROUP_EXIT 0x00000004 /* include/linux/sched/signal.h, not in BTF */

static __always_inline __u32 ns_diff(const __u32 a[CW_NS_COUNT], const __u32 b[CW_NS_COUNT])
{
	__u32 m = 0;

	for (int i = 0; i < CW_NS_COUNT; i++)
		if (a[i] != b[i])
			m |= 1 << i;
	return m;
}

static __always_inline bool in_host_ns(struct task_struct *t)
{
	return t->nsproxy->mnt_ns->ns.inum == host_ns[CW_NS_MNT] && task_pid_ns_btf(t, NULL) == host_ns[CW_NS_PID];
}

/* Whether a child forked with its parent's nsproxy has its parent's pid
 * namespace, by two loads instead of two probe reads of pid->numbers[]: the
 * child's pid lives in the parent's pid_ns_for_children, which unshare and
 * setns set only to the parent's own pid namespace or a descendant of it
 * (pidns_install), so one level deeper or more when it is another. */
static __always_inline bool same_pid_ns(struct task_struct *child, struct task_struct *parent)
{
	return child->thread_pid->level == parent->thread_pid->level;
}

/* The fork of a process whose own fork was held back, sent when it forks in
 * turn before any exec: its children's records then name a parent the
 * consumer knows. Its task as it is now; new namespaces are not claimed
 * (a later unshare or setns sent its own record). */
static __always_inline void fork_send_late(struct cw_fork *r, struct task_struct *t, struct task_state *s)
{
	task_fill_btf(&r->task, t);
	r->task.flags |= CW_TF_FOLLOWED;
	r->new_ns = 0;
	r->late = 1;
	hdr_fill(&r->hdr, CW_FORK, sizeof(*r));
	emit(r, CW_FORK, sizeof(*r), false);
	s->flags &= ~TS_UNSENT;
}

/* TP_PROTO(struct task_struct *parent, struct task_struct *child) */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(cw_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid;
	__u64 pstart = parent->group_leader->start_boottime;
	struct task_state *ps;
	__u32 pns[CW_NS_COUNT] = {};
	struct cw_fork r = {};
	bool followed, same, hold;

	if (child->pid != child->tgid || ptgid == self_tgid)
		return 0; /* a new thread, or the sensor itself */

	/* Fast path for an ordinary host fork: a child that shares its parent's
	 * nsproxy and creds has no new namespace, so unless the parent is followed
	 * or in a container there is nothing to send. */
	ps = follow_get(ptgid, pstart);
	followed = ps && (ps->flags & TS_FOLLOW);
	same = child->nsproxy == parent->nsproxy && child->cred->user_ns == parent->cred->user_ns;
	if (!followed && !trace_all && same && in_host_ns(parent))
		return 0;

	/* Why hold back a followed process's fork: a busy container forks to exec
	 * (shells, build tools), and the child's exec and exit carry everything
	 * its fork would (task, parent, namespaces), so the fork cost a record,
	 * a task read and the consumer's work for nothing. Only while the parent
	 * runs what was exec'd in the namespaces and root it runs in (TS_HOLD): a
	 * sandbox that changed root and never execs is found by its forks
	 * (lifecycle's activity start). A child in other namespaces, user
	 * namespace or cgroup is sent (a child of unshare(CLONE_NEWPID) shares
	 * its parent's nsproxy, not its pid namespace). A held parent is sent late
	 * first, so that every record names a parent the consumer knows. */
	hold = followed && !trace_all && same && (ps->flags & TS_HOLD) && child->cgroups == parent->cgroups &&
	       same_pid_ns(child, parent);
	if (followed && (ps->flags & TS_UNSENT)) {
		fork_send_late(&r, parent, ps);
		r.late = 0;
	}
	if (hold) {
		follow_new(child->tgid, child->start_boottime, TS_FOLLOW | TS_UNSENT | TS_HOLD);
		stat_inc(CW_STAT_FORKS_HELD);
		return 0;
	}

	task_fill_btf(&r.task, child);
	task_ns_btf(parent, pns, NULL);
	r.new_ns = ns_diff(r.task.ns, pns);
	followed = followed || r.new_ns || (r.task.flags & CW_TF_IN_CONTAINER);
	if (followed) {
		r.task.flags |= CW_TF_FOLLOWED;
		follow_new(r.task.tgid, r.task.start_ns, TS_FOLLOW);
	}
	hdr_fill(&r.hdr, CW_FORK, sizeof(r));
	emit(&r, CW_FORK, sizeof(r), r.new_ns != 0);
	return 0;
}

/* TP_PROTO(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm) */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(cw_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct cw_exec *e = scratch_get();
	struct inode *ino;
	struct task_state *s;
	unsigned long as, ae;
	__u64 len;
	long fl;
	bool followed, start;

	if (!e || p->tgid == self_tgid)
		return 0;

	/* An ordinary host process's exec is sent only when its program is
	 * container tooling (runtimes, their CLIs, nsenter, unshare, chroot…) or
	 * the kernel started it (a usermode helper, child of kthreadd). */
	s = follow_get(p->tgid, p->group_leader->start_boottime);
	followed = (s && (s->flags & TS_FOLLOW)) || !in_host_ns(p);
	if (!followed && !exec_all && p->real_parent->tgid != 2) {
		char key[CW_COMM_LEN] = {};

		/* Up to its NUL only: older kernels (5.10) set comm with strlcpy, which
		 * leaves the previous, longer name's bytes after the NUL in the key. */
		bpf_probe_read_kernel_str(key, sizeof(key), p->comm);
		if (!bpf_map_lookup_elem(&exec_names, key))
			return 0;
	}

	task_fill_btf(&e->task, p);
	/* A container's init execs its entrypoint: the start, which wakes the
	 * consumer past the wake gap (emit_rec). Once per process: a pid 1 that
	 * execs again is held to the gap like any other urgent record. */
	start = e->task.nspid == 1 && (e->task.flags & CW_TF_IN_CONTAINER) && !(s && (s->flags & TS_START_SENT));
	if (followed) {
		e->task.flags |= CW_TF_FOLLOWED;
		/* The exec says all a held-back fork would have. */
		if (!s)
			follow_new(e->task.tgid, e->task.start_ns, TS_FOLLOW | TS_HOLD | (start ? TS_START_SENT : 0));
		else
			s->flags = (s->flags & ~TS_UNSENT) | TS_HOLD | (start ? TS_START_SENT : 0);
	}

	e->old_pid = old_pid;
	/* The filename, its NUL included; unreadable, an empty one. */
	fl = bpf_probe_read_kernel_str(e->data, CW_FILENAME_LEN, bprm->filename);
	if (fl < 1 || fl > CW_FILENAME_LEN) {
		e->data[0] = 0;
		fl = 1;
	}
	e->filename_len = fl;
	e->_pad0 = 0;
	ino = bprm->file->f_inode;
	e->exe_ino = ino->i_ino;
	e->exe_dev = ino->i_sb->s_dev;
	e->exe_fs_magic = ino->i_sb->s_magic;
	e->exe_nlink = ino->__i_nlink;
	inode_times(ino, &e->exe_mtime, &e->exe_ctime);

	/* argv as the new image sees it, right after the filename: NUL-separated,
	 * at most CW_ARGS_LEN bytes. */
	as = p->mm->arg_start;
	ae = p->mm->arg_end;
	len = ae > as ? ae - as : 0;
	e->args_truncated = len > CW_ARGS_LEN;
	if (len > CW_ARGS_LEN)
		len = CW_ARGS_LEN;
	barrier_var(len);
	barrier_var(fl);
	/* fl checked again: the verifier must see both bounds on the registers
	 * this call uses, or it cannot prove data + fl + len stays in the record. */
	if (len > 0 && len <= CW_ARGS_LEN && fl >= 1 && fl <= CW_FILENAME_LEN &&
	    bpf_probe_read_user(e->data + fl, len, (void *)as)) {
		stat_inc(CW_STAT_ARGS_FAULT);
		len = 0;
	}
	e->args_len = len;
	len = CW_EXEC_FIXED_SIZE + ((fl + len + 7) & ~7ULL);
	if (len > sizeof(*e))
		len = sizeof(*e);
	hdr_fill(&e->hdr, CW_EXEC, len);
	emit_rec(e, CW_EXEC, len, followed, start && followed);
	return 0;
}

/* TP_PROTO(struct task_struct *p, bool group_dead); group_dead came in 6.16,
 * so it is derived from signal->live to load on older kernels too. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(cw_exit, struct task_struct *p)
{
	struct signal_struct *sig = p->signal;
	__u32 tgid = p->tgid;
	__u64 start = p->group_leader->start_boottime;
	struct task_state *s;
	struct cw_exit r = {};
	bool followed;

	if (sig->live.counter != 0 || tgid == self_tgid)
		return 0; /* other threads still run: the process has not exited */
	s = follow_get(tgid, start);
	if (!s && !trace_all)
		return 0;
	followed = s && (s->flags & TS_FOLLOW);
	bpf_map_delete_elem(&tasks, &tgid);

	task_fill_btf(&r.task, p);
	if (followed)
		r.task.flags |= CW_TF_FOLLOWED;
	if (sig->flags & SIGNAL_GROUP_EXIT)
		r.exit_code = sig->group_exit_code;
	else
		r.exit_code = p->exit_code;
	hdr_fill(&r.hdr, CW_EXIT, sizeof(r));
	emit(&r, CW_EXIT, sizeof(r), followed);
	return 0;
}

#endif

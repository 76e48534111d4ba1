/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Protecting the sensor: signals and ptrace aimed at it, bpf() and
 * io_uring_setup() from containers (the limits on what a process may send
 * are in limits.bpf.h).
 */
#ifndef CW_GUARD_BPF_H
#define CW_GUARD_BPF_H

/*
 * Signals to the sensor: the kernel's own signal generation point, so kill,
 * tgkill, sigqueue, pidfd_send_signal and a process group signal all pass
 * here. Only signals a process sends are its act: those carry no siginfo
 * (SEND_SIG_NOINFO, 0) or a user si_code (<= 0: SI_USER, SI_QUEUE, SI_TKILL;
 * rt_sigqueueinfo refuses a positive code to another process), and are
 * generated in the sender's own syscall, so current is the sender. Signals the
 * kernel makes (SEND_SIG_PRIV, or a positive code: a child's death notice,
 * SIGIO, a fault) may be generated in interrupt context with any task as
 * current, and are left out; so are the sensor's own.
 * TP_PROTO(int sig, struct kernel_siginfo *info, struct task_struct *task, int group, int result)
 */
SEC("tp_btf/signal_generate")
int BPF_PROG(cw_signal, int sig, struct kernel_siginfo *info, struct task_struct *task, int group, int result)
{
	__u32 sender = bpf_get_current_pid_tgid() >> 32;
	struct cw_guard r = {};

	if (task->tgid != self_tgid || sender == self_tgid || (unsigned long)info == 1)
		return 0;
	if ((unsigned long)info > 1) {
		r.code = BPF_CORE_READ(info, si_code);
		if (r.code > 0)
			return 0;
	}
	/* Before the bucket: a rate-limited sender is still stopped. Here irqs are
	 * off (the target's siglock), so the kill is queued as irq work, done
	 * before the sender returns to user space. */
	contain_current(&r.kill, CW_KC_SENSOR_SIGNAL, NULL);
	if (!bucket_take(sender, CW_BUCKET_GUARD))
		return 0;
	current_fill(&r.task);
	r.what = CW_GUARD_SIGNAL;
	r.target_tid = task->pid;
	r.sig = sig;
	r.result = result;
	hdr_fill(&r.hdr, CW_GUARD, sizeof(r));
	emit(&r, CW_GUARD, sizeof(r), true);
	return 0;
}

/*
 * ptrace of the sensor, by any of its threads. Every attach (PTRACE_ATTACH,
 * PTRACE_SEIZE) is stashed at entry from its arguments alone (rare calls);
 * at exit:
 *  - success: the kernel has just linked the tracee at the head of the
 *    tracer's `ptraced` list, so the tracee is read from there, whatever pid
 *    namespace the tracer named it in;
 *  - failure: the pid named is a number in the tracer's own pid namespace;
 *    the sensor runs in the host's, so it is the sensor when the tracer is in
 *    the host's pid namespace (a container sharing it, or a host process) and
 *    the number is the sensor's tgid.
 */
#define CW_PTRACE_ATTACH 16
#define CW_PTRACE_SEIZE	 0x4206

struct ptrace_try {
	__u32 request;
	__u32 tid;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct ptrace_try);
} ptrace_tries SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_ptrace")
int cw_guard_enter_ptrace(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 req = ctx->args[0];
	struct ptrace_try t = { .request = req, .tid = ctx->args[1] };

	if (req != CW_PTRACE_ATTACH && req != CW_PTRACE_SEIZE)
		return 0;
	bpf_map_update_elem(&ptrace_tries, &id, &t, BPF_ANY);
	return 0;
}

/* The tgid and tid of the tracee the current task attached last, or 0. */
static __always_inline __u32 last_tracee(__u32 *tid)
{
	struct task_struct *cur = (struct task_struct *)bpf_get_current_task();
	struct list_head *head = &cur->ptraced;
	struct list_head *first = BPF_CORE_READ(cur, ptraced.next);
	struct task_struct *tracee;

	if (!first || first == head)
		return 0;
	tracee = (void *)first - bpf_core_field_offset(struct task_struct, ptrace_entry);
	*tid = BPF_CORE_READ(tracee, pid);
	return BPF_CORE_READ(tracee, tgid);
}

SEC("tracepoint/syscalls/sys_exit_ptrace")
int cw_guard_exit_ptrace(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ptrace_try *t = bpf_map_lookup_elem(&ptrace_tries, &id);
	struct cw_guard r = {};
	long ret = ctx->ret;
	__u32 tid = 0;

	if (!t)
		return 0;
	r.sig = t->request;
	r.target_tid = t->tid;
	bpf_map_delete_elem(&ptrace_tries, &id);
	if (ret == 0) {
		if (last_tracee(&tid) != self_tgid)
			return 0;
		r.target_tid = tid;
	} else {
		struct task_struct *cur = (struct task_struct *)bpf_get_current_task();
		struct pid *p = BPF_CORE_READ(cur, group_leader, thread_pid);
		unsigned int level = BPF_CORE_READ(p, level);
		struct upid up = {};

		if (r.target_tid != self_tgid)
			return 0;
		bpf_core_read(&up, sizeof(up), &p->numbers[level & 31]);
		if (BPF_CORE_READ(up.ns, ns.inum) != host_ns[CW_NS_PID])
			return 0;
	}
	if ((id >> 32) == self_tgid || !bucket_take(id >> 32, CW_BUCKET_GUARD))
		return 0;
	r.what = CW_GUARD_PTRACE;
	r.result = ret;
	current_fill(&r.task);
	hdr_fill(&r.hdr, CW_GUARD, sizeof(r));
	emit(&r, CW_GUARD, sizeof(r), true);
	return 0;
}

/*
 * bpf() and io_uring_setup() from a followed or in-container process: the
 * usual syscall record (sc_enter/sc_exit). bpf() is called by host tools too,
 * so the follow set is looked up first and, only when the process is not in
 * it, its mount namespace read (a container's key; three probe reads).
 */
#define CW_BPF_ATTR_PEEK 8

SEC("tracepoint/syscalls/sys_enter_bpf")
int cw_guard_enter_bpf(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct cw_syscall *r;

	if ((id >> 32) == self_tgid || (!followed_tgid(id >> 32) && !current_mnt_not_host()))
		return 0;
	sc_enter(CW_SC_BPF, 3, ctx);
	/* The attr's first 8 bytes: map_id/prog_id of a GET_FD_BY_ID, map_fd of an update or delete. */
	r = bpf_map_lookup_elem(&pending, &id);
	if (r && r->sc == CW_SC_BPF && bpf_probe_read_user(&r->args[3], CW_BPF_ATTR_PEEK, (void *)ctx->args[1]))
		r->args[3] = 0;
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_bpf")
int cw_guard_exit_bpf(struct trace_event_raw_sys_exit *ctx)
{
	return sc_exit(ctx);
}

SEC("tracepoint/syscalls/sys_enter_io_uring_setup")
int cw_guard_enter_io_uring_setup(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();

	if ((id >> 32) == self_tgid || (!followed_tgid(id >> 32) && !current_mnt_not_host()))
		return 0;
	return sc_enter(CW_SC_IO_URING_SETUP, 2, ctx);
}

SEC("tracepoint/syscalls/sys_exit_io_uring_setup")
int cw_guard_exit_io_uring_setup(struct trace_event_raw_sys_exit *ctx)
{
	return sc_exit(ctx);
}

#endif

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The rare syscalls that change namespaces or roots: setns, unshare, mount,
 * chroot, pivot_root, ptrace. Per-syscall tracepoints fire only for these
 * calls (a raw sys_enter hook would run on every syscall of the node); the
 * enter half stashes arguments and the old namespaces, the exit half adds the
 * result and the new namespaces and sends one record.
 */
#ifndef CW_SYSCALL_BPF_H
#define CW_SYSCALL_BPF_H

/* nargs: the syscall's argument count. Reading ctx past the tracepoint's own
 * record makes the attach fail with EACCES, so only those are read. */
static const struct cw_syscall sc_zero = {};

static __always_inline int sc_enter(__u32 sc, int nargs, struct trace_event_raw_sys_enter *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();
	__u64 id = bpf_get_current_pid_tgid();
	struct cw_syscall *r;

	if ((id >> 32) == self_tgid)
		return 0;
	if (bpf_map_update_elem(&pending, &id, &sc_zero, BPF_ANY)) {
		stat_inc(CW_STAT_PENDING_FULL);
		return 0;
	}
	r = bpf_map_lookup_elem(&pending, &id);
	if (!r)
		return 0;
	r->sc = sc;
	r->ret = 0;
	/* ctx must be read at constant offsets: no loop here. */
	r->args[0] = ctx->args[0];
	r->args[1] = nargs > 1 ? ctx->args[1] : 0;
	r->args[2] = nargs > 2 ? ctx->args[2] : 0;
	r->args[3] = nargs > 3 ? ctx->args[3] : 0;
	task_ns(t, r->old_ns);
	switch (sc) {
	case CW_SC_MOUNT: /* (dev_name, dir_name, type, flags, data) */
		bpf_probe_read_user_str(r->path0, sizeof(r->path0), (void *)ctx->args[0]);
		bpf_probe_read_user_str(r->path1, sizeof(r->path1), (void *)ctx->args[1]);
		bpf_probe_read_user_str(r->fstype, sizeof(r->fstype), (void *)ctx->args[2]);
		r->args[0] = ctx->args[3];
		r->args[1] = r->args[2] = r->args[3] = 0;
		break;
	case CW_SC_CHROOT:
		bpf_probe_read_user_str(r->path0, sizeof(r->path0), (void *)ctx->args[0]);
		break;
	case CW_SC_PIVOT_ROOT:
		bpf_probe_read_user_str(r->path0, sizeof(r->path0), (void *)ctx->args[0]);
		bpf_probe_read_user_str(r->path1, sizeof(r->path1), (void *)ctx->args[1]);
		break;
	}
	return 0;
}

static __always_inline int sc_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct cw_syscall *r = bpf_map_lookup_elem(&pending, &id);

	if (!r)
		return 0;
	r->ret = ctx->ret;
	task_fill(&r->task, bpf_get_current_task_btf());
	/* A process that moved itself into other namespaces is followed from now on. */
	if ((r->sc == CW_SC_SETNS || r->sc == CW_SC_UNSHARE) && r->ret == 0) {
		follow_set(r->task.tgid, r->task.start_ns, TS_FOLLOW);
		r->task.flags |= CW_TF_FOLLOWED;
	}
	hdr_fill(&r->hdr, CW_SYSCALL, sizeof(*r));
	emit(r, CW_SYSCALL, sizeof(*r), true);
	bpf_map_delete_elem(&pending, &id);
	return 0;
}

#define CW_SYSCALL_PAIR(name, sc, nargs)                                           \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                \
	int cw_enter_##name(struct trace_event_raw_sys_enter *ctx) { return sc_enter(sc, nargs, ctx); } \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                 \
	int cw_exit_##name(struct trace_event_raw_sys_exit *ctx) { return sc_exit(ctx); }

CW_SYSCALL_PAIR(init_module, CW_SC_INIT_MODULE, 3)
CW_SYSCALL_PAIR(finit_module, CW_SC_FINIT_MODULE, 3)
CW_SYSCALL_PAIR(setns, CW_SC_SETNS, 2)
CW_SYSCALL_PAIR(unshare, CW_SC_UNSHARE, 1)
CW_SYSCALL_PAIR(mount, CW_SC_MOUNT, 5)
CW_SYSCALL_PAIR(chroot, CW_SC_CHROOT, 1)
CW_SYSCALL_PAIR(pivot_root, CW_SC_PIVOT_ROOT, 2)
CW_SYSCALL_PAIR(ptrace, CW_SC_PTRACE, 4)


/*
 * connect runs constantly on a node, so it sends at entry, and only after
 * cheap filters: a connect from a followed process to a unix socket path
 * ending in ".sock". Built in the pending map (keyed by thread) because these
 * programs are preemptible. (Opens of kernel control files: file.bpf.h.)
 */
#define AF_UNIX 1

static __always_inline bool ends_with(const char *s, long len, const char *pat, int plen)
{
	if (len < plen)
		return false;
	for (int i = 0; i < plen; i++)
		if (s[(len - plen + i) & (CW_SCPATH_LEN - 1)] != pat[i])
			return false;
	return true;
}

static __always_inline bool followed_now(void)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct task_state *s = follow_get(t->tgid, t->group_leader->start_boottime);

	return s && (s->flags & TS_FOLLOW);
}

static __always_inline struct cw_syscall *sc_begin(__u32 sc, __u64 id)
{
	struct cw_syscall *r;

	if (bpf_map_update_elem(&pending, &id, &sc_zero, BPF_ANY)) {
		stat_inc(CW_STAT_PENDING_FULL);
		return NULL;
	}
	r = bpf_map_lookup_elem(&pending, &id);
	if (r)
		r->sc = sc;
	return r;
}

static __always_inline void sc_send_now(struct cw_syscall *r, __u64 id)
{
	struct task_struct *t = bpf_get_current_task_btf();

	task_fill(&r->task, t);
	__builtin_memcpy(r->old_ns, r->task.ns, sizeof(r->old_ns));
	hdr_fill(&r->hdr, CW_SYSCALL, sizeof(*r));
	emit(r, CW_SYSCALL, sizeof(*r), true);
	bpf_map_delete_elem(&pending, &id);
}

SEC("tracepoint/syscalls/sys_enter_connect")
int cw_enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	const char *addr = (const char *)ctx->args[1];
	struct cw_syscall *r;
	__u16 family = 0;
	long n;

	if ((id >> 32) == self_tgid || ctx->args[2] <= 2 || !followed_now())
		return 0;
	if (bpf_probe_read_user(&family, sizeof(family), addr) || family != AF_UNIX)
		return 0;
	r = sc_begin(CW_SC_CONNECT_UNIX, id);
	if (!r)
		return 0;
	n = bpf_probe_read_user_str(r->path0, 108, addr + 2) - 1;
	if (n > 0 && r->path0[0] && (ends_with(r->path0, n, ".sock", 5) || ends_with(r->path0, n, ".sock.ttrpc", 11))) {
		r->args[0] = ctx->args[0];
		sc_send_now(r, id);
		return 0;
	}
	bpf_map_delete_elem(&pending, &id);
	return 0;
}

#endif

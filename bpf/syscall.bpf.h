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
	current_ns(r->old_ns);
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
	current_fill(&r->task);
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
 * open/openat and connect run constantly on a node, so these two send at
 * entry, and only after cheap filters: a write-open from a followed process
 * of a file named like a kernel control file; a connect from a followed
 * process to a unix socket path ending in ".sock". Built in the pending map
 * (keyed by thread) because these programs are preemptible.
 */
#define O_ACCMODE 00000003
#define O_CREAT 00000100
#define O_TRUNC 00001000
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
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct task_state *s = bpf_map_lookup_elem(&tasks, &tgid);

	/* Most processes are not followed: no task read for them. */
	return s && (s->flags & TS_FOLLOW) && s->start_ns == current_start_ns();
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
	current_fill(&r->task);
	__builtin_memcpy(r->old_ns, r->task.ns, sizeof(r->old_ns));
	hdr_fill(&r->hdr, CW_SYSCALL, sizeof(*r));
	emit(r, CW_SYSCALL, sizeof(*r), true);
	bpf_map_delete_elem(&pending, &id);
}

static __always_inline int open_enter(const char *upath, __u64 flags)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct cw_syscall *r;
	long n;

	if ((flags & O_ACCMODE) == 0 && !(flags & (O_CREAT | O_TRUNC)))
		return 0; /* read-only: by far the most opens */
	if ((id >> 32) == self_tgid || !followed_now())
		return 0;
	r = sc_begin(CW_SC_OPEN_WRITE, id);
	if (!r)
		return 0;
	n = bpf_probe_read_user_str(r->path0, sizeof(r->path0), upath) - 1;
	if (n > 0 && (ends_with(r->path0, n, "release_agent", 13) || ends_with(r->path0, n, "notify_on_release", 17) ||
		      ends_with(r->path0, n, "core_pattern", 12) || ends_with(r->path0, n, "uevent_helper", 13) ||
		      ends_with(r->path0, n, "kernel/modprobe", 15) || ends_with(r->path0, n, "sysrq-trigger", 13))) {
		r->args[0] = flags;
		sc_send_now(r, id);
		return 0;
	}
	bpf_map_delete_elem(&pending, &id);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int cw_enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	return open_enter((const char *)ctx->args[1], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_open")
int cw_enter_open(struct trace_event_raw_sys_enter *ctx)
{
	return open_enter((const char *)ctx->args[0], ctx->args[1]);
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

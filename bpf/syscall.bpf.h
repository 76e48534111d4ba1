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

#define SC_PTRACE_ATTACH 16
#define SC_PTRACE_SEIZE	 0x4206

/* The escape classes a cw_syscall record can be: setns into the host, bpf()
 * (any command, refused or not: the policy armed it), a ptrace attach that
 * succeeded on a process outside the actor's container. */
static __always_inline void sc_contain(struct cw_syscall *r)
{
	switch (r->sc) {
	/* runc exec and nsenter call setns all day: the namespaces are read only when the class is armed. */
	case CW_SC_SETNS:
		if (r->ret == 0 && contain_armed(CW_KC_SETNS_HOST) != CW_ARM_REPORT && contain_joined_host(r->old_ns))
			contain_current(&r->kill, CW_KC_SETNS_HOST, NULL);
		break;
	case CW_SC_BPF:
		contain_current(&r->kill, CW_KC_BPF, NULL);
		break;
	case CW_SC_PTRACE:
		if (r->ret == 0 && (r->args[0] == SC_PTRACE_ATTACH || r->args[0] == SC_PTRACE_SEIZE) &&
		    contain_armed(CW_KC_PTRACE_HOST) != CW_ARM_REPORT) {
			struct task_struct *tracee = contain_last_tracee();

			if (tracee)
				contain_current(&r->kill, CW_KC_PTRACE_HOST, tracee);
		}
		break;
	}
}

static __always_inline int sc_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct cw_syscall *r = bpf_map_lookup_elem(&pending, &id);

	if (!r)
		return 0;
	r->ret = ctx->ret;
	if (r->sc == CW_SC_SETNS || r->sc == CW_SC_UNSHARE || r->sc == CW_SC_CHROOT || r->sc == CW_SC_PIVOT_ROOT)
		follow_moved(id >> 32);
	/* Containment before the ring's admission: a rate-limited record still kills. */
	sc_contain(r);
	if (!guard_admit_sc(id, ctx->ret)) {
		bpf_map_delete_elem(&pending, &id);
		return 0;
	}
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

#define CW_SYSCALL_PAIR(name, sc, nargs)                           \
	SEC("tracepoint/syscalls/sys_enter_" #name)                \
	int cw_enter_##name(struct trace_event_raw_sys_enter *ctx) \
	{                                                          \
		return sc_enter(sc, nargs, ctx);                   \
	}                                                          \
	SEC("tracepoint/syscalls/sys_exit_" #name)                 \
	int cw_exit_##name(struct trace_event_raw_sys_exit *ctx)   \
	{                                                          \
		return sc_exit(ctx);                               \
	}

CW_SYSCALL_PAIR(init_module, CW_SC_INIT_MODULE, 3)
CW_SYSCALL_PAIR(finit_module, CW_SC_FINIT_MODULE, 3)
CW_SYSCALL_PAIR(setns, CW_SC_SETNS, 2)
CW_SYSCALL_PAIR(unshare, CW_SC_UNSHARE, 1)
CW_SYSCALL_PAIR(mount, CW_SC_MOUNT, 5)
CW_SYSCALL_PAIR(chroot, CW_SC_CHROOT, 1)
CW_SYSCALL_PAIR(pivot_root, CW_SC_PIVOT_ROOT, 2)
CW_SYSCALL_PAIR(ptrace, CW_SC_PTRACE, 4)

#endif

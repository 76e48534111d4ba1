/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The memory door: another process's memory or files. /proc/<pid>/mem is the
 * file door's (file.bpf.h); here process_vm_writev and pidfd_getfd.
 *
 * pidfd_getfd names its target by a pidfd, read at exit to the struct pid
 * behind it. process_vm_writev names it by a pid number in the caller's pid
 * namespace; there is no helper to resolve that in the kernel, so the record
 * carries that number (CW_OF_TARGET_VPID) and user space resolves it: from a
 * pid namespace of its own, a container can only name processes inside it.
 */
#ifndef CW_MEMORY_BPF_H
#define CW_MEMORY_BPF_H

static __always_inline int mem_enter(__u32 sc, __u64 arg0)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct cw_obj *o;

	if (!obj_followed(id))
		return 0;
	o = obj_begin(id, sc, 0);
	if (o)
		o->ino = arg0; /* pid or pidfd until exit */
	return 0;
}

/* process_vm_writev(pid, lvec, liovcnt, rvec, riovcnt, flags) */
SEC("tracepoint/syscalls/sys_enter_process_vm_writev")
int cw_mem_enter_pvw(struct trace_event_raw_sys_enter *ctx)
{
	return mem_enter(CW_SC_PROCESS_VM_WRITEV, ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_exit_process_vm_writev")
int cw_mem_exit_pvw(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct cw_obj *o = obj_resume(id, CW_SC_PROCESS_VM_WRITEV, CW_SC_PROCESS_VM_WRITEV);
	struct pid *ap;
	unsigned int level;

	if (!o)
		return 0;
	o->target_tgid = o->ino;
	o->ino = 0;
	o->oflags |= CW_OF_TARGET | CW_OF_TARGET_VPID;
	ap = BPF_CORE_READ(obj_current(), group_leader, thread_pid);
	level = BPF_CORE_READ(ap, level);
	o->target_pidns = BPF_CORE_READ(pid_ns_at(ap, level), ns.inum);
	obj_send(o, id, ctx->ret);
	return 0;
}

/* pidfd_getfd(pidfd, targetfd, flags) */
SEC("tracepoint/syscalls/sys_enter_pidfd_getfd")
int cw_mem_enter_getfd(struct trace_event_raw_sys_enter *ctx)
{
	return mem_enter(CW_SC_PIDFD_GETFD, ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_exit_pidfd_getfd")
int cw_mem_exit_getfd(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct cw_obj *o = obj_resume(id, CW_SC_PIDFD_GETFD, CW_SC_PIDFD_GETFD);
	struct file *f;
	struct pid *p = NULL;

	if (!o)
		return 0;
	f = obj_fd_file((int)o->ino);
	o->ino = 0;
	if (f) {
		/* A pidfd's struct pid: the pidfs inode's i_private since 6.9, the
		 * file's private_data before. */
		if (BPF_CORE_READ(f, f_inode, i_sb, s_magic) == PID_FS_MAGIC)
			p = BPF_CORE_READ(f, f_inode, i_private);
		else
			p = BPF_CORE_READ(f, private_data);
	}
	if (p)
		obj_target(o, p);
	obj_send(o, id, ctx->ret);
	return 0;
}

#endif

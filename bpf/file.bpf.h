/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The file door: open, openat, openat2, creat and open_by_handle_at of a
 * kernel control file (cgroup v1 release_agent / notify_on_release, procfs
 * core_pattern, modprobe, hotplug, sysrq-trigger, another process's
 * /proc/<pid>/mem, sysfs uevent_helper) for writing.
 *
 * Decided at sys_exit from the struct file installed at fd `ret`: its mode,
 * its superblock's magic and its dentry chain. The path string passed never
 * decides, so symlinks, paths longer than any buffer, reopening an O_PATH fd
 * through /proc/self/fd, openat2, relative dirfds and file handles (cgroup v1
 * files have them) all end at the same file.
 *
 * open runs constantly on a node: the enter half only stashes write opens
 * (flags first, then the follow set by tgid) and the exit half of every other
 * open is one hash lookup that misses, then token.bpf.h's check (one global
 * load until a service-account volume is registered, then the follow set).
 */
#ifndef CW_FILE_BPF_H
#define CW_FILE_BPF_H

#define O_ACCMODE 00000003
#define O_CREAT	  00000100
#define O_TRUNC	  00001000
#define O_PATH	  010000000

static __always_inline bool open_writes(__u64 flags)
{
	if (flags & O_PATH)
		return false;
	return (flags & O_ACCMODE) != 0 || (flags & (O_CREAT | O_TRUNC));
}

static __always_inline int file_enter(__u32 sc, __u64 flags, const char *upath)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct cw_obj *o;

	/* Read-opens too once a killed mount is left behind (contain.bpf.h). */
	if ((!open_writes(flags) && !taint_any) || !obj_followed(id))
		return 0;
	o = obj_begin(id, sc, flags);
	if (o && upath)
		bpf_probe_read_user_str(o->path, sizeof(o->path), upath);
	return 0;
}

static __always_inline bool name_is(const char *s, const char *lit, int n)
{
	for (int i = 0; i < n; i++)
		if (s[i] != lit[i])
			return false;
	return true;
}
#define NAME_IS(s, lit) name_is(s, lit, sizeof(lit))

/* Whether file f is a kernel control file open for writing; fills o. *target:
 * the process whose /proc/<pid>/mem it is, or NULL. */
static __always_inline bool file_is_control(struct cw_obj *o, struct file *f, struct task_struct **target)
{
	char leaf[CW_NAME_LEN] = {};
	struct super_block *sb;
	struct dentry *d;
	bool hit = false;

	if (!f)
		return false;
	o->f_mode = BPF_CORE_READ(f, f_mode);
	if (!(o->f_mode & FMODE_WRITE))
		return false;
	d = BPF_CORE_READ(f, f_path.dentry);
	sb = BPF_CORE_READ(d, d_sb);
	bpf_probe_read_kernel_str(leaf, sizeof(leaf), BPF_CORE_READ(d, d_name.name));
	switch (BPF_CORE_READ(sb, s_magic)) {
	case CGROUP_SUPER_MAGIC:
		hit = NAME_IS(leaf, "release_agent") || NAME_IS(leaf, "notify_on_release");
		break;
	case SYSFS_MAGIC:
		hit = NAME_IS(leaf, "uevent_helper");
		break;
	case PROC_SUPER_MAGIC:
		hit = NAME_IS(leaf, "core_pattern") || NAME_IS(leaf, "modprobe") || NAME_IS(leaf, "hotplug") ||
		      NAME_IS(leaf, "sysrq-trigger");
		if (!hit && NAME_IS(leaf, "mem")) {
			/* /proc/<pid>/mem: the proc inode names the process. */
			struct inode *ino = BPF_CORE_READ(f, f_inode);
			struct proc_inode *pi =
				(struct proc_inode *)((void *)ino -
						      bpf_core_field_offset(struct proc_inode, vfs_inode));
			struct pid *p = BPF_CORE_READ(pi, pid);

			/* Its own memory is any process's business: not sent. */
			if (p) {
				*target = obj_target(o, p);
				hit = o->target_tgid != (__u32)(bpf_get_current_pid_tgid() >> 32);
			}
		}
		break;
	}
	if (!hit)
		return false;
	o->oflags |= CW_OF_FILE;
	obj_vfsmount(o, BPF_CORE_READ(f, f_path.mnt));
	obj_chain(o, d);
	return true;
}

static __always_inline int file_exit(long ret, __u32 sc)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct cw_obj *o = bpf_map_lookup_elem(&objs, &id);
	struct task_struct *target = NULL;

	if (!o)
		goto token;
	if ((o->sc < CW_SC_OPEN || o->sc > CW_SC_CREAT) && o->sc != CW_SC_OPEN_BY_HANDLE_AT) {
		bpf_map_delete_elem(&objs, &id); /* a stale half of another door */
		goto token;
	}
	if (ret >= 0 && file_is_control(o, obj_fd_file(ret), &target)) {
		if (o->oflags & CW_OF_TARGET)
			contain_current(&o->kill, CW_KC_PROC_MEM, target);
		else
			contain_current(&o->kill, CW_KC_CONTROL_WRITE, NULL);
		obj_send(o, id, ret);
		return 0;
	}
	/* Any open of a file on a mount whose maker was killed. */
	if (ret >= 0 && taint_any) {
		__u32 cls = contain_tainted_file(o, obj_fd_file(ret));

		if (cls != CW_KC_NONE) {
			contain_current(&o->kill, cls, NULL);
			obj_send(o, id, ret);
			return 0;
		}
	}
	/* Refused by the BPF-LSM hook (lsm.bpf.h), which filled the record. */
	if (ret < 0 && o->kill.outcome == CW_KO_DENIED) {
		obj_send(o, id, ret);
		return 0;
	}
	bpf_map_delete_elem(&objs, &id);
token:
	/* Read-opens are not stashed at enter: a service-account token is decided here alone. */
	return token_open(id, sc, ret);
}

SEC("tracepoint/syscalls/sys_enter_open")
int cw_file_enter_open(struct trace_event_raw_sys_enter *ctx)
{
	return file_enter(CW_SC_OPEN, ctx->args[1], (const char *)ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int cw_file_enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	return file_enter(CW_SC_OPENAT, ctx->args[2], (const char *)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_enter_creat")
int cw_file_enter_creat(struct trace_event_raw_sys_enter *ctx)
{
	return file_enter(CW_SC_CREAT, O_CREAT | O_TRUNC | 1, (const char *)ctx->args[0]);
}

/* openat2(dfd, filename, struct open_how *how, size): the flags are behind a
 * user pointer, read only once the process is known to be followed. */
SEC("tracepoint/syscalls/sys_enter_openat2")
int cw_file_enter_openat2(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 flags = 0;
	struct cw_obj *o;

	if (!obj_followed(id) || bpf_probe_read_user(&flags, sizeof(flags), (void *)ctx->args[2]) ||
	    (!open_writes(flags) && !taint_any))
		return 0;
	o = obj_begin(id, CW_SC_OPENAT2, flags);
	if (o)
		bpf_probe_read_user_str(o->path, sizeof(o->path), (const char *)ctx->args[1]);
	return 0;
}

/* open_by_handle_at(mount_fd, handle, flags): no path at all. */
SEC("tracepoint/syscalls/sys_enter_open_by_handle_at")
int cw_file_enter_by_handle(struct trace_event_raw_sys_enter *ctx)
{
	return file_enter(CW_SC_OPEN_BY_HANDLE_AT, ctx->args[2], NULL);
}

SEC("tracepoint/syscalls/sys_exit_open")
int cw_file_exit_open(struct trace_event_raw_sys_exit *ctx)
{
	return file_exit(ctx->ret, CW_SC_OPEN);
}
SEC("tracepoint/syscalls/sys_exit_openat")
int cw_file_exit_openat(struct trace_event_raw_sys_exit *ctx)
{
	return file_exit(ctx->ret, CW_SC_OPENAT);
}
SEC("tracepoint/syscalls/sys_exit_openat2")
int cw_file_exit_openat2(struct trace_event_raw_sys_exit *ctx)
{
	return file_exit(ctx->ret, CW_SC_OPENAT2);
}
SEC("tracepoint/syscalls/sys_exit_creat")
int cw_file_exit_creat(struct trace_event_raw_sys_exit *ctx)
{
	return file_exit(ctx->ret, CW_SC_CREAT);
}
SEC("tracepoint/syscalls/sys_exit_open_by_handle_at")
int cw_file_exit_by_handle(struct trace_event_raw_sys_exit *ctx)
{
	return file_exit(ctx->ret, CW_SC_OPEN_BY_HANDLE_AT);
}

#endif

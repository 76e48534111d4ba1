/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The mount door: what got mounted, read from the superblock at exit, through
 * mount(2) and the new mount API (fsmount, open_tree, move_mount). A record
 * is sent only for a cgroup hierarchy or a filesystem on a block device;
 * user space compares the device with the host's own mounted devices.
 *
 * mount(2) returns no handle to the mount it made, so its exit reads the
 * newest mount of the caller's mount namespace: mounts are kept in creation
 * order there (a list before 6.8, an rbtree keyed by a 64-bit creation
 * counter since). Remounts, moves and propagation changes make no new mount
 * and are left to the cw_syscall record.
 */
#ifndef CW_MOUNT_BPF_H
#define CW_MOUNT_BPF_H

#define MS_REMOUNT		32
#define MS_BIND			4096
#define MS_MOVE			8192
#define MS_PROPAGATION		((1 << 17) | (1 << 18) | (1 << 19) | (1 << 20)) /* UNBINDABLE PRIVATE SLAVE SHARED */
#define OPEN_TREE_CLONE		1
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#define AT_EMPTY_PATH		0x1000

/* Before 6.8: mnt_namespace.list, mount.mnt_list, new mounts at the tail. */
struct mnt_namespace___list {
	struct list_head list;
} __attribute__((preserve_access_index));

static __always_inline struct mount *newest_mount(struct mnt_namespace *ns)
{
	struct rb_node *node, *right;

	if (bpf_core_field_exists(ns->mnt_last_node)) {
		node = BPF_CORE_READ(ns, mnt_last_node);
	} else if (bpf_core_field_exists(ns->mounts.rb_node)) {
		/* 6.8+ without the cached last node. (Before 6.8 `mounts` is a count.) */
		node = BPF_CORE_READ(ns, mounts.rb_node);
		for (int i = 0; i < 64 && node; i++) {
			right = BPF_CORE_READ(node, rb_right);
			if (!right)
				break;
			node = right;
		}
	} else {
		struct list_head *last = BPF_CORE_READ((struct mnt_namespace___list *)ns, list.prev);

		if (!last)
			return NULL;
		return (struct mount *)((void *)last - bpf_core_field_offset(struct mount, mnt_list));
	}
	if (!node)
		return NULL;
	return (struct mount *)((void *)node - bpf_core_field_offset(struct mount, mnt_node));
}

/* new_mount: a new superblock attached (mount(2) without MS_BIND, fsmount),
 * not a copy of a mount the process could see already. */
static __always_inline void mount_contain(struct cw_obj *o, bool new_mount)
{
	__u32 cls = contain_mount_class(o, new_mount);

	if (cls != CW_KC_NONE) {
		contain_current(&o->kill, cls, NULL);
		contain_taint_mount(o, cls);
	}
}

SEC("tracepoint/syscalls/sys_enter_mount")
int cw_mnt_enter_mount(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 flags = ctx->args[3];
	struct cw_obj *o;

	if ((flags & (MS_REMOUNT | MS_MOVE | MS_PROPAGATION)) || !obj_followed(id))
		return 0;
	o = obj_begin(id, CW_SC_MOUNT, flags);
	if (o)
		bpf_probe_read_user_str(o->path, sizeof(o->path), (const char *)ctx->args[1]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_mount")
int cw_mnt_exit_mount(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct cw_obj *o = obj_resume(id, CW_SC_MOUNT, CW_SC_MOUNT);
	struct mount *m;

	if (!o)
		return 0;
	m = ctx->ret == 0 ? newest_mount(BPF_CORE_READ(obj_current(), nsproxy, mnt_ns)) : NULL;
	if (m) {
		struct vfsmount *mnt = (struct vfsmount *)((void *)m + bpf_core_field_offset(struct mount, mnt));

		obj_vfsmount(o, mnt);
		obj_chain(o, BPF_CORE_READ(mnt, mnt_root));
		if (obj_mount_interesting(o)) {
			mount_contain(o, !(o->arg & MS_BIND));
			obj_send(o, id, ctx->ret);
			return 0;
		}
	}
	bpf_map_delete_elem(&objs, &id);
	return 0;
}

/* fsmount(fs_fd, flags, attr_flags) returns a mount fd: the mount is there
 * already, detached, and usable through openat(mfd, ...) without move_mount. */
SEC("tracepoint/syscalls/sys_exit_fsmount")
int cw_mnt_exit_fsmount(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct cw_obj *o;

	if (ctx->ret < 0 || !obj_followed(id))
		return 0;
	o = obj_begin(id, CW_SC_FSMOUNT, 0);
	if (!o)
		return 0;
	if (obj_fd_mount(o, ctx->ret) && obj_mount_interesting(o)) {
		mount_contain(o, true);
		obj_send(o, id, ctx->ret);
		return 0;
	}
	bpf_map_delete_elem(&objs, &id);
	return 0;
}

/* open_tree(dfd, filename, flags): with OPEN_TREE_CLONE a detached copy of a mount. */
SEC("tracepoint/syscalls/sys_enter_open_tree")
int cw_mnt_enter_open_tree(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct cw_obj *o;

	if (!(ctx->args[2] & OPEN_TREE_CLONE) || !obj_followed(id))
		return 0;
	o = obj_begin(id, CW_SC_OPEN_TREE, ctx->args[2]);
	if (o)
		bpf_probe_read_user_str(o->path, sizeof(o->path), (const char *)ctx->args[1]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_open_tree")
int cw_mnt_exit_open_tree(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct cw_obj *o = obj_resume(id, CW_SC_OPEN_TREE, CW_SC_OPEN_TREE);

	if (!o)
		return 0;
	if (ctx->ret >= 0 && obj_fd_mount(o, ctx->ret) && obj_mount_interesting(o)) {
		mount_contain(o, false);
		obj_send(o, id, ctx->ret);
		return 0;
	}
	bpf_map_delete_elem(&objs, &id);
	return 0;
}

/* move_mount(from_dfd, from_path, to_dfd, to_path, flags): attaching a mount
 * fd (MOVE_MOUNT_F_EMPTY_PATH) is read through that fd, still open at exit. */
SEC("tracepoint/syscalls/sys_enter_move_mount")
int cw_mnt_enter_move_mount(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct cw_obj *o;

	if (!(ctx->args[4] & MOVE_MOUNT_F_EMPTY_PATH) || !obj_followed(id))
		return 0;
	o = obj_begin(id, CW_SC_MOVE_MOUNT, ctx->args[4]);
	if (!o)
		return 0;
	o->ino = ctx->args[0]; /* from_dfd until exit */
	bpf_probe_read_user_str(o->path, sizeof(o->path), (const char *)ctx->args[3]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_move_mount")
int cw_mnt_exit_move_mount(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct cw_obj *o = obj_resume(id, CW_SC_MOVE_MOUNT, CW_SC_MOVE_MOUNT);

	if (!o)
		return 0;
	if (ctx->ret == 0 && obj_fd_mount(o, (int)o->ino) && obj_mount_interesting(o)) {
		mount_contain(o, false);
		obj_send(o, id, ctx->ret);
		return 0;
	}
	bpf_map_delete_elem(&objs, &id);
	return 0;
}

/* mount_setattr(dfd, path, flags, uattr, usize) on a mount fd (AT_EMPTY_PATH):
 * the mount's attributes after the change, e.g. a cgroup mount made writable. */
SEC("tracepoint/syscalls/sys_enter_mount_setattr")
int cw_mnt_enter_mount_setattr(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct cw_obj *o;

	if (!(ctx->args[2] & AT_EMPTY_PATH) || !obj_followed(id))
		return 0;
	o = obj_begin(id, CW_SC_MOUNT_SETATTR, ctx->args[2]);
	if (o)
		o->ino = ctx->args[0]; /* dfd until exit */
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_mount_setattr")
int cw_mnt_exit_mount_setattr(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct cw_obj *o = obj_resume(id, CW_SC_MOUNT_SETATTR, CW_SC_MOUNT_SETATTR);

	if (!o)
		return 0;
	if (ctx->ret == 0 && obj_fd_mount(o, (int)o->ino) && obj_mount_interesting(o)) {
		mount_contain(o, false);
		obj_send(o, id, ctx->ret);
		return 0;
	}
	bpf_map_delete_elem(&objs, &id);
	return 0;
}

#endif

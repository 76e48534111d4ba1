/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The root door: after chroot and pivot_root, the task's new root (fs->root,
 * its mount and dentry) and, for comparison, the root of the init of the
 * actor's pid namespace (the container's own root when it has one), and
 * whether the new root lies below that one. User space compares them with
 * the host's / (device and inode) and the host's mounted devices; the path
 * passed only names it in messages.
 */
#ifndef CW_ROOT_BPF_H
#define CW_ROOT_BPF_H

#define ROOT_WALK_MAX 48

/* A reference root: t's root dentry, its device and inode into o. */
static __always_inline struct dentry *root_ref(struct cw_obj *o, struct task_struct *t)
{
	struct dentry *d = t ? BPF_CORE_READ(t, fs, root.dentry) : NULL;

	if (!d)
		return NULL;
	o->ref_dev = BPF_CORE_READ(d, d_sb, s_dev);
	o->ref_ino = BPF_CORE_READ(d, d_inode, i_ino);
	o->oflags |= CW_OF_REF;
	return d;
}

/* Whether d is ref or below it, by its d_parent chain (pointers compared, never followed past). */
static __always_inline bool root_beneath(struct dentry *d, struct dentry *ref)
{
	struct dentry *parent;

	for (int i = 0; i < ROOT_WALK_MAX && d; i++) {
		if (d == ref)
			return true;
		parent = BPF_CORE_READ(d, d_parent);
		if (parent == d)
			return false;
		d = parent;
	}
	return false;
}

static __always_inline int root_enter(__u32 sc, const char *upath)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct cw_obj *o;

	if (!obj_followed(id))
		return 0;
	o = obj_begin(id, sc, 0);
	if (!o)
		return 0;
	bpf_probe_read_user_str(o->path, sizeof(o->path), upath);
	/* The old root's dentry, kept until exit as a value to compare with. */
	o->target_start_ns = (__u64)root_ref(o, obj_current());
	return 0;
}

static __always_inline int root_exit(__u32 sc, long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct cw_obj *o = obj_resume(id, sc, sc);
	struct task_struct *t = obj_current();
	struct task_struct *reaper;
	struct pid *ap;
	unsigned int level;
	struct vfsmount *mnt;
	struct dentry *d, *ref;

	if (!o)
		return 0;
	ref = (struct dentry *)o->target_start_ns;
	o->target_start_ns = 0;
	if (ret != 0) {
		bpf_map_delete_elem(&objs, &id);
		return 0;
	}
	mnt = BPF_CORE_READ(t, fs, root.mnt);
	d = BPF_CORE_READ(t, fs, root.dentry);
	if (mnt && d) {
		obj_vfsmount(o, mnt);
		obj_chain(o, d);
		if (BPF_CORE_READ(mnt, mnt_root) != BPF_CORE_READ(mnt, mnt_sb, s_root))
			o->oflags |= CW_OF_MNT_SUBTREE;
	}
	/* The container's own root is its init's, the reaper of the actor's pid
	 * namespace; when the actor is that init, or shares the host's pid
	 * namespace, its own root before the call. */
	ap = BPF_CORE_READ(t, group_leader, thread_pid);
	level = BPF_CORE_READ(ap, level);
	reaper = level ? BPF_CORE_READ(pid_ns_at(ap, level), child_reaper) : NULL;
	if (reaper && reaper != BPF_CORE_READ(t, group_leader))
		ref = root_ref(o, reaper);
	if (ref && d && root_beneath(d, ref))
		o->oflags |= CW_OF_REF_BENEATH;
	if (contain_root_is_host(o))
		contain_current(&o->kill, CW_KC_ROOT_HOST, NULL);
	obj_send(o, id, ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_chroot")
int cw_root_enter_chroot(struct trace_event_raw_sys_enter *ctx)
{
	return root_enter(CW_SC_CHROOT, (const char *)ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_exit_chroot")
int cw_root_exit_chroot(struct trace_event_raw_sys_exit *ctx)
{
	return root_exit(CW_SC_CHROOT, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_pivot_root")
int cw_root_enter_pivot_root(struct trace_event_raw_sys_enter *ctx)
{
	return root_enter(CW_SC_PIVOT_ROOT, (const char *)ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_exit_pivot_root")
int cw_root_exit_pivot_root(struct trace_event_raw_sys_exit *ctx)
{
	return root_exit(CW_SC_PIVOT_ROOT, ctx->ret);
}

#endif

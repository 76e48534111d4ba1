/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Reading what a syscall touched at its exit: the file at an fd, the mount and
 * superblock behind it, a dentry chain, a process behind a struct pid. Shared
 * by the file, mount, root and memory doors (file.bpf.h, mount.bpf.h,
 * root.bpf.h, memory.bpf.h), which send one cw_obj record each.
 *
 * Why BPF_CORE_READ on bpf_get_current_task(): these run on plain syscall
 * tracepoints, where the BTF-pointer helper only exists from 5.11; they run
 * for followed processes only, so the probe reads are off the host fast path.
 */
#ifndef CW_OBJECT_BPF_H
#define CW_OBJECT_BPF_H

#define CGROUP_SUPER_MAGIC  0x27e0eb
#define CGROUP2_SUPER_MAGIC 0x63677270
#define PROC_SUPER_MAGIC    0x9fa0
#define SYSFS_MAGIC	    0x62656572
#define PID_FS_MAGIC	    0x50494446
#define FMODE_WRITE	    0x2
#define MNT_READONLY	    0x40

/* Records built between a syscall's enter and exit, keyed by thread. Its own
 * map (not `pending`) so that a door and a cw_syscall pair on the same call
 * never see each other's half. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct cw_obj);
} objs SEC(".maps");

static const struct cw_obj obj_zero = {};

static __always_inline struct task_struct *obj_current(void)
{
	return (struct task_struct *)bpf_get_current_task();
}

/* The follow set first, by tgid: an unfollowed process costs one hash lookup
 * and no probe read. */
static __always_inline bool obj_followed(__u64 id)
{
	__u32 tgid = id >> 32;
	struct task_state *s;

	if (tgid == self_tgid)
		return false;
	/* Most processes are not followed: one lookup that misses, no task read. */
	s = bpf_map_lookup_elem(&tasks, &tgid);
	if (!s || !(s->flags & TS_FOLLOW))
		return false;
	/* follow_get: the same process (start time), a seeded entry matched to /proc's tick too. */
	s = follow_get(tgid, current_start_ns());
	return s && (s->flags & TS_FOLLOW);
}

static __always_inline struct cw_obj *obj_begin(__u64 id, __u32 sc, __u64 arg)
{
	struct cw_obj *o;

	if (bpf_map_update_elem(&objs, &id, &obj_zero, BPF_ANY)) {
		stat_inc(CW_STAT_PENDING_FULL);
		return NULL;
	}
	o = bpf_map_lookup_elem(&objs, &id);
	if (o) {
		o->sc = sc;
		o->arg = arg;
	}
	return o;
}

/* The half built at enter, when it belongs to one of `lo`..`hi`; any other
 * (a stale half whose exit never ran) is dropped. */
static __always_inline struct cw_obj *obj_resume(__u64 id, __u32 lo, __u32 hi)
{
	struct cw_obj *o = bpf_map_lookup_elem(&objs, &id);

	if (o && (o->sc < lo || o->sc > hi)) {
		bpf_map_delete_elem(&objs, &id);
		return NULL;
	}
	return o;
}

static __always_inline void obj_send(struct cw_obj *o, __u64 id, long ret)
{
	o->ret = ret;
	current_fill(&o->task);
	hdr_fill(&o->hdr, CW_OBJECT, sizeof(*o));
	emit(o, CW_OBJECT, sizeof(*o), true);
	bpf_map_delete_elem(&objs, &id);
}

/* The file installed at fd in the current task, or NULL. */
static __always_inline struct file *obj_fd_file(long fd)
{
	struct fdtable *fdt = BPF_CORE_READ(obj_current(), files, fdt);
	struct file **fds;
	struct file *f = NULL;

	if (!fdt || fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_core_read(&f, sizeof(f), &fds[fd]);
	return f;
}

static __always_inline void obj_sb(struct cw_obj *o, struct super_block *sb)
{
	o->dev = BPF_CORE_READ(sb, s_dev);
	o->magic = BPF_CORE_READ(sb, s_magic);
	if (BPF_CORE_READ(sb, s_bdev))
		o->oflags |= CW_OF_BDEV;
	bpf_probe_read_kernel_str(o->fstype, sizeof(o->fstype), BPF_CORE_READ(sb, s_type, name));
}

/* Names from d up to its superblock's root, leaf first. */
static __always_inline void obj_chain(struct cw_obj *o, struct dentry *d)
{
	struct dentry *parent;

	o->ino = BPF_CORE_READ(d, d_inode, i_ino);
	if (BPF_CORE_READ(d, d_parent) == d)
		o->oflags |= CW_OF_SB_ROOT;
	for (int i = 0; i < CW_CHAIN_DEPTH; i++) {
		parent = BPF_CORE_READ(d, d_parent);
		if (!parent || parent == d)
			return;
		bpf_probe_read_kernel_str(o->chain[i], CW_NAME_LEN, BPF_CORE_READ(d, d_name.name));
		d = parent;
	}
	parent = BPF_CORE_READ(d, d_parent);
	if (parent && parent != d)
		o->oflags |= CW_OF_CHAIN_TRUNC;
}

static __always_inline struct mount *obj_real_mount(struct vfsmount *mnt)
{
	return (struct mount *)((void *)mnt - bpf_core_field_offset(struct mount, mnt));
}

/* A mount: its id, read-only state and superblock; the chain of its root dentry. */
static __always_inline void obj_vfsmount(struct cw_obj *o, struct vfsmount *mnt)
{
	o->mnt_id = BPF_CORE_READ(obj_real_mount(mnt), mnt_id);
	if (BPF_CORE_READ(mnt, mnt_flags) & MNT_READONLY)
		o->oflags |= CW_OF_RDONLY;
	obj_sb(o, BPF_CORE_READ(mnt, mnt_sb));
}

/* Mounts worth a record: a cgroup hierarchy, or a filesystem on a block device. */
static __always_inline bool obj_mount_interesting(const struct cw_obj *o)
{
	return o->magic == CGROUP_SUPER_MAGIC || o->magic == CGROUP2_SUPER_MAGIC || (o->oflags & CW_OF_BDEV);
}

/* The mount of a file at fd (an fsmount or open_tree fd): false when none. */
static __always_inline bool obj_fd_mount(struct cw_obj *o, long fd)
{
	struct file *f = obj_fd_file(fd);
	struct vfsmount *mnt;

	if (!f)
		return false;
	mnt = BPF_CORE_READ(f, f_path.mnt);
	if (!mnt)
		return false;
	obj_vfsmount(o, mnt);
	obj_chain(o, BPF_CORE_READ(mnt, mnt_root));
	return true;
}

static __always_inline struct pid_namespace *pid_ns_at(struct pid *p, unsigned int level)
{
	struct upid up = {};

	bpf_core_read(&up, sizeof(up), &p->numbers[level & 31]);
	return up.ns;
}

/*
 * The process behind a struct pid, as the actor sees it: its host pid and
 * start, its own pid namespace, and whether it lies in the actor's pid
 * namespace (or one nested in it), the kernel's own notion of "inside".
 * Returns the task, or NULL.
 */
static __always_inline struct task_struct *obj_target(struct cw_obj *o, struct pid *p)
{
	struct pid *ap = BPF_CORE_READ(obj_current(), group_leader, thread_pid);
	unsigned int al = BPF_CORE_READ(ap, level);
	unsigned int tl = BPF_CORE_READ(p, level);
	struct hlist_node *first;
	struct task_struct *tt = NULL;
	struct upid up = {};

	o->oflags |= CW_OF_TARGET;
	bpf_core_read(&up, sizeof(up), &p->numbers[0]);
	o->target_tgid = up.nr;
	o->target_pidns = BPF_CORE_READ(pid_ns_at(p, tl), ns.inum);
	if (tl >= al && pid_ns_at(p, al) == pid_ns_at(ap, al))
		o->oflags |= CW_OF_TARGET_IN_NS;
	/* pid->tasks[PIDTYPE_PID] heads the task's pid_links[PIDTYPE_PID]. */
	first = BPF_CORE_READ(p, tasks[0].first);
	if (first) {
		tt = (struct task_struct *)((void *)first - bpf_core_field_offset(struct task_struct, pid_links));
		o->target_tgid = BPF_CORE_READ(tt, tgid);
		o->target_start_ns = BPF_CORE_READ(tt, group_leader, start_boottime);
	}
	return tt;
}

#endif

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Containment in the kernel: at the exit of an escape action, in the acting
 * thread, SIGKILL before the syscall returns to user space (bpf_send_signal,
 * 5.3+). The process never runs another instruction of its own, so what it
 * meant to do with the result (write to the opened release_agent, exec in the
 * joined host namespaces, read the mounted disk) never happens. The call
 * itself has completed: see the README's containment table.
 *
 * Armed per class by the control plane (kill_arm, from the policy); allowed
 * only for processes whose cgroup (or one of its CONTAIN_CG_DEPTH - 1
 * ancestors) the control plane has named a container (contain_cgroups). The
 * decision itself is contain_decide.h.
 */
#ifndef CW_CONTAIN_BPF_H
#define CW_CONTAIN_BPF_H

#include "contain_decide.h"

/* Set by the loader from its probe: bpf_send_signal is there. */
const volatile bool can_send_signal = false;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CW_KC_MAX);
	__type(key, __u32);   /* enum cw_kill_class */
	__type(value, __u32); /* enum cw_arm */
} kill_arm SEC(".maps");

/* Containers by cgroup id in the tracked hierarchy, written when the control
 * plane has seen the container made and enriched, removed when it exits. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);   /* kernfs id of the container's cgroup */
	__type(value, __u32); /* enum cw_container_verdict */
} contain_cgroups SEC(".maps");

/* Block devices the host has mounted (kernel encoding), for CW_KC_MOUNT_DEVICE. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} host_devs SEC(".maps");

/* The host's / (device, inode), for CW_KC_ROOT_HOST; dev 0 until the control plane writes it. */
struct host_root {
	__u64 ino;
	__u32 dev;
	__u32 _pad0;
};
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct host_root);
} host_root SEC(".maps");

/*
 * Mounts whose maker was killed: the mount itself stays in the container's
 * mount namespace (the syscall completed), so another process of the
 * container could still use it. Any open of a file on it is killed at open
 * exit, before a read or write (file.bpf.h). Keyed by mount id; the device
 * guards against a mount id reused after the mount is gone.
 */
struct tainted_mount {
	__u32 cls; /* enum cw_kill_class of the killed mount */
	__u32 dev;
};
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32); /* mnt_id */
	__type(value, struct tainted_mount);
} tainted_mounts SEC(".maps");

/* Non-zero once a mount is tainted: until then read-opens cost one load, no lookup. */
__u32 taint_any = 0;

#define CW_PF_KTHREAD	   0x00200000
#define CW_SIGKILL	   9
#define CW_ENOSYS	   38
#define CONTAIN_CG_DEPTH   4
#define CW_NS_JOINABLE_MAX CW_NS_TIME /* every slot before time: what setns can join */

static __always_inline __u32 contain_armed(__u32 cls)
{
	__u32 *v = bpf_map_lookup_elem(&kill_arm, &cls);

	return v ? *v : CW_ARM_REPORT;
}

/* t's cgroup in the tracked hierarchy (as task_cgroup_id reads it). */
static __always_inline struct cgroup *contain_task_cgroup(struct task_struct *t)
{
	struct css_set *cs = BPF_CORE_READ(t, cgroups);
	struct cgroup_subsys_state *css = NULL;

	if (cg_subsys < 0)
		return BPF_CORE_READ(cs, dfl_cgrp);
	bpf_core_read(&css, sizeof(css), &cs->subsys[cg_subsys & 15]);
	return BPF_CORE_READ(css, cgroup);
}

/* The verdict of the nearest cgroup of t (itself or an ancestor) that names a
 * container; *cid: that cgroup. Nested containers sit below their outer one. */
static __always_inline __u32 contain_verdict(struct task_struct *t, __u64 *cid)
{
	struct cgroup *cg = contain_task_cgroup(t);

	for (int i = 0; i < CONTAIN_CG_DEPTH && cg; i++) {
		__u64 id = BPF_CORE_READ(cg, kn, id);
		__u32 *v = bpf_map_lookup_elem(&contain_cgroups, &id);

		if (v) {
			*cid = id;
			return *v;
		}
		/* The parent's self css, whose cgroup is the parent. */
		cg = BPF_CORE_READ(cg, self.parent, cgroup);
	}
	return CW_CV_UNKNOWN;
}

/* Whether task t lies in the container whose cgroup is cid (or one nested in it). */
static __always_inline bool contain_within(struct task_struct *t, __u64 cid)
{
	struct cgroup *cg = contain_task_cgroup(t);

	for (int i = 0; i < CONTAIN_CG_DEPTH && cg; i++) {
		if (BPF_CORE_READ(cg, kn, id) == cid)
			return true;
		cg = BPF_CORE_READ(cg, self.parent, cgroup);
	}
	return false;
}

static __always_inline long contain_send_kill(void)
{
	/* Relocated away on a kernel without the helper: the verifier never sees the call. */
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_send_signal))
		return bpf_send_signal(CW_SIGKILL);
	return -CW_ENOSYS;
}

/* The facts of the decision for the current task. target: the process acted
 * on (ptrace, /proc/<pid>/mem), or NULL. */
static __always_inline void contain_facts(struct cw_contain_in *in, __u32 arm, struct task_struct *target)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	__u64 cid = 0;

	in->arm = arm;
	in->tgid = bpf_get_current_pid_tgid() >> 32;
	in->self_tgid = self_tgid;
	in->kthread = (BPF_CORE_READ(t, flags) & CW_PF_KTHREAD) != 0;
	in->verdict = contain_verdict(t, &cid);
	in->inside = target && in->verdict == CW_CV_ARMED && contain_within(target, cid);
	in->can_signal = can_send_signal && bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_send_signal);
}

/*
 * Decides, acts and counts for one action of class cls by the current task;
 * k is the record's trailer. A class armed for report costs one array lookup.
 * Records already decided (a BPF-LSM denial) are left as they are.
 */
static __always_inline void contain_current(struct cw_kill *k, __u32 cls, struct task_struct *target)
{
	struct cw_contain_in in = {};
	__u32 arm;

	if (k->outcome != CW_KO_NONE)
		return;
	k->cls = cls;
	arm = contain_armed(cls);
	if (arm == CW_ARM_REPORT)
		return;
	contain_facts(&in, arm, target);
	if (cw_contain_decide(&in, k) == CW_DO_KILL) {
		long err = contain_send_kill();

		if (err) {
			k->outcome = CW_KO_FAILED;
			k->reason = CW_KR_SEND_ERROR;
			k->err = err;
		}
	}
	if (k->outcome != CW_KO_NONE && cls < CW_KC_MAX && k->outcome < CW_KO_MAX)
		stat_inc(CW_STAT_KILL(cls, k->outcome));
}

/* setns: whether the call joined one of the host's namespaces the task was not in. */
static __always_inline bool contain_joined_host(const __u32 old_ns[CW_NS_COUNT])
{
	__u32 now[CW_NS_COUNT] = {};

	current_ns(now);
	for (int i = 0; i < CW_NS_JOINABLE_MAX; i++)
		if (now[i] == host_ns[i] && old_ns[i] != host_ns[i])
			return true;
	return false;
}

/* The task the current one attached last with ptrace (head of its ptraced list), or NULL. */
static __always_inline struct task_struct *contain_last_tracee(void)
{
	struct task_struct *cur = (struct task_struct *)bpf_get_current_task();
	struct list_head *head = &cur->ptraced;
	struct list_head *first = BPF_CORE_READ(cur, ptraced.next);

	if (!first || first == head)
		return NULL;
	return (void *)first - bpf_core_field_offset(struct task_struct, ptrace_entry);
}

/* The class of a mount record (obj_mount_interesting already true), as
 * escape.mount-cgroupfs and escape.mount-device decide it in user space:
 * a new cgroup superblock or a writable copy of one; a new mount of a block
 * device the host has mounted. 0: none. */
static __always_inline __u32 contain_mount_class(struct cw_obj *o, bool new_mount)
{
	if (o->magic == CGROUP_SUPER_MAGIC || o->magic == CGROUP2_SUPER_MAGIC)
		return new_mount || !(o->oflags & CW_OF_RDONLY) ? CW_KC_MOUNT_CGROUP : CW_KC_NONE;
	if ((o->oflags & CW_OF_BDEV) && new_mount && bpf_map_lookup_elem(&host_devs, &o->dev))
		return CW_KC_MOUNT_DEVICE;
	return CW_KC_NONE;
}

/* After a mount's maker was killed: its opens are killed too. */
static __always_inline void contain_taint_mount(const struct cw_obj *o, __u32 cls)
{
	struct tainted_mount t = { .cls = cls, .dev = o->dev };
	__u32 id = o->mnt_id;

	if (o->kill.outcome != CW_KO_KILLED)
		return;
	if (bpf_map_update_elem(&tainted_mounts, &id, &t, BPF_ANY) == 0)
		taint_any = 1;
}

/* The class of a killed mount that file f lies on (0: none); fills o with the file's mount and chain. */
static __always_inline __u32 contain_tainted_file(struct cw_obj *o, struct file *f)
{
	struct vfsmount *mnt;
	struct tainted_mount *t;
	__u32 id;

	if (!f)
		return CW_KC_NONE;
	mnt = BPF_CORE_READ(f, f_path.mnt);
	id = BPF_CORE_READ(obj_real_mount(mnt), mnt_id);
	t = bpf_map_lookup_elem(&tainted_mounts, &id);
	if (!t || t->dev != BPF_CORE_READ(mnt, mnt_sb, s_dev))
		return CW_KC_NONE;
	o->oflags |= CW_OF_FILE;
	o->f_mode = BPF_CORE_READ(f, f_mode);
	obj_vfsmount(o, mnt);
	obj_chain(o, BPF_CORE_READ(f, f_path.dentry));
	return t->cls;
}

/* An exec of a program on a killed mount: killed before the new image runs.
 * Its own program, not a branch of cw_exec: every exec of the node pays one
 * load of taint_any here, and nothing more until a mount is tainted. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(cw_contain_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct cw_obj *o;
	__u32 cls;

	if (!taint_any || p->tgid == self_tgid)
		return 0;
	o = scratch_get();
	if (!o)
		return 0;
	__builtin_memset(o, 0, sizeof(*o));
	cls = contain_tainted_file(o, bprm->file);
	if (cls == CW_KC_NONE)
		return 0;
	o->sc = CW_SC_EXEC;
	bpf_probe_read_kernel_str(o->path, sizeof(o->path), bprm->filename);
	contain_current(&o->kill, cls, NULL);
	current_fill(&o->task);
	hdr_fill(&o->hdr, CW_OBJECT, sizeof(*o));
	emit(o, CW_OBJECT, sizeof(*o), true);
	return 0;
}

/* chroot/pivot_root: the new root is the host's / itself. */
static __always_inline bool contain_root_is_host(const struct cw_obj *o)
{
	__u32 zero = 0;
	struct host_root *h = bpf_map_lookup_elem(&host_root, &zero);

	return h && h->dev && o->dev == h->dev && o->ino == h->ino;
}

#endif

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Cgroup life in the tracked hierarchy: mkdir, rmdir, attach. */
#ifndef CW_CGROUP_BPF_H
#define CW_CGROUP_BPF_H

/* t: the task moved (attach), or NULL for the current task (mkdir/rmdir). */
static __always_inline int cgroup_emit(__u32 type, struct cgroup *cg, const char *path, struct task_struct *t,
				       bool urgent)
{
	struct cw_cgroup *c;

	/* Every v1 hierarchy fires its own mkdir: keep the one that is tracked. */
	if (BPF_CORE_READ(cg, root, hierarchy_id) != cg_hierarchy)
		return 0;
	c = scratch_get();
	if (!c)
		return 0;
	if (t)
		task_fill_btf(&c->task, t);
	else
		current_fill(&c->task);
	c->cgroup_id = BPF_CORE_READ(cg, kn, id);
	c->hierarchy_id = cg_hierarchy;
	c->level = BPF_CORE_READ(cg, level);
	bpf_probe_read_kernel_str(c->path, sizeof(c->path), path);
	hdr_fill(&c->hdr, type, sizeof(*c));
	emit(c, type, sizeof(*c), urgent);
	return 0;
}

/* TP_PROTO(struct cgroup *cgrp, const char *path) */
SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(cw_cgroup_mkdir, struct cgroup *cgrp, const char *path)
{
	return cgroup_emit(CW_CGROUP_MKDIR, cgrp, path, NULL, true);
}

/* TP_PROTO(struct cgroup *cgrp, const char *path) */
SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(cw_cgroup_rmdir, struct cgroup *cgrp, const char *path)
{
	return cgroup_emit(CW_CGROUP_RMDIR, cgrp, path, NULL, false);
}

/* TP_PROTO(struct cgroup *dst_cgrp, const char *path, struct task_struct *task, bool threadgroup) */
SEC("tp_btf/cgroup_attach_task")
int BPF_PROG(cw_cgroup_attach, struct cgroup *dst, const char *path, struct task_struct *task)
{
	if (BPF_CORE_READ(task, tgid) == self_tgid)
		return 0;
	return cgroup_emit(CW_CGROUP_ATTACH, dst, path, task, false);
}

#endif

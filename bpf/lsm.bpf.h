/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The deny path, where the kernel has BPF-LSM (probed: "bpf" among the active
 * LSMs and an LSM program loads): for a class armed with `kill`, the call is
 * refused with EPERM before it happens, instead of the caller being killed
 * after it. Covered: write-opens of kernel control files and of another
 * process's /proc/<pid>/mem (file_open), bpf() (bpf), signals to the sensor
 * (task_kill). Every other class is killed at syscall exit, LSM or not; dry-run
 * is always decided at exit.
 *
 * The loader loads these programs only where the probe found BPF-LSM, so the
 * object loads everywhere else. Built and its decision unit-tested
 * (contain_decide.h); not run on a kernel with BPF-LSM yet.
 */
#ifndef CW_LSM_BPF_H
#define CW_LSM_BPF_H

#define CW_EPERM 1

/* -EPERM when the policy kills this class and the actor may be killed, else 0
 * (and k left for the exit program to decide). */
static __always_inline int lsm_decide(struct cw_kill *k, __u32 cls, struct task_struct *target)
{
	struct cw_contain_in in = {};
	__u32 arm = contain_armed(cls);

	if (arm != CW_ARM_KILL)
		return 0;
	contain_facts(&in, arm, target);
	in.lsm = 1;
	k->cls = cls;
	if (cw_contain_decide(&in, k) != CW_DO_DENY) {
		__builtin_memset(k, 0, sizeof(*k));
		return 0;
	}
	stat_inc(CW_STAT_KILL(cls, CW_KO_DENIED));
	return -CW_EPERM;
}

/* The half record file_enter stashed (write-opens of followed processes)
 * is filled here as at exit; file_exit sends it with ret -EPERM. */
SEC("lsm/file_open")
int BPF_PROG(cw_lsm_file_open, struct file *file)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct cw_obj *o = bpf_map_lookup_elem(&objs, &id);
	struct task_struct *target = NULL;

	if (!o || ((o->sc < CW_SC_OPEN || o->sc > CW_SC_CREAT) && o->sc != CW_SC_OPEN_BY_HANDLE_AT))
		return 0;
	if (!file_is_control(o, file, &target))
		return 0;
	return lsm_decide(&o->kill, (o->oflags & CW_OF_TARGET) ? CW_KC_PROC_MEM : CW_KC_CONTROL_WRITE, target);
}

/* bpf(): sc_enter stashed the record for followed and in-container callers; sc_exit sends it. */
SEC("lsm/bpf")
int BPF_PROG(cw_lsm_bpf)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct cw_syscall *r = bpf_map_lookup_elem(&pending, &id);

	if (!r || r->sc != CW_SC_BPF)
		return 0;
	return lsm_decide(&r->kill, CW_KC_BPF, NULL);
}

/* A refused signal never reaches signal_generate: the guard record is sent from here. */
SEC("lsm/task_kill")
int BPF_PROG(cw_lsm_task_kill, struct task_struct *p, struct kernel_siginfo *info, int sig, const struct cred *cred)
{
	__u32 sender = bpf_get_current_pid_tgid() >> 32;
	struct cw_guard r = {};
	int ret;

	if (p->tgid != self_tgid || sender == self_tgid || (unsigned long)info == 1)
		return 0;
	if ((unsigned long)info > 1) {
		r.code = BPF_CORE_READ(info, si_code);
		if (r.code > 0)
			return 0;
	}
	ret = lsm_decide(&r.kill, CW_KC_SENSOR_SIGNAL, NULL);
	if (!ret)
		return 0;
	current_fill(&r.task);
	r.what = CW_GUARD_SIGNAL;
	r.target_tid = p->pid;
	r.sig = sig;
	r.result = ret;
	hdr_fill(&r.hdr, CW_GUARD, sizeof(r));
	emit(&r, CW_GUARD, sizeof(r), true);
	return ret;
}

#endif

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The containment decision, as a pure function of facts the caller read: no
 * helper calls, no maps. Compiled into the BPF object (contain.bpf.h, lsm.bpf.h)
 * and into the host-side unit test (test/fixtures/contain/decide.c), so that
 * the same code is tested without a kernel that has BPF-LSM.
 */
#ifndef CW_CONTAIN_DECIDE_H
#define CW_CONTAIN_DECIDE_H

struct cw_contain_in {
	__u32 arm;	 /* enum cw_arm of the action's class */
	__u32 tgid;	 /* actor, host view */
	__u32 self_tgid; /* the sensor */
	__u32 verdict;	 /* enum cw_container_verdict of the actor's cgroup (or an ancestor) */
	__u8 kthread;	 /* PF_KTHREAD */
	__u8 inside;	 /* the process acted on lies in the actor's own container */
	__u8 can_signal; /* bpf_send_signal on this kernel */
	__u8 lsm;	 /* decided in a BPF-LSM hook, before the call: deny rather than kill */
};

enum cw_contain_do {
	CW_DO_NOTHING = 0,
	CW_DO_KILL = 1, /* the caller sends SIGKILL and sets KILLED or FAILED */
	CW_DO_DENY = 2, /* the LSM hook returns -EPERM */
};

/* Fills k (class set by the caller) and says what to do. The never-list comes
 * first: dry-run reports what would have been killed, never what is spared. */
static __always_inline enum cw_contain_do cw_contain_decide(const struct cw_contain_in *in, struct cw_kill *k)
{
	k->arm = in->arm;
	k->outcome = CW_KO_NONE;
	k->reason = CW_KR_NONE;
	k->err = 0;
	if (in->arm != CW_ARM_KILL && in->arm != CW_ARM_DRY_RUN)
		return CW_DO_NOTHING;
	k->outcome = CW_KO_SPARED;
	if (in->kthread)
		k->reason = CW_KR_KTHREAD;
	else if (in->tgid == in->self_tgid)
		k->reason = CW_KR_SELF;
	else if (in->tgid == 1)
		k->reason = CW_KR_HOST_INIT;
	else if (in->verdict == CW_CV_SPARED)
		k->reason = CW_KR_ALLOWLISTED;
	else if (in->verdict != CW_CV_ARMED)
		k->reason = CW_KR_NOT_CONTAINER;
	else if (in->inside)
		k->reason = CW_KR_INSIDE;
	if (k->reason != CW_KR_NONE)
		return CW_DO_NOTHING;
	if (in->arm == CW_ARM_DRY_RUN) {
		k->outcome = CW_KO_WOULD_KILL;
		return CW_DO_NOTHING;
	}
	if (in->lsm) {
		k->outcome = CW_KO_DENIED;
		return CW_DO_DENY;
	}
	if (!in->can_signal) {
		k->outcome = CW_KO_FAILED;
		k->reason = CW_KR_NO_HELPER;
		return CW_DO_NOTHING;
	}
	k->outcome = CW_KO_KILLED;
	return CW_DO_KILL;
}

#endif

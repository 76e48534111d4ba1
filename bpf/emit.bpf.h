/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Sending records: header, wake-up policy, counters. */
#ifndef CW_EMIT_BPF_H
#define CW_EMIT_BPF_H

static __always_inline void hdr_fill(struct cw_hdr *h, __u16 type, __u16 size)
{
	h->type = type;
	h->size = size;
	h->cpu = bpf_get_smp_processor_id();
	h->ktime = bpf_ktime_get_ns();
}

/*
 * A record that need not wake the consumer: none while the consumer drains on
 * its timer. While it is parked (no timer: an idle node), the kernel's own
 * rule (flags 0): a wake-up when this record is the first the consumer has not
 * read, so the first record after a quiet spell is read at once and the rest
 * of a burst wakes nobody. A record whose program read the flag just before
 * the consumer set it waits for the parked consumer's slow tick (parkedMs).
 */
static __always_inline __u64 quiet_flags(void)
{
	return *(volatile __u32 *)&consumer_parked ? 0 : BPF_RB_NO_WAKEUP;
}

/*
 * Why not wake the consumer for every record: a wake-up per record cost 10-23%
 * of a fork/exec storm here, while records left for the consumer's periodic
 * drain cost nothing measurable. Only records of the priority ring that start
 * or escape containers are latency-sensitive (urgent, see emit()): they wake
 * the consumer, at most once per CPU per wake_gap_ns so that a storm of them
 * cannot turn into a wake-up storm; a container's start alone passes the gap
 * (emit_rec). Bulk fork/exec/exit of followed processes wait for the drain
 * timer (drainMs), or, on an idle node, wake the parked consumer (quiet_flags).
 */
static __always_inline __u64 wake_flags(bool urgent, bool start)
{
	__u32 zero = 0;
	__u64 *last, now;

	if (!urgent)
		return quiet_flags();
	last = bpf_map_lookup_elem(&last_wake, &zero);
	if (!last)
		return 0;
	now = bpf_ktime_get_ns();
	if (now - *last < wake_gap_ns && !start)
		return quiet_flags();
	*last = now;
	stat_inc(CW_STAT_WAKEUPS);
	return BPF_RB_FORCE_WAKEUP;
}

/*
 * Which ring: bulk fork/exec/exit go to `events`, which a fork storm can fill;
 * everything that makes, starts or ends a container or acts against the host
 * or the sensor goes to `prio_events`: cgroup records, syscall, guard, connect
 * and io_uring records, forks into new namespaces, and the exec and exit of a
 * container's init (pid 1 of its own pid namespace). Every record starts with
 * the header and the task, so the task is found at the same place in each.
 */
static __always_inline bool prio_record(void *rec, __u32 type, bool urgent)
{
	struct cw_task *t = &((struct cw_fork *)rec)->task;

	switch (type) {
	case CW_FORK:
		return urgent; /* urgent exactly when the child has new namespaces */
	case CW_EXEC:
	case CW_EXIT:
		return t->nspid == 1 && (t->flags & CW_TF_IN_CONTAINER);
	default:
		return true;
	}
}

/*
 * Copy a record built in scratch space into its ring; count the outcome, per
 * type and per ring. start: the record starts a container (its init's first
 * exec, once per process): it wakes the consumer even inside the wake gap,
 * which the runtime's own mount and pivot_root records just before it have
 * usually used up on that CPU — otherwise the start waits for the drain timer.
 */
static __always_inline void emit_rec(void *rec, __u32 type, __u64 size, bool urgent, bool start)
{
	bool prio = prio_record(rec, type, urgent);
	__u64 flags = wake_flags(prio && urgent, start);
	long err;

	/* Two calls, not one with a chosen map: the verifier needs each call's map constant. */
	if (prio)
		err = bpf_ringbuf_output(&prio_events, rec, size, flags);
	else
		err = bpf_ringbuf_output(&events, rec, size, flags);
	if (err) {
		stat_inc(CW_STAT_DROPPED(type));
		stat_inc(prio ? CW_STAT_PRIO_DROPPED : CW_STAT_BULK_DROPPED);
	} else {
		stat_inc(CW_STAT_SENT(type));
		stat_inc(prio ? CW_STAT_PRIO_SENT : CW_STAT_BULK_SENT);
	}
}

static __always_inline void emit(void *rec, __u32 type, __u64 size, bool urgent)
{
	emit_rec(rec, type, size, urgent, false);
}

#endif

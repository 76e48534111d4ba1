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
 * Why not wake the consumer for every record: a wake-up per record cost 10-23%
 * of a fork/exec storm here, while records left for the consumer's periodic
 * drain cost nothing measurable. Records that start or escape containers are
 * latency-sensitive (urgent): they wake the consumer, at most once per CPU per
 * wake_gap_ns so that a storm inside a container cannot turn into a wake-up storm.
 */
static __always_inline __u64 wake_flags(bool urgent)
{
	__u32 zero = 0;
	__u64 *last, now;

	if (!urgent)
		return BPF_RB_NO_WAKEUP;
	last = bpf_map_lookup_elem(&last_wake, &zero);
	if (!last)
		return 0;
	now = bpf_ktime_get_ns();
	if (now - *last < wake_gap_ns)
		return BPF_RB_NO_WAKEUP;
	*last = now;
	stat_inc(CW_STAT_WAKEUPS);
	return BPF_RB_FORCE_WAKEUP;
}

/* Copy a record built in scratch space into the ring buffer; count the outcome. */
static __always_inline void emit(void *rec, __u32 type, __u64 size, bool urgent)
{
	if (bpf_ringbuf_output(&events, rec, size, wake_flags(urgent)))
		stat_inc(CW_STAT_DROPPED(type));
	else
		stat_inc(CW_STAT_SENT(type));
}

#endif

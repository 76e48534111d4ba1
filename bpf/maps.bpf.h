/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Maps and load-time tunables shared by every ctrwatch program. */
#ifndef CW_MAPS_BPF_H
#define CW_MAPS_BPF_H

/* Set by the loader through the skeleton's rodata before load. */
const volatile __u32 host_ns[CW_NS_COUNT] = {};
const volatile __u32 self_tgid = 0;	    /* the sensor itself: never reported */
const volatile __s32 cg_subsys = -1;	    /* tracked cgroup hierarchy: -1 cgroup2, else v1 subsys index */
const volatile __u32 cg_hierarchy = 0;	    /* its hierarchy id (cgroup2: 0) */
const volatile bool trace_all = false;	    /* send every fork and exit, not only followed ones */
const volatile __u64 wake_gap_ns = 2000000; /* at most one forced wake-up per CPU per gap */
const volatile bool exec_all = false;	    /* send every exec, not only those the filter names */

/* Set by the consumer through the skeleton's mapped .bss while it sleeps
 * without a drain timer (an idle node): records that would wait for the timer
 * then wake it when they are the first it has not read (see quiet_flags()). */
__u32 consumer_parked = 0;

/* Execs of host processes that are sent: their comm (the exec'd file's name,
 * NUL-padded to 16 bytes) is a key here. Filled by the loader before attach. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, char[CW_COMM_LEN]);
	__type(value, __u8);
} exec_names SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024); /* resized by the loader */
} events SEC(".maps");

/* The priority ring: lifecycle, escape and guard records, which must never
 * lose their place to bulk fork/exec/exit (see emit.bpf.h). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024); /* resized by the loader */
} prio_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CW_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* Follow set: processes in or around containers: in other namespaces than the
 * host's, or descended from one that moved. Their forks and exits are sent;
 * an ordinary host process only sends its execs (no map update, no exit). */
struct task_state {
	__u64 start_ns;
	__u32 flags;
	__u32 _pad0;
};
#define TS_FOLLOW 1
/* Written by userspace for processes that ran before the sensor: start_ns is
 * from /proc, at clock-tick resolution; follow_get makes it exact on first use. */
#define TS_SEEDED 2
/* The process has sent its container start (see cw_exec): set once, never cleared. */
#define TS_START_SENT 4
/* It runs what a followed process exec'd (it did, or a parent it was held
 * back from did) in the namespaces and root of that exec: children forked
 * into its own namespaces, user namespace and cgroup are held back (cw_fork). */
#define TS_HOLD 8
/* Its own fork was held back: sent late, before the first record that names it as parent (cw_fork). */
#define TS_UNSENT	16
#define CW_PROC_TICK_NS 10000000ULL /* USER_HZ: /proc's start times are in 1/100 s */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 131072);
	__type(key, __u32); /* tgid */
	__type(value, struct task_state);
} tasks SEC(".maps");

/* Scratch space: records are too large for the 512-byte BPF stack. Only for
 * programs on non-faultable tracepoints (sched, cgroup), which run with
 * preemption off: nothing else can use the same CPU's slot meanwhile. */
union cw_scratch {
	struct cw_exec exec;
	struct cw_obj obj;
	struct cw_cgroup cgroup;
	struct cw_syscall sc;
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, union cw_scratch);
} scratch SEC(".maps");

/* Syscall records built at sys_enter, completed and sent at sys_exit. Built
 * in place in this map, never in scratch: syscall tracepoints are faultable
 * and their programs preemptible. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct cw_syscall);
} pending SEC(".maps");

/* Last forced wake-up per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} last_wake SEC(".maps");

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	/* Atomic although per-CPU: programs on faultable (syscall) tracepoints run
	 * preemptibly, so two programs can interleave on one CPU. */
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void *scratch_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&scratch, &zero);
}

#endif

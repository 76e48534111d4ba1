/* What the running kernel offers to BPF, found by loading tiny probe programs
 * and maps (libbpf's probes), not by comparing version numbers. */
#ifndef CTRWATCH_PROBE_H
#define CTRWATCH_PROBE_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

struct cw_features {
	bool btf;	  /* /sys/kernel/btf/vmlinux: CO-RE can relocate */
	bool ringbuf;	  /* BPF_MAP_TYPE_RINGBUF (5.8) */
	bool tracing;	  /* BPF_PROG_TYPE_TRACING, for tp_btf (5.5) */
	bool task_btf;	  /* bpf_get_current_task_btf (5.11): direct reads in syscall programs */
	bool send_signal; /* bpf_send_signal (5.3) */
	bool lsm;	  /* BPF_PROG_TYPE_LSM loads and "bpf" is an active LSM */
};

void cw_probe(struct cw_features *f);

#ifdef __cplusplus
}
#endif
#endif

/* Loads and attaches the ctrwatch BPF object: a C interface over the bpftool
 * skeleton, which is C and does not compile as C++. */
#ifndef CTRWATCH_LOADER_H
#define CTRWATCH_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct cw_loader_opts {
	size_t ring_bytes;	     /* bulk ring: power of two, multiple of the page size */
	size_t prio_ring_bytes;	     /* priority ring: the same rules */
	uint32_t rate_per_sec;	     /* records a process may cause per second (0: default) */
	uint32_t rate_burst;	     /* … in one burst (0: default) */
	const uint16_t *watch_ports; /* TCP/UDP ports whose connects from followed processes are sent */
	size_t n_watch_ports;
	uint32_t host_ns[8]; /* enum cw_ns order */
	uint32_t self_tgid;
	int32_t cg_subsys; /* -1: cgroup2 */
	uint32_t cg_hierarchy;
	bool trace_all;
	bool exec_all;		       /* send every exec, not only the named programs' */
	const char *const *exec_names; /* programs (comm, up to 15 bytes) whose host execs are sent */
	size_t n_exec_names;
	uint64_t wake_gap_ns;
	const char *tracefs; /* a mounted tracefs: syscall tracepoint ids are read there */
	/* Programs whose name starts with one of these are neither loaded nor attached (bench variants). */
	const char *const *skip_progs;
	size_t n_skip_progs;
	bool send_signal; /* bpf_send_signal is there (probe): containment kills in the kernel */
	bool lsm;	  /* BPF-LSM is there (probe): the lsm/ programs are loaded and deny */
	/* Called for each program left out because its tracepoint is missing. */
	void (*skipped)(void *ctx, const char *section);
	void *ctx;
};

struct cw_loader;

/* Opens, configures, loads and attaches. Returns 0 or a negative errno; *stage
 * names the step that failed ("open", "load", "attach"). */
int cw_loader_open(struct cw_loader_opts *o, struct cw_loader **out, const char **stage);
int cw_loader_events_fd(const struct cw_loader *l);
int cw_loader_prio_events_fd(const struct cw_loader *l);
/* Replaces the runtime sockets the kernel matches connects against: (dev in
 * the kernel's encoding, inode) pairs. Returns 0 or a negative errno. */
int cw_loader_set_runtime_sockets(struct cw_loader *l, const uint32_t *devs, const uint64_t *inos, size_t n);
int cw_loader_stats_fd(const struct cw_loader *l);
/* The programs' consumer_parked flag in the skeleton's mapped .bss (the
 * consumer stores to it, the programs load it); NULL where .bss is not mapped. */
volatile uint32_t *cw_loader_park_flag(struct cw_loader *l);
int cw_loader_tasks_fd(const struct cw_loader *l);
/* Calls cb for each program of the object: its name, section, and whether a
 * link to the kernel is held for it now. */
void cw_loader_programs(const struct cw_loader *l,
			void (*cb)(void *ctx, const char *name, const char *section, bool attached), void *ctx);
/* Detaches every program, keeping the maps (rings, counters) readable. */
void cw_loader_detach(struct cw_loader *l);
/* Adds a process that ran before the sensor to the kernel's follow set.
 * start_ns: its start from /proc (clock ticks, in ns). Returns 0 when added,
 * 1 when the kernel follows it already, or a negative errno. */
int cw_loader_follow(struct cw_loader *l, uint32_t tgid, uint64_t start_ns);
/* Containment. Arms each class (enum cw_kill_class index, enum cw_arm value;
 * n entries from class 0). Returns 0 or a negative errno. */
int cw_loader_set_kill_arm(struct cw_loader *l, const uint32_t *arm, size_t n);
/* Names a container by its cgroup id (enum cw_container_verdict), or forgets
 * it (CW_CV_UNKNOWN). Returns 0 or a negative errno (-ENOENT is not one). */
int cw_loader_set_container(struct cw_loader *l, uint64_t cgroup_id, uint32_t verdict);
/* The host's mounted block devices and its / (device, inode): replaces them. */
int cw_loader_set_host_fs(struct cw_loader *l, const uint32_t *devs, size_t n, uint32_t root_dev, uint64_t root_ino);
/* Service-account volumes by superblock (kernel dev encoding): replaces them. */
int cw_loader_set_token_devs(struct cw_loader *l, const uint32_t *devs, size_t n);
/* Mirrors struct api_key in bpf/token.bpf.h. */
struct cw_api_server {
	uint8_t addr[16]; /* AF_INET: 4 bytes, the rest 0 */
	uint16_t port;	  /* host byte order */
	uint16_t family;  /* AF_INET 2, AF_INET6 10 */
	uint32_t pad;
};
/* Kubernetes API server addresses whose connects are sent: replaces them. */
int cw_loader_set_api_servers(struct cw_loader *l, const struct cw_api_server *list, size_t n);
void cw_loader_destroy(struct cw_loader *l);
/* The BPF object this addon carries (the ELF the skeleton embeds). */
const void *cw_loader_object(size_t *size);

#ifdef __cplusplus
}
#endif
#endif

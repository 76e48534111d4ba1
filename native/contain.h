/* Killing one process, and only that one: the pid is pinned by a pidfd, and the
 * process's start time (as /proc shows it) must match the one the sensor saw. */
#ifndef CTRWATCH_CONTAIN_H
#define CTRWATCH_CONTAIN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* SIGKILL to pid if its start (ns since boot, as the kernel's start_boottime)
 * is start_ns. Returns 0, -ESRCH when the pid is gone or now someone else, or
 * another -errno. */
int cw_kill_process(int pid, uint64_t start_ns);

#ifdef __cplusplus
}
#endif
#endif

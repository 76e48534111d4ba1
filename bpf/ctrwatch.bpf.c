// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* ctrwatch kernel programs: process, cgroup and namespace life on the node. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "ctrwatch.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#include "maps.bpf.h"
#include "emit.bpf.h"
#include "compat.bpf.h"
#include "task.bpf.h"
#include "limits.bpf.h"
#include "process.bpf.h"
#include "cgroup.bpf.h"
#include "object.bpf.h"
#include "contain.bpf.h"
#include "syscall.bpf.h"
#include "token.bpf.h"
#include "file.bpf.h"
#include "mount.bpf.h"
#include "root.bpf.h"
#include "memory.bpf.h"
#include "guard.bpf.h"
#include "net.bpf.h"
#include "uring.bpf.h"
#include "lsm.bpf.h"

/* Keep every record type and enum in the object's BTF, where the decoder's
 * layout test reads them (types used only on the stack are otherwise left out). */
const struct cw_fork *_cw_fork __attribute__((unused));
const struct cw_exit *_cw_exit __attribute__((unused));
const struct cw_exec *_cw_exec __attribute__((unused));
const struct cw_cgroup *_cw_cgroup __attribute__((unused));
const struct cw_syscall *_cw_syscall __attribute__((unused));
const struct cw_obj *_cw_obj __attribute__((unused));
const enum cw_obj_flags *_cw_obj_flags __attribute__((unused));
const struct cw_guard *_cw_guard __attribute__((unused));
const struct cw_connect *_cw_connect __attribute__((unused));
const struct cw_uring *_cw_uring __attribute__((unused));
const enum cw_guard_what *_cw_guard_what __attribute__((unused));
const enum cw_peer_kind *_cw_peer_kind __attribute__((unused));
const enum cw_type *_cw_type __attribute__((unused));
const enum cw_ns *_cw_ns __attribute__((unused));
const enum cw_sc *_cw_sc __attribute__((unused));
const enum cw_stat *_cw_stat __attribute__((unused));
const enum cw_task_flags *_cw_task_flags __attribute__((unused));
const struct cw_kill *_cw_kill __attribute__((unused));
const enum cw_kill_class *_cw_kill_class __attribute__((unused));
const enum cw_kill_outcome *_cw_kill_outcome __attribute__((unused));
const enum cw_kill_reason *_cw_kill_reason __attribute__((unused));
const enum cw_arm *_cw_arm __attribute__((unused));
const enum cw_container_verdict *_cw_container_verdict __attribute__((unused));

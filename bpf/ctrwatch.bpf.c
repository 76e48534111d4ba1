// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* ctrwatch kernel programs: process, cgroup and namespace life on the node. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "ctrwatch.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#include "maps.bpf.h"
#include "emit.bpf.h"
#include "task.bpf.h"
#include "process.bpf.h"
#include "cgroup.bpf.h"
#include "syscall.bpf.h"

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Every record that crosses the kernel boundary. Included by the bpf/ programs and
 * native/ addon; mirrored by src/decode/layout.ts, which test/unit/layout.test.ts
 * checks against the BTF of the built object.
 *
 * Rules: plain fixed-width types, natural alignment, explicit padding (no
 * `packed`), every struct a multiple of 8 bytes so that records stay aligned
 * when userspace copies them back to back into one batch.
 */
#ifndef CTRWATCH_H
#define CTRWATCH_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

enum cw_type {
	CW_FORK = 1,
	CW_EXEC = 2,
	CW_EXIT = 3,
	CW_CGROUP_MKDIR = 4,
	CW_CGROUP_RMDIR = 5,
	CW_CGROUP_ATTACH = 6,
	CW_SYSCALL = 7,
	CW_TYPE_MAX = 8,
};

/* Namespace slots in cw_task.ns[] and host_ns[]. */
enum cw_ns {
	CW_NS_MNT = 0,
	CW_NS_PID = 1,
	CW_NS_NET = 2,
	CW_NS_UTS = 3,
	CW_NS_IPC = 4,
	CW_NS_CGROUP = 5,
	CW_NS_USER = 6,
	CW_NS_TIME = 7,
	CW_NS_COUNT = 8,
};

/* cw_task.flags */
enum cw_task_flags {
	CW_TF_IN_CONTAINER = 1 << 0, /* mnt or pid namespace is not the host's */
	CW_TF_FOLLOWED = 1 << 1,     /* in the kernel's follow set: its forks and exits are sent */
	CW_TF_LEADER = 1 << 2,       /* pid == tgid */
};

/* Syscalls reported by CW_SYSCALL records (cw_syscall.sc). */
enum cw_sc {
	CW_SC_SETNS = 1,
	CW_SC_UNSHARE = 2,
	CW_SC_MOUNT = 3,
	CW_SC_CHROOT = 4,
	CW_SC_PIVOT_ROOT = 5,
	CW_SC_PTRACE = 6,
	CW_SC_OPEN_WRITE = 7,    /* open/openat for writing a kernel control file (release_agent, core_pattern, …) */
	CW_SC_CONNECT_UNIX = 8,  /* connect to a *.sock unix socket (runtime APIs) from a followed process */
	CW_SC_INIT_MODULE = 9,
	CW_SC_FINIT_MODULE = 10,
	CW_SC_MAX = 11,
};

#define CW_COMM_LEN 16
#define CW_FILENAME_LEN 256
#define CW_ARGS_LEN 1024
#define CW_CGPATH_LEN 512
#define CW_SCPATH_LEN 256
#define CW_FSTYPE_LEN 32

/* Per-CPU counters (map `stats`): two slots a record type, then the rest. */
#define CW_STAT_SENT(type) ((type) * 2)
#define CW_STAT_DROPPED(type) ((type) * 2 + 1)
enum cw_stat {
	CW_STAT_PENDING_FULL = CW_TYPE_MAX * 2, /* syscall enter could not be stashed */
	CW_STAT_TASKS_FULL,                     /* follow-set insert failed */
	CW_STAT_ARGS_FAULT,                     /* argv could not be read (page not present) */
	CW_STAT_WAKEUPS,                        /* records sent with a forced wake-up */
	CW_STAT_MAX,
};

/* Common header of every record. size is the whole record, header included. */
struct cw_hdr {
	__u16 type;
	__u16 size;
	__u32 cpu;
	__u64 ktime; /* CLOCK_MONOTONIC ns, same clock as process.hrtime() */
};

/* Who did it: enough to build the process tree without reading /proc. */
struct cw_task {
	__u64 start_ns;        /* group leader's start_boottime: with tgid, the process identity */
	__u64 parent_start_ns; /* real parent's group leader start_boottime */
	__u64 cap_effective;
	__u64 cgroup_id;       /* kernfs id of its cgroup in the tracked hierarchy */
	__u32 pid;             /* thread id, host view */
	__u32 tgid;            /* process id, host view */
	__u32 ppid;            /* real parent's tgid */
	__u32 nspid;           /* tgid in its own pid namespace */
	__u32 uid;
	__u32 euid;
	__u32 gid;
	__u32 egid;
	__u32 ns[CW_NS_COUNT]; /* namespace inode numbers, enum cw_ns order */
	__u32 flags;           /* enum cw_task_flags */
	__u32 _pad0;
	char comm[CW_COMM_LEN];
};

struct cw_fork {
	struct cw_hdr hdr;
	struct cw_task task;     /* the child */
	__u32 new_ns;            /* bit (1 << enum cw_ns) set where the child's ns differs from the parent's */
	__u32 _pad0;
};

/* Variable length: fixed part, then args_len bytes of NUL-separated argv,
 * rounded up to 8. size in the header covers exactly that. */
struct cw_exec {
	struct cw_hdr hdr;
	struct cw_task task;
	__u64 exe_ino;
	__s64 exe_mtime;         /* seconds */
	__s64 exe_ctime;         /* seconds */
	__u32 exe_dev;
	__u32 exe_fs_magic;      /* s_magic of the exe's filesystem (overlayfs: 0x794c7630) */
	__u32 exe_nlink;
	__u32 old_pid;           /* thread id before exec (differs when a thread exec'd) */
	__u32 args_len;          /* bytes of args[] in this record */
	__u32 args_truncated;    /* 1 when argv was longer than CW_ARGS_LEN */
	char filename[CW_FILENAME_LEN]; /* as passed to execve, NUL-terminated */
	char args[CW_ARGS_LEN];
};

struct cw_exit {
	struct cw_hdr hdr;
	struct cw_task task;
	__s32 exit_code;          /* wait status: (code << 8) | signal */
	__u32 _pad0;
};

struct cw_cgroup {
	struct cw_hdr hdr;
	struct cw_task task;      /* mkdir/rmdir: who did it; attach: the task moved */
	__u64 cgroup_id;
	__u32 hierarchy_id;
	__u32 level;
	char path[CW_CGPATH_LEN]; /* path inside its hierarchy, NUL-terminated */
};

struct cw_syscall {
	struct cw_hdr hdr;
	struct cw_task task;      /* after the call: setns/unshare show the new namespaces here */
	__u64 args[4];            /* raw arguments (setns: fd, nstype; unshare: flags; mount: flags; ptrace: request, pid; open: flags) */
	__u32 old_ns[CW_NS_COUNT];/* namespaces before the call */
	__u32 sc;                 /* enum cw_sc */
	__s32 ret;                /* open/connect are sent at entry: ret is 0 there */
	char path0[CW_SCPATH_LEN];/* mount: source; chroot/pivot_root: new root; open: file; connect: socket path */
	char path1[CW_SCPATH_LEN];/* mount: target; pivot_root: put_old */
	char fstype[CW_FSTYPE_LEN];
};

#ifdef __cplusplus
#define _Static_assert static_assert
#endif

/* The exec record's fixed part ends where args[] starts. */
#define CW_EXEC_FIXED_SIZE (sizeof(struct cw_exec) - CW_ARGS_LEN)

_Static_assert(sizeof(struct cw_hdr) == 16, "cw_hdr");
_Static_assert(sizeof(struct cw_task) == 120, "cw_task");
_Static_assert(sizeof(struct cw_fork) == 144, "cw_fork");
_Static_assert(sizeof(struct cw_exec) == 1464, "cw_exec");
_Static_assert(sizeof(struct cw_exit) == 144, "cw_exit");
_Static_assert(sizeof(struct cw_cgroup) == 664, "cw_cgroup");
_Static_assert(sizeof(struct cw_syscall) == 752, "cw_syscall");
_Static_assert(sizeof(struct cw_exec) % 8 == 0 && CW_EXEC_FIXED_SIZE % 8 == 0, "cw_exec align");

#endif /* CTRWATCH_H */

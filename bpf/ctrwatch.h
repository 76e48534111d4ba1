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
	CW_OBJECT = 8,	 /* struct cw_obj: the kernel object a syscall touched, read at its exit */
	CW_GUARD = 12,	 /* a signal or ptrace aimed at the sensor */
	CW_CONNECT = 13, /* a connect decided from the socket object at sys_exit */
	CW_URING = 14,	 /* an io_uring submission of a watched opcode */
	CW_TYPE_MAX = 16,
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
	CW_TF_LEADER = 1 << 2,	     /* pid == tgid */
};

/* Syscalls reported by CW_SYSCALL records (cw_syscall.sc). */
enum cw_sc {
	CW_SC_SETNS = 1,
	CW_SC_UNSHARE = 2,
	CW_SC_MOUNT = 3,
	CW_SC_CHROOT = 4,
	CW_SC_PIVOT_ROOT = 5,
	CW_SC_PTRACE = 6,
	CW_SC_OPEN_WRITE = 7,	/* open/openat for writing a kernel control file (release_agent, core_pattern, …) */
	CW_SC_CONNECT_UNIX = 8, /* connect to a *.sock unix socket (runtime APIs) from a followed process */
	CW_SC_INIT_MODULE = 9,
	CW_SC_FINIT_MODULE = 10,
	/* Doors whose kernel object is read at syscall exit (cw_obj records; cw_obj
	 * also uses CW_SC_MOUNT, CW_SC_CHROOT and CW_SC_PIVOT_ROOT). */
	CW_SC_OPEN = 16,
	CW_SC_OPENAT = 17,
	CW_SC_OPENAT2 = 18,
	CW_SC_CREAT = 19,
	CW_SC_FSMOUNT = 20,
	CW_SC_MOVE_MOUNT = 21,
	CW_SC_OPEN_TREE = 22,
	CW_SC_PROCESS_VM_WRITEV = 23,
	CW_SC_PIDFD_GETFD = 24,
	CW_SC_MOUNT_SETATTR = 25,
	CW_SC_OPEN_BY_HANDLE_AT = 26,
	CW_SC_EXEC = 27, /* an exec of a file on a mount whose maker was killed (containment) */
	CW_SC_BPF =
		32, /* bpf() from a followed or in-container process: args[0] cmd, args[2] size, args[3] first 8 bytes of attr */
	CW_SC_IO_URING_SETUP = 33, /* io_uring_setup() from a followed or in-container process: args[0] entries */
	CW_SC_MAX = 48,
};

#define CW_COMM_LEN	 16
#define CW_FILENAME_LEN	 256
#define CW_ARGS_LEN	 1024
#define CW_CGPATH_LEN	 512
#define CW_SCPATH_LEN	 256
#define CW_FSTYPE_LEN	 32
#define CW_CHAIN_DEPTH	 8
#define CW_NAME_LEN	 32
#define CW_UNIX_PATH_LEN 112 /* sun_path is 108: rounded up to 8 */

/*
 * Containment (policy `action: kill | dry-run`): the escape action classes the
 * kernel can stop at syscall exit. The control plane arms each class in the
 * `kill_arm` map (enum cw_arm); the record of the action then carries a
 * struct cw_kill saying what the kernel did.
 */
enum cw_kill_class {
	CW_KC_NONE = 0,
	CW_KC_CONTROL_WRITE = 1, /* write-open of a kernel control file (release_agent, core_pattern, …) */
	CW_KC_SETNS_HOST = 2,	 /* setns into one of the host's namespaces */
	CW_KC_MOUNT_CGROUP = 3,	 /* a cgroup hierarchy mounted (mount(2), new mount API, writable copy) */
	CW_KC_MOUNT_DEVICE = 4,	 /* a host block device mounted (mount(2), fsmount) */
	CW_KC_ROOT_HOST = 5,	 /* chroot or pivot_root to the host's / */
	CW_KC_PTRACE_HOST = 6,	 /* ptrace attach to a process outside the container */
	CW_KC_PROC_MEM = 7,	 /* /proc/<pid>/mem of a process outside the container opened for writing */
	CW_KC_BPF = 8,		 /* bpf() from a container */
	CW_KC_SENSOR_SIGNAL = 9, /* a signal to the sensor from a container */
	CW_KC_MAX = 10,
};

/* kill_arm values */
enum cw_arm {
	CW_ARM_REPORT = 0,
	CW_ARM_KILL = 1,
	CW_ARM_DRY_RUN = 2,
};

/* cw_kill.outcome; CW_KO_NONE: the class was not armed (report only) */
enum cw_kill_outcome {
	CW_KO_NONE = 0,
	CW_KO_KILLED = 1,     /* bpf_send_signal(SIGKILL) accepted before the syscall returned */
	CW_KO_WOULD_KILL = 2, /* dry-run */
	CW_KO_FAILED = 3,     /* cw_kill.err says why; user space may still kill through a pidfd */
	CW_KO_SPARED = 4,     /* cw_kill.reason says why */
	CW_KO_DENIED = 5,     /* BPF-LSM refused the call (EPERM): nothing happened */
	CW_KO_MAX = 6,
};

/* cw_kill.reason */
enum cw_kill_reason {
	CW_KR_NONE = 0,
	CW_KR_NOT_CONTAINER = 1, /* its cgroup is no container the control plane has told the kernel of (yet) */
	CW_KR_ALLOWLISTED = 2,	 /* its container's image or creator is allowlisted by the policy */
	CW_KR_HOST_INIT = 3,	 /* the host's PID 1 */
	CW_KR_KTHREAD = 4,	 /* a kernel thread */
	CW_KR_SELF = 5,		 /* the sensor itself */
	CW_KR_NO_HELPER = 6,	 /* no bpf_send_signal on this kernel (5.3+) */
	CW_KR_SEND_ERROR = 7,	 /* bpf_send_signal returned cw_kill.err */
	CW_KR_INSIDE = 8,	 /* the process acted on lies in the actor's own container */
};

/* contain_cgroups values: what the control plane decided for a container, by its cgroup id. */
enum cw_container_verdict {
	CW_CV_UNKNOWN = 0, /* not in the map: not a container, or not enriched yet */
	CW_CV_ARMED = 1,   /* a container its policy may kill in */
	CW_CV_SPARED = 2,  /* allowlisted image or trusted creator: never killed */
};

/* What the kernel did about one action: the last 8 bytes of cw_syscall, cw_obj and cw_guard. */
struct cw_kill {
	__u8 cls;     /* enum cw_kill_class, 0: the record is no containment class */
	__u8 outcome; /* enum cw_kill_outcome */
	__u8 reason;  /* enum cw_kill_reason */
	__u8 arm;     /* enum cw_arm, as armed when decided */
	__s32 err;    /* CW_KR_SEND_ERROR: bpf_send_signal's -errno */
};

/* Per-CPU counters (map `stats`): two slots a record type, then the rest. */
#define CW_STAT_SENT(type)    ((type)*2)
#define CW_STAT_DROPPED(type) ((type)*2 + 1)
enum cw_stat {
	CW_STAT_PENDING_FULL = CW_TYPE_MAX * 2, /* syscall enter could not be stashed */
	CW_STAT_TASKS_FULL,			/* follow-set insert failed */
	CW_STAT_ARGS_FAULT,			/* argv could not be read (page not present) */
	CW_STAT_WAKEUPS,			/* records sent with a forced wake-up */
	CW_STAT_FAILED_UNFOLLOWED,		/* failed escape-list calls of host processes: counted, not sent */
	CW_STAT_RATE_LIMITED,			/* records a process sent beyond its token bucket: counted, not sent */
	CW_STAT_BULK_SENT,			/* per ring: records in the bulk ring (fork/exec/exit) */
	CW_STAT_BULK_DROPPED,
	CW_STAT_PRIO_SENT, /* per ring: records in the priority ring (lifecycle, escapes, guard) */
	CW_STAT_PRIO_DROPPED,
	CW_STAT_URING_SUBMITS, /* io_uring submissions by followed processes, any opcode */
	CW_STAT_FORKS_HELD,    /* forks of followed processes held back: no record until the child's own (cw_fork) */
	CW_STAT_KILL_FIRST,    /* containment outcomes, one slot per class (1..) and outcome (1..): CW_STAT_KILL() */
	CW_STAT_MAX = CW_STAT_KILL_FIRST + (CW_KC_MAX - 1) * (CW_KO_MAX - 1),
};
#define CW_STAT_KILL(cls, outcome) (CW_STAT_KILL_FIRST + ((cls)-1) * (CW_KO_MAX - 1) + ((outcome)-1))

/* Common header of every record. size is the whole record, header included. */
struct cw_hdr {
	__u16 type;
	__u16 size;
	__u32 cpu;
	__u64 ktime; /* CLOCK_MONOTONIC ns, same clock as process.hrtime() */
};

/* Who did it: enough to build the process tree without reading /proc. */
struct cw_task {
	__u64 start_ns;	       /* group leader's start_boottime: with tgid, the process identity */
	__u64 parent_start_ns; /* real parent's group leader start_boottime */
	__u64 cap_effective;
	__u64 cgroup_id; /* kernfs id of its cgroup in the tracked hierarchy */
	__u32 pid;	 /* thread id, host view */
	__u32 tgid;	 /* process id, host view */
	__u32 ppid;	 /* real parent's tgid */
	__u32 nspid;	 /* tgid in its own pid namespace */
	__u32 uid;
	__u32 euid;
	__u32 gid;
	__u32 egid;
	__u32 ns[CW_NS_COUNT]; /* namespace inode numbers, enum cw_ns order */
	__u32 flags;	       /* enum cw_task_flags */
	__u32 _pad0;
	char comm[CW_COMM_LEN];
};

struct cw_fork {
	struct cw_hdr hdr;
	struct cw_task task; /* the child */
	__u32 new_ns;	     /* bit (1 << enum cw_ns) set where the child's ns differs from the parent's */
	__u32 late; /* 1: a held-back fork (TS_UNSENT), sent when that child forked in turn: its task then, new_ns 0 */
};

/* Variable length: the fixed part, then data[]: the filename as passed to
 * execve (filename_len bytes, its NUL included), at once followed by
 * args_len bytes of NUL-separated argv; size in the header covers both,
 * rounded up to 8. Why not two fixed fields: exec records are most of a busy
 * container's ring traffic, the copy into the ring was most of cw_exec's time
 * in a profile, and a fixed 256-byte filename was about half of a record. */
struct cw_exec {
	struct cw_hdr hdr;
	struct cw_task task;
	__u64 exe_ino;
	__s64 exe_mtime; /* seconds */
	__s64 exe_ctime; /* seconds */
	__u32 exe_dev;
	__u32 exe_fs_magic; /* s_magic of the exe's filesystem (overlayfs: 0x794c7630) */
	__u32 exe_nlink;
	__u32 old_pid;	      /* thread id before exec (differs when a thread exec'd) */
	__u32 args_len;	      /* bytes of argv in data[], after the filename */
	__u32 args_truncated; /* 1 when argv was longer than CW_ARGS_LEN */
	__u32 filename_len;   /* bytes of data[] the filename takes, its NUL included: 1 to CW_FILENAME_LEN */
	__u32 _pad0;
	char data[CW_FILENAME_LEN + CW_ARGS_LEN];
};

struct cw_exit {
	struct cw_hdr hdr;
	struct cw_task task;
	__s32 exit_code; /* wait status: (code << 8) | signal */
	__u32 _pad0;
};

struct cw_cgroup {
	struct cw_hdr hdr;
	struct cw_task task; /* mkdir/rmdir: who did it; attach: the task moved */
	__u64 cgroup_id;
	__u32 hierarchy_id;
	__u32 level;
	char path[CW_CGPATH_LEN]; /* path inside its hierarchy, NUL-terminated */
};

struct cw_syscall {
	struct cw_hdr hdr;
	struct cw_task task; /* after the call: setns/unshare show the new namespaces here */
	__u64 args
		[4]; /* raw arguments (setns: fd, nstype; unshare: flags; mount: flags; ptrace: request, pid; open: flags) */
	__u32 old_ns[CW_NS_COUNT]; /* namespaces before the call */
	__u32 sc;		   /* enum cw_sc */
	__s32 ret;		   /* open/connect are sent at entry: ret is 0 there */
	char path0[CW_SCPATH_LEN]; /* mount: source; chroot/pivot_root: new root; open: file; connect: socket path */
	char path1[CW_SCPATH_LEN]; /* mount: target; pivot_root: put_old */
	char fstype[CW_FSTYPE_LEN];
	struct cw_kill kill;
};

/* cw_obj.oflags */
enum cw_obj_flags {
	CW_OF_BDEV = 1 << 0,	     /* the superblock sits on a block device (sb->s_bdev) */
	CW_OF_SB_ROOT = 1 << 1,	     /* the dentry is its superblock's root */
	CW_OF_CHAIN_TRUNC = 1 << 2,  /* the dentry chain is deeper than CW_CHAIN_DEPTH */
	CW_OF_RDONLY = 1 << 3,	     /* the mount is read-only */
	CW_OF_TARGET = 1 << 4,	     /* target_* name a process (proc/<pid>/mem, pidfd, process_vm_writev) */
	CW_OF_TARGET_IN_NS = 1 << 5, /* that process is in the actor's pid namespace or one nested in it */
	CW_OF_TARGET_VPID = 1 << 6,  /* target_tgid is a pid in the actor's pid namespace, not the host's */
	CW_OF_REF = 1 << 7,	     /* ref_dev/ref_ino: root of the actor's pid-namespace init */
	CW_OF_FILE = 1 << 8,	     /* the object is an open file (dev/ino/magic/chain are the file's) */
	CW_OF_REF_BENEATH = 1 << 9,  /* the dentry is the reference root or below it (d_parent walk) */
	CW_OF_MNT_SUBTREE =
		1 << 10,       /* the mount shows a subtree of its filesystem (a bind of a directory), not all of it */
	CW_OF_TOKEN = 1 << 11, /* a read-open of a file on a registered service-account volume (token.bpf.h) */
};

/*
 * What a syscall touched, read from kernel objects at its exit: the file now
 * at fd `ret`, the mount an fd refers to, the newest mount of the task's mount
 * namespace, or the task's new root. The path a process passed is kept for
 * messages only; rules decide from dev, magic, fstype and the dentry chain.
 */
struct cw_obj {
	struct cw_hdr hdr;
	struct cw_task task;
	__u32 sc; /* enum cw_sc: which door */
	__s32 ret;
	__u64 arg;	       /* the call's flags (open flags, mount flags, open_tree flags…) */
	__u64 ino;	       /* inode of the file, or of the mount's or new root's dentry */
	__u64 target_start_ns; /* target's start_boottime when CW_OF_TARGET and host view */
	__u64 ref_ino;
	__u32 dev;    /* sb->s_dev, kernel encoding (major << 20 | minor) */
	__u32 magic;  /* sb->s_magic */
	__u32 f_mode; /* open: file->f_mode (FMODE_WRITE 0x2) */
	__u32 oflags; /* enum cw_obj_flags */
	__u32 mnt_id; /* the mount's id, as in /proc/PID/mountinfo */
	__u32 target_tgid;
	__u32 target_pidns; /* target's own pid namespace inode */
	__u32 ref_dev;
	char fstype[CW_FSTYPE_LEN];		 /* sb->s_type->name */
	char chain[CW_CHAIN_DEPTH][CW_NAME_LEN]; /* dentry names, leaf first, up to the superblock's root */
	char path[CW_SCPATH_LEN];		 /* as passed (messages only), empty when none */
	struct cw_kill kill;
};

/* cw_guard.what */
enum cw_guard_what {
	CW_GUARD_SIGNAL = 1, /* signal_generate with the sensor as target */
	CW_GUARD_PTRACE = 2, /* ptrace attach/seize naming the sensor */
};

/* Something aimed at the sensor. task is the sender (signal) or tracer (ptrace). */
struct cw_guard {
	struct cw_hdr hdr;
	struct cw_task task;
	__u32 what;	  /* enum cw_guard_what */
	__u32 target_tid; /* the sensor's thread that was aimed at */
	__s32 sig;	  /* signal: its number; ptrace: the request */
	__s32 code;	  /* signal: si_code (SI_USER 0, SI_TKILL -6, SI_KERNEL 0x80, …) */
	__s32 result;	  /* signal: TRACE_SIGNAL_* (0 delivered, 1 ignored, …); ptrace: return value */
	__u32 _pad0;
	struct cw_kill kill;
};

/* cw_connect.peer_kind */
enum cw_peer_kind {
	CW_PEER_UNIX_PATH = 1, /* unix socket whose peer is bound to a filesystem path: peer_dev/peer_ino set */
	CW_PEER_INET = 2,      /* AF_INET/AF_INET6 to a watched port */
};

/* A connect, decided at sys_exit from the socket object, not from the path the
 * caller passed: for AF_UNIX the peer's bound file (inode, device, name as the
 * server bound it); for AF_INET/6 the address and port. */
struct cw_connect {
	struct cw_hdr hdr;
	struct cw_task task;
	__u64 peer_ino;	 /* AF_UNIX: inode of the file the listening socket is bound to */
	__u32 peer_dev;	 /* its superblock's s_dev (kernel encoding: major << 20 | minor) */
	__u32 peer_kind; /* enum cw_peer_kind */
	__s32 ret;
	__u32 fd;
	__u16 family;
	__u16 port; /* AF_INET/6: host byte order */
	__u32 _pad0;
	__u8 addr[16];		     /* AF_INET: 4 bytes; AF_INET6: 16 */
	char path[CW_UNIX_PATH_LEN]; /* AF_UNIX: the peer's bound sun_path (as the server bound it) */
};

/* An io_uring submission of a watched opcode (open, connect, …) by a followed process. */
struct cw_uring {
	struct cw_hdr hdr;
	struct cw_task task;
	__u64 user_data;
	__u32 opcode;	 /* IORING_OP_* */
	__u32 sq_thread; /* 1 when the kernel's SQPOLL thread submitted it */
};

#ifdef __cplusplus
#define _Static_assert static_assert
#endif

/* The exec record's fixed part ends where data[] starts. */
#define CW_EXEC_FIXED_SIZE (sizeof(struct cw_exec) - CW_FILENAME_LEN - CW_ARGS_LEN)

_Static_assert(sizeof(struct cw_hdr) == 16, "cw_hdr");
_Static_assert(sizeof(struct cw_task) == 120, "cw_task");
_Static_assert(sizeof(struct cw_fork) == 144, "cw_fork");
_Static_assert(sizeof(struct cw_exec) == 1472, "cw_exec");
_Static_assert(__builtin_offsetof(struct cw_exec, data) == CW_EXEC_FIXED_SIZE, "cw_exec data");
_Static_assert(sizeof(struct cw_exit) == 144, "cw_exit");
_Static_assert(sizeof(struct cw_cgroup) == 664, "cw_cgroup");
_Static_assert(sizeof(struct cw_kill) == 8, "cw_kill");
_Static_assert(sizeof(struct cw_syscall) == 760, "cw_syscall");
_Static_assert(sizeof(struct cw_guard) == 168, "cw_guard");
_Static_assert(sizeof(struct cw_connect) == 296, "cw_connect");
_Static_assert(sizeof(struct cw_uring) == 152, "cw_uring");
_Static_assert(sizeof(struct cw_obj) == 760, "cw_obj");
_Static_assert(sizeof(struct cw_exec) % 8 == 0 && CW_EXEC_FIXED_SIZE % 8 == 0, "cw_exec align");

#endif /* CTRWATCH_H */

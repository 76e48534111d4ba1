/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Fields that moved between kernel versions, read through CO-RE flavours: the
 * committed vmlinux.h describes the newest layout, and the ___suffix structs
 * below name the older ones. libbpf matches each against the running kernel's
 * BTF at load and bpf_core_field_exists() picks the branch that exists there.
 */
#ifndef CW_COMPAT_BPF_H
#define CW_COMPAT_BPF_H

/* Before 6.6: struct timespec64 i_mtime, i_ctime. */
struct inode___pre66 {
	struct timespec64 i_mtime;
	struct timespec64 i_ctime;
} __attribute__((preserve_access_index));

/* 6.6: i_ctime became __i_ctime (accessors only). */
struct inode___v66 {
	struct timespec64 i_mtime;
	struct timespec64 __i_ctime;
} __attribute__((preserve_access_index));

/* 6.7 to 6.10: i_mtime became __i_mtime too. 6.11 split them into
 * i_{m,c}time_sec and _nsec, which is what vmlinux.h has. */
struct inode___v67 {
	struct timespec64 __i_mtime;
	struct timespec64 __i_ctime;
} __attribute__((preserve_access_index));

/* Before 6.3: kernel_cap_t was struct kernel_cap_struct { __u32 cap[2]; }. */
struct kernel_cap_struct___pre63 {
	__u32 cap[2];
} __attribute__((preserve_access_index));

struct cred___pre63 {
	struct kernel_cap_struct___pre63 cap_effective;
} __attribute__((preserve_access_index));

/* The effective capability set, on every kernel. cred is a BTF pointer. */
static __always_inline __u64 cred_cap_effective(const struct cred *cred)
{
	const struct cred___pre63 *old = (const void *)cred;

	if (bpf_core_field_exists(cred->cap_effective.val))
		return cred->cap_effective.val;
	return old->cap_effective.cap[0] | (__u64)old->cap_effective.cap[1] << 32;
}

/* Seconds of an inode's modification and change times, on every kernel. ino
 * is a BTF pointer (from a tp_btf argument): plain loads, no probe reads. */
static __always_inline void inode_times(struct inode *ino, __s64 *mtime, __s64 *ctime)
{
	struct inode___pre66 *a = (void *)ino;
	struct inode___v66 *b = (void *)ino;
	struct inode___v67 *c = (void *)ino;

	if (bpf_core_field_exists(ino->i_mtime_sec)) {
		*mtime = ino->i_mtime_sec;
		*ctime = ino->i_ctime_sec;
	} else if (bpf_core_field_exists(c->__i_mtime)) {
		*mtime = c->__i_mtime.tv_sec;
		*ctime = c->__i_ctime.tv_sec;
	} else if (bpf_core_field_exists(b->__i_ctime)) {
		*mtime = b->i_mtime.tv_sec;
		*ctime = b->__i_ctime.tv_sec;
	} else if (bpf_core_field_exists(a->i_ctime)) {
		*mtime = a->i_mtime.tv_sec;
		*ctime = a->i_ctime.tv_sec;
	} else {
		/* A layout not known here: times 0 rather than a failed load. */
		*mtime = 0;
		*ctime = 0;
	}
}

#endif

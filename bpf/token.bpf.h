/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Service-account tokens: a read-open, by a followed process, of a file on a
 * superblock user space registered as a pod's service-account volume (the
 * kubelet gives each pod's token volume a tmpfs of its own, so its s_dev
 * names it whatever path reaches it: the mount point, ..data symlinks,
 * /proc/self/root/…, /proc/self/fd/N reopens, openat2). And the API servers'
 * addresses, whose connects net.bpf.h sends even when their port is not
 * watched.
 *
 * Decided at sys_exit of the open family from the file at fd `ret`; nothing is
 * stashed at enter. The common path: one load of token_any (0 until user space
 * registers a volume), then the follow set by tgid; only a followed process's
 * successful open reads its file and looks its superblock up.
 */
#ifndef CW_TOKEN_BPF_H
#define CW_TOKEN_BPF_H

#define FMODE_READ 0x1

/* Service-account volumes by sb->s_dev (kernel encoding); kept by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} token_devs SEC(".maps");

/* Set by user space: token_devs holds at least one volume. */
__u32 token_any = 0;

struct api_key {
	__u8 addr[16]; /* AF_INET: 4 bytes, the rest 0 */
	__u16 port;    /* host byte order */
	__u16 family;
	__u32 _pad0;
};

/* Kubernetes API server addresses; kept by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct api_key);
	__type(value, __u8);
} api_servers SEC(".maps");

static __always_inline int token_open(__u64 id, __u32 sc, long ret)
{
	struct super_block *sb;
	struct dentry *d;
	struct file *f;
	struct cw_obj *o;
	__u32 dev;

	if (!token_any || ret < 0 || !obj_followed(id))
		return 0;
	f = obj_fd_file(ret);
	if (!f)
		return 0;
	d = BPF_CORE_READ(f, f_path.dentry);
	sb = BPF_CORE_READ(d, d_sb);
	dev = BPF_CORE_READ(sb, s_dev);
	if (!bpf_map_lookup_elem(&token_devs, &dev))
		return 0;
	if (!(BPF_CORE_READ(f, f_mode) & FMODE_READ) || !bucket_take(id >> 32, CW_BUCKET_TOKEN))
		return 0;
	o = obj_begin(id, sc, BPF_CORE_READ(f, f_flags));
	if (!o)
		return 0;
	o->f_mode = BPF_CORE_READ(f, f_mode);
	o->oflags |= CW_OF_FILE | CW_OF_TOKEN;
	obj_vfsmount(o, BPF_CORE_READ(f, f_path.mnt));
	obj_chain(o, d);
	obj_send(o, id, ret);
	return 0;
}

#endif

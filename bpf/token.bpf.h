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
 * successful open reads its file and looks its superblock up (one lookup).
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

/* The file at fd in the current task. Where the BTF task pointer exists (5.11+)
 * the fdtable is reached by plain loads, not helper calls: this runs on every
 * open of a followed process once a volume is registered. */
static __always_inline struct file *token_fd_file(long fd)
{
	struct file *f = NULL;

	if (!have_task_btf())
		return obj_fd_file(fd);
	struct fdtable *fdt = bpf_get_current_task_btf()->files->fdt;

	if (fd < 0 || fd >= fdt->max_fds)
		return NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fdt->fd[fd]);
	return f;
}

static __always_inline int token_open(__u64 id, __u32 sc, long ret)
{
	__u32 tgid = id >> 32;
	struct task_state *s;
	struct super_block *sb;
	struct dentry *d;
	struct file *f;
	struct cw_obj *o;
	__u32 dev;

	if (!token_any || ret < 0 || tgid == self_tgid)
		return 0;
	/* The follow set by tgid: one lookup that misses for the host's processes.
	 * Whether it is the same process (start time) is asked on a hit only. */
	s = bpf_map_lookup_elem(&tasks, &tgid);
	if (!s || !(s->flags & TS_FOLLOW))
		return 0;
	f = token_fd_file(ret);
	if (!f)
		return 0;
	d = BPF_CORE_READ(f, f_path.dentry);
	sb = BPF_CORE_READ(d, d_sb);
	dev = BPF_CORE_READ(sb, s_dev);
	if (!bpf_map_lookup_elem(&token_devs, &dev))
		return 0;
	if (!(BPF_CORE_READ(f, f_mode) & FMODE_READ) || !obj_followed(id) || !bucket_take(tgid, CW_BUCKET_TOKEN))
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

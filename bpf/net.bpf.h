/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * connect() by a followed process, decided at sys_exit from the socket
 * object rather than the path string the caller passed (a symlink or a bind
 * mount gives a runtime socket any name):
 *  - AF_UNIX: fd -> file -> socket -> sk -> unix_sock.peer. A connected
 *    stream socket's peer is the server's new socket, which shares the
 *    listener's bound path and address; its file's inode and device name the
 *    socket whatever path the client used. Sent when that inode is one of the
 *    runtime sockets user space put in `rt_socks`, or when the server bound it
 *    under a name ending in ".sock" (a runtime user space has not found yet).
 *  - AF_INET/AF_INET6: a connect to a port in `watch_ports` (runtime and
 *    kubelet APIs) or to an address and port in `api_servers` (Kubernetes API
 *    servers, token.bpf.h), with its result: a refused attempt is news too.
 * The entry half only looks up the follow set by tgid, then reads the
 * sockaddr's family (and port) of followed processes.
 */
#ifndef CW_NET_BPF_H
#define CW_NET_BPF_H

#define CW_AF_UNIX     1
#define CW_AF_INET     2
#define CW_AF_INET6    10
#define CW_EINPROGRESS 115

struct rt_sock_key {
	__u64 ino;
	__u32 dev;
	__u32 _pad0;
};

/* Runtime API sockets by file identity; kept current by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct rt_sock_key);
	__type(value, __u8);
} rt_socks SEC(".maps");

/* TCP/UDP ports (host byte order) whose connects from followed processes are sent. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);
	__type(value, __u8);
} watch_ports SEC(".maps");

struct conn_try {
	__u32 fd;
	__u16 family;
	__u16 port;
	__u8 addr[16];
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct conn_try);
} conn_tries SEC(".maps");

/* Whether the destination is a Kubernetes API server user space put in api_servers (token.bpf.h). */
static __always_inline bool api_server(const struct conn_try *t)
{
	struct api_key k = { .port = t->port, .family = t->family };

	__builtin_memcpy(k.addr, t->addr, sizeof(k.addr));
	return bpf_map_lookup_elem(&api_servers, &k) != NULL;
}

SEC("tracepoint/syscalls/sys_enter_connect")
int cw_net_enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	const __u8 *sa = (const __u8 *)ctx->args[1];
	struct conn_try t = { .fd = ctx->args[0] };
	__u16 port;

	if ((id >> 32) == self_tgid || !followed_tgid(id >> 32) || ctx->args[2] < 4)
		return 0;
	if (bpf_probe_read_user(&t.family, sizeof(t.family), sa))
		return 0;
	if (t.family == CW_AF_INET || t.family == CW_AF_INET6) {
		if (bpf_probe_read_user(&port, sizeof(port), sa + 2))
			return 0;
		t.port = bpf_ntohs(port);
		if (t.family == CW_AF_INET)
			bpf_probe_read_user(t.addr, 4, sa + 4);
		else if (ctx->args[2] >= 24)
			bpf_probe_read_user(t.addr, 16, sa + 8);
		if (!bpf_map_lookup_elem(&watch_ports, &t.port) && !api_server(&t))
			return 0;
	} else if (t.family != CW_AF_UNIX) {
		return 0;
	}
	bpf_map_update_elem(&conn_tries, &id, &t, BPF_ANY);
	return 0;
}

/* The socket behind fd in the current task's file table, or NULL. */
static __always_inline struct sock *fd_sock(__u32 fd)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	struct socket *so;

	if (fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	bpf_core_read(&f, sizeof(f), &fds[fd]);
	if (!f)
		return NULL;
	/* connect() just succeeded on this fd, so it is a socket: private_data is its struct socket. */
	so = BPF_CORE_READ(f, private_data);
	return BPF_CORE_READ(so, sk);
}

static __always_inline bool name_ends_sock(const char *p, int n)
{
	/* ".sock" or ".sock.ttrpc" at the end of a NUL-terminated name of n bytes. */
	if (n >= 5 && p[(n - 5) & 127] == '.' && p[(n - 4) & 127] == 's' && p[(n - 3) & 127] == 'o' &&
	    p[(n - 2) & 127] == 'c' && p[(n - 1) & 127] == 'k')
		return true;
	return n >= 11 && p[(n - 11) & 127] == '.' && p[(n - 10) & 127] == 's' && p[(n - 9) & 127] == 'o' &&
	       p[(n - 8) & 127] == 'c' && p[(n - 7) & 127] == 'k' && p[(n - 6) & 127] == '.' && p[(n - 5) & 127] == 't';
}

/* -1: not to be sent; 0: sent for the name the server bound; 1: a runtime socket user space knows. */
static __always_inline int connect_unix(struct cw_connect *r, struct sock *sk)
{
	bool known;
	struct unix_sock *peer = (struct unix_sock *)BPF_CORE_READ((struct unix_sock *)sk, peer);
	struct dentry *d;
	struct unix_address *a;
	struct rt_sock_key k = {};
	int n;

	if (!peer)
		return -1;
	d = BPF_CORE_READ(peer, path.dentry);
	if (!d)
		return -1; /* abstract or unnamed: no file to name it by */
	k.ino = BPF_CORE_READ(d, d_inode, i_ino);
	k.dev = BPF_CORE_READ(d, d_sb, s_dev);
	a = BPF_CORE_READ(peer, addr);
	n = 0;
	if (a)
		n = bpf_core_read_str(r->path, sizeof(r->path), &a->name[0].sun_path) - 1;
	known = bpf_map_lookup_elem(&rt_socks, &k) != NULL;
	if (!known && !(n > 0 && name_ends_sock(r->path, n)))
		return -1;
	r->peer_ino = k.ino;
	r->peer_dev = k.dev;
	r->peer_kind = CW_PEER_UNIX_PATH;
	return known;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int cw_net_exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct conn_try *t = bpf_map_lookup_elem(&conn_tries, &id);
	struct cw_connect rec = {},
			  *r = &rec; /* on the stack: this program is preemptible, per-CPU scratch is not safe */
	long ret = ctx->ret;
	int known = 0;

	if (!t)
		return 0;
	r->fd = t->fd;
	r->family = t->family;
	r->port = t->port;
	r->ret = ret;
	__builtin_memcpy(r->addr, t->addr, sizeof(r->addr));
	bpf_map_delete_elem(&conn_tries, &id);
	if (r->family == CW_AF_UNIX) {
		struct sock *sk;

		/* Without a connected peer there is no object to decide from. */
		if (ret != 0 && ret != -CW_EINPROGRESS)
			return 0;
		sk = fd_sock(r->fd);
		if (!sk || BPF_CORE_READ(sk, __sk_common.skc_family) != CW_AF_UNIX)
			return 0;
		known = connect_unix(r, sk);
		if (known < 0)
			return 0;
	} else {
		r->peer_kind = CW_PEER_INET;
	}
	/* A connect to a socket user space knows as a runtime's is always sent:
	 * its bucket is for the rest (sockets named *.sock, watched ports), so a
	 * flood of connects to a container's own *.sock cannot hide it. */
	if (known <= 0 && !bucket_take(id >> 32, CW_BUCKET_CONNECT))
		return 0;
	current_fill(&r->task);
	hdr_fill(&r->hdr, CW_CONNECT, sizeof(*r));
	emit(r, CW_CONNECT, sizeof(*r), true);
	return 0;
}

#endif

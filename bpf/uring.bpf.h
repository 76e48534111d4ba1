/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * io_uring submissions by followed processes: every one is counted; open and
 * connect (IORING_OP_OPENAT, OPENAT2, CONNECT, SOCKET) are sent with their
 * opcode and user_data. A ring's operations never pass through the syscall
 * tracepoints, so this is the only view of them. 6.x has
 * io_uring_submit_req, 5.x io_uring_submit_sqe: the loader leaves out the one
 * this kernel lacks. Both run in the submitting task or in its SQPOLL thread,
 * a thread of the same process (5.12+; a kernel thread before, with no
 * process to name).
 */
#ifndef CW_URING_BPF_H
#define CW_URING_BPF_H

#define CW_IORING_OP_CONNECT 16
#define CW_IORING_OP_OPENAT  18
#define CW_IORING_OP_OPENAT2 28
#define CW_IORING_OP_SOCKET  45

static __always_inline int uring_submit(__u32 opcode, __u64 user_data, bool sq_thread)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct cw_uring r = {};

	if (tgid == self_tgid || !followed_tgid(tgid))
		return 0;
	stat_inc(CW_STAT_URING_SUBMITS);
	if (opcode != CW_IORING_OP_CONNECT && opcode != CW_IORING_OP_OPENAT && opcode != CW_IORING_OP_OPENAT2 &&
	    opcode != CW_IORING_OP_SOCKET)
		return 0;
	if (!bucket_take(tgid, CW_BUCKET_URING))
		return 0;
	current_fill(&r.task);
	r.user_data = user_data;
	r.opcode = opcode;
	r.sq_thread = sq_thread;
	hdr_fill(&r.hdr, CW_URING, sizeof(r));
	emit(&r, CW_URING, sizeof(r), true);
	return 0;
}

SEC("tracepoint/io_uring/io_uring_submit_req")
int cw_uring_submit_req(struct trace_event_raw_io_uring_submit_req *ctx)
{
	return uring_submit(ctx->opcode, ctx->user_data, ctx->sq_thread);
}

/* 5.x: TP_STRUCT__entry(void *ctx; u8 opcode; u64 user_data; bool force_nonblock; bool sq_thread) */
struct trace_event_raw_io_uring_submit_sqe {
	struct trace_entry ent;
	void *ctx;
	u8 opcode;
	u64 user_data;
	bool force_nonblock;
	bool sq_thread;
} __attribute__((preserve_access_index));

SEC("tracepoint/io_uring/io_uring_submit_sqe")
int cw_uring_submit_sqe(struct trace_event_raw_io_uring_submit_sqe *ctx)
{
	return uring_submit(ctx->opcode, ctx->user_data, ctx->sq_thread);
}

#endif

#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include "probe.h"

/* libbpf's probes return 1 (supported), 0 (not) or a negative errno (could not
 * tell, e.g. no privilege): only 1 counts. */
static bool yes(int r)
{
	return r == 1;
}

/* Loads "return 0" as a BTF-typed program hooked to a kernel type named in
 * vmlinux BTF. libbpf's own probe of these types tries an fentry load, which
 * fails on kernels that allow tp_btf but not fentry: so ask for the real hook. */
static bool btf_prog_loads(struct btf *vmlinux, enum bpf_prog_type type, enum bpf_attach_type attach,
			   const char *target, __u32 kind)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = attach);
	int id, fd;

	if (!vmlinux)
		return false;
	id = btf__find_by_name_kind(vmlinux, target, kind);
	if (id <= 0)
		return false;
	opts.attach_btf_id = id;
	fd = bpf_prog_load(type, NULL, "GPL", insns, 2, &opts);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static bool lsm_active(void)
{
	char buf[512] = {};
	FILE *f = fopen("/sys/kernel/security/lsm", "re");
	size_t n;

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* A comma-separated list such as "lockdown,capability,yama,bpf". */
	for (char *tok = strtok(buf, ",\n"); tok; tok = strtok(NULL, ",\n"))
		if (strcmp(tok, "bpf") == 0)
			return true;
	return false;
}

void cw_probe(struct cw_features *f)
{
	memset(f, 0, sizeof(*f));
	f->btf = access("/sys/kernel/btf/vmlinux", R_OK) == 0;
	f->ringbuf = yes(libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL));
	struct btf *vmlinux = f->btf ? btf__load_vmlinux_btf() : NULL;

	if (libbpf_get_error(vmlinux))
		vmlinux = NULL;
	f->tracing = btf_prog_loads(vmlinux, BPF_PROG_TYPE_TRACING, BPF_TRACE_RAW_TP, "btf_trace_sched_process_fork",
				    BTF_KIND_TYPEDEF);
	f->task_btf = yes(libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_get_current_task_btf, NULL));
	f->send_signal = yes(libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_send_signal, NULL));
	f->lsm = lsm_active() &&
		 btf_prog_loads(vmlinux, BPF_PROG_TYPE_LSM, BPF_LSM_MAC, "bpf_lsm_file_open", BTF_KIND_FUNC);
	btf__free(vmlinux);
}

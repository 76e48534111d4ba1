#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include "loader.h"
#include "ctrwatch.skel.h"

struct cw_loader {
	struct ctrwatch_bpf *skel;
};

/* Syscall tracepoints that a kernel may lack (init_module on a kernel built
 * without modules, open on arm64): their programs are left out, not fatal. */
static bool tracepoint_exists(const char *sec)
{
	static const char *roots[] = { "/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events" };
	const char *tp = sec + strlen("tracepoint/");
	char path[256];

	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", roots[i], tp);
		if (access(path, F_OK) == 0)
			return true;
	}
	return false;
}

int cw_loader_open(struct cw_loader_opts *o, struct cw_loader **out, const char **stage)
{
	struct cw_loader *l;
	struct bpf_program *prog;
	int err;

	*out = NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	*stage = "open";
	l->skel = ctrwatch_bpf__open();
	if (!l->skel) {
		err = -errno;
		goto fail;
	}
	memcpy((void *)l->skel->rodata->host_ns, o->host_ns, sizeof(o->host_ns));
	l->skel->rodata->self_tgid = o->self_tgid;
	l->skel->rodata->cg_subsys = o->cg_subsys;
	l->skel->rodata->cg_hierarchy = o->cg_hierarchy;
	l->skel->rodata->trace_all = o->trace_all;
	l->skel->rodata->wake_gap_ns = o->wake_gap_ns;
	l->skel->rodata->exec_all = o->exec_all;
	err = bpf_map__set_max_entries(l->skel->maps.events, o->ring_bytes);
	if (err)
		goto fail;
	bpf_object__for_each_program(prog, l->skel->obj) {
		const char *sec = bpf_program__section_name(prog);
		if (strncmp(sec, "tracepoint/", 11) == 0 && !tracepoint_exists(sec)) {
			bpf_program__set_autoload(prog, false);
			o->skipped(o->ctx, sec);
		}
	}
	*stage = "load";
	err = ctrwatch_bpf__load(l->skel);
	if (err)
		goto fail;
	*stage = "exec filter";
	for (size_t i = 0; i < o->n_exec_names; i++) {
		char key[16] = {};
		__u8 one = 1;

		strncpy(key, o->exec_names[i], sizeof(key) - 1);
		err = bpf_map__update_elem(l->skel->maps.exec_names, key, sizeof(key), &one, sizeof(one), BPF_ANY);
		if (err)
			goto fail;
	}
	*stage = "attach";
	err = ctrwatch_bpf__attach(l->skel);
	if (err)
		goto fail;

	*out = l;
	return 0;
fail:
	cw_loader_destroy(l);
	return err ? err : -EINVAL;
}

int cw_loader_events_fd(const struct cw_loader *l) { return bpf_map__fd(l->skel->maps.events); }
int cw_loader_stats_fd(const struct cw_loader *l) { return bpf_map__fd(l->skel->maps.stats); }
int cw_loader_tasks_fd(const struct cw_loader *l) { return bpf_map__fd(l->skel->maps.tasks); }

void cw_loader_programs(const struct cw_loader *l,
			void (*cb)(void *ctx, const char *name, const char *section, bool attached), void *ctx)
{
	const struct bpf_object_skeleton *s = l->skel->skeleton;

	for (int i = 0; i < s->prog_cnt; i++) {
		const struct bpf_program *p = *s->progs[i].prog;

		cb(ctx, bpf_program__name(p), bpf_program__section_name(p), *s->progs[i].link != NULL);
	}
}

void cw_loader_destroy(struct cw_loader *l)
{
	if (!l)
		return;
	ctrwatch_bpf__destroy(l->skel); /* detaches every link, closes every map */
	free(l);
}

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <bpf/libbpf.h>
#include "loader.h"
#include "ctrwatch.h"
#include "ctrwatch.skel.h"

struct cw_loader {
	struct ctrwatch_bpf *skel;
};

/* The id of a tracepoint ("syscalls/sys_enter_setns") in the given tracefs, or
 * -errno: a kernel may lack one (init_module without modules, open on arm64). */
static int tracepoint_id(const char *tracefs, const char *tp)
{
	char path[512];
	FILE *f;
	int id = -ENOENT;

	snprintf(path, sizeof(path), "%s/events/%s/id", tracefs, tp);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	if (fscanf(f, "%d", &id) != 1)
		id = -EINVAL;
	fclose(f);
	return id;
}

/* Why not libbpf's auto-attach for tracepoint programs: it reads ids from
 * /sys/kernel/tracing, which another process may unmount mid-attach; here the
 * ids come from the caller's tracefs (a private mount). The link goes into the
 * skeleton's slot, so destroy() detaches it like the others. */
static int attach_tracepoint(struct bpf_program *prog, int id, struct bpf_link **slot)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_TRACEPOINT,
		.size = sizeof(attr),
		.config = (__u64)id,
	};
	struct bpf_link *link;
	int pfd, err;

	pfd = syscall(__NR_perf_event_open, &attr, -1 /* pid */, 0 /* cpu */, -1 /* group */, PERF_FLAG_FD_CLOEXEC);
	if (pfd < 0)
		return -errno;
	link = bpf_program__attach_perf_event(prog, pfd);
	err = libbpf_get_error(link);
	if (err) {
		close(pfd);
		return err;
	}
	*slot = link;
	return 0;
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
	l->skel->rodata->can_send_signal = o->send_signal;
	if (o->rate_per_sec)
		l->skel->rodata->rate_per_sec = o->rate_per_sec;
	if (o->rate_burst)
		l->skel->rodata->rate_burst = o->rate_burst;
	err = bpf_map__set_max_entries(l->skel->maps.events, o->ring_bytes);
	if (err)
		goto fail;
	err = bpf_map__set_max_entries(l->skel->maps.prio_events, o->prio_ring_bytes);
	if (err)
		goto fail;
	bpf_object__for_each_program(prog, l->skel->obj)
	{
		const char *sec = bpf_program__section_name(prog);

		for (size_t i = 0; i < o->n_skip_progs; i++)
			if (strncmp(bpf_program__name(prog), o->skip_progs[i], strlen(o->skip_progs[i])) == 0)
				bpf_program__set_autoload(prog, false);
		/* The deny path only where the kernel has BPF-LSM: elsewhere these
		 * programs would fail the whole load. */
		if (strncmp(sec, "lsm/", 4) == 0 && !o->lsm) {
			bpf_program__set_autoload(prog, false);
			continue;
		}
		if (strncmp(sec, "tracepoint/", 11) != 0 || !bpf_program__autoload(prog))
			continue;
		bpf_program__set_autoattach(prog, false); /* attach_tracepoint() below */
		if (tracepoint_id(o->tracefs, sec + 11) < 0) {
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
	*stage = "port filter";
	for (size_t i = 0; i < o->n_watch_ports; i++) {
		__u16 port = o->watch_ports[i];
		__u8 one = 1;

		err = bpf_map__update_elem(l->skel->maps.watch_ports, &port, sizeof(port), &one, sizeof(one), BPF_ANY);
		if (err)
			goto fail;
	}
	*stage = "attach";
	err = ctrwatch_bpf__attach(l->skel);
	if (err)
		goto fail;
	for (int i = 0; i < l->skel->skeleton->prog_cnt; i++) {
		struct bpf_program *p = *l->skel->skeleton->progs[i].prog;
		const char *sec = bpf_program__section_name(p);
		int id;

		if (strncmp(sec, "tracepoint/", 11) != 0 || !bpf_program__autoload(p))
			continue;
		id = tracepoint_id(o->tracefs, sec + 11);
		err = id < 0 ? id : attach_tracepoint(p, id, l->skel->skeleton->progs[i].link);
		if (err)
			goto fail;
	}

	*out = l;
	return 0;
fail:
	cw_loader_destroy(l);
	return err ? err : -EINVAL;
}

int cw_loader_events_fd(const struct cw_loader *l)
{
	return bpf_map__fd(l->skel->maps.events);
}
int cw_loader_prio_events_fd(const struct cw_loader *l)
{
	return bpf_map__fd(l->skel->maps.prio_events);
}

volatile uint32_t *cw_loader_park_flag(struct cw_loader *l)
{
	return l->skel->bss ? &l->skel->bss->consumer_parked : NULL;
}

struct rt_sock_key {
	__u64 ino;
	__u32 dev;
	__u32 pad;
};

/* Make map m's key set exactly keys[0..n) (each ksz bytes, value 1). Drop what is
 * not in the new set first, then add the set: a key in both never leaves the map,
 * so no connect to a socket (or open on a device) in both is missed meanwhile. */
static int replace_key_set(struct bpf_map *m, const void *keys, size_t n, size_t ksz)
{
	const unsigned char *want = keys;
	unsigned char k[32], next[32];
	__u8 one = 1;
	int err;

	if (ksz > sizeof(k) || bpf_map__key_size(m) != ksz)
		return -EINVAL;
	err = bpf_map__get_next_key(m, NULL, next, ksz);
	while (err == 0) {
		bool keep = false;

		memcpy(k, next, ksz);
		for (size_t i = 0; i < n && !keep; i++)
			keep = memcmp(k, want + i * ksz, ksz) == 0;
		err = bpf_map__get_next_key(m, k, next, ksz);
		if (!keep) {
			int derr = bpf_map__delete_elem(m, k, ksz, 0);
			if (derr && derr != -ENOENT)
				return derr;
		}
	}
	if (err != -ENOENT)
		return err;
	for (size_t i = 0; i < n; i++) {
		err = bpf_map__update_elem(m, want + i * ksz, ksz, &one, sizeof(one), BPF_ANY);
		if (err)
			return err;
	}
	return 0;
}

int cw_loader_set_runtime_sockets(struct cw_loader *l, const uint32_t *devs, const uint64_t *inos, size_t n)
{
	struct rt_sock_key *keys = calloc(n ? n : 1, sizeof(*keys)); /* zeroed: pad is part of the key */
	int err;

	if (!keys)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		keys[i].ino = inos[i];
		keys[i].dev = devs[i];
	}
	err = replace_key_set(l->skel->maps.rt_socks, keys, n, sizeof(*keys));
	free(keys);
	return err;
}

int cw_loader_stats_fd(const struct cw_loader *l)
{
	return bpf_map__fd(l->skel->maps.stats);
}
int cw_loader_tasks_fd(const struct cw_loader *l)
{
	return bpf_map__fd(l->skel->maps.tasks);
}

void cw_loader_programs(const struct cw_loader *l,
			void (*cb)(void *ctx, const char *name, const char *section, bool attached), void *ctx)
{
	const struct bpf_object_skeleton *s = l->skel->skeleton;

	for (int i = 0; i < s->prog_cnt; i++) {
		const struct bpf_program *p = *s->progs[i].prog;

		cb(ctx, bpf_program__name(p), bpf_program__section_name(p), *s->progs[i].link != NULL);
	}
}

void cw_loader_detach(struct cw_loader *l)
{
	if (l)
		ctrwatch_bpf__detach(l->skel);
}

/* Mirrors struct task_state and its flags (TS_FOLLOW | TS_SEEDED) in bpf/maps.bpf.h;
 * the map's value size is checked before every write. */
struct cw_task_state {
	uint64_t start_ns;
	uint32_t flags;
	uint32_t pad;
};
#define CW_TS_FOLLOW_SEEDED 3

int cw_loader_follow(struct cw_loader *l, uint32_t tgid, uint64_t start_ns)
{
	struct cw_task_state v = { .start_ns = start_ns, .flags = CW_TS_FOLLOW_SEEDED };
	int err;

	if (bpf_map__key_size(l->skel->maps.tasks) != sizeof(tgid) ||
	    bpf_map__value_size(l->skel->maps.tasks) != sizeof(v))
		return -EINVAL;
	/* BPF_NOEXIST: an entry the kernel made since attach has the exact start time. */
	err = bpf_map__update_elem(l->skel->maps.tasks, &tgid, sizeof(tgid), &v, sizeof(v), BPF_NOEXIST);
	if (err == -EEXIST)
		return 1;
	return err;
}

int cw_loader_set_kill_arm(struct cw_loader *l, const uint32_t *arm, size_t n)
{
	struct bpf_map *m = l->skel->maps.kill_arm;

	if (n > bpf_map__max_entries(m))
		return -E2BIG;
	for (uint32_t i = 0; i < n; i++) {
		int err = bpf_map__update_elem(m, &i, sizeof(i), &arm[i], sizeof(arm[i]), BPF_ANY);
		if (err)
			return err;
	}
	return 0;
}

int cw_loader_set_container(struct cw_loader *l, uint64_t cgroup_id, uint32_t verdict)
{
	struct bpf_map *m = l->skel->maps.contain_cgroups;
	int err;

	if (verdict == CW_CV_UNKNOWN) {
		err = bpf_map__delete_elem(m, &cgroup_id, sizeof(cgroup_id), 0);
		return err == -ENOENT ? 0 : err;
	}
	return bpf_map__update_elem(m, &cgroup_id, sizeof(cgroup_id), &verdict, sizeof(verdict), BPF_ANY);
}

/* Mirrors struct host_root in bpf/contain.bpf.h; sizes checked before the write. */
struct cw_host_root {
	uint64_t ino;
	uint32_t dev;
	uint32_t pad;
};

int cw_loader_set_host_fs(struct cw_loader *l, const uint32_t *devs, size_t n, uint32_t root_dev, uint64_t root_ino)
{
	struct cw_host_root root = { .ino = root_ino, .dev = root_dev };
	uint32_t zero = 0;
	int err;

	err = replace_key_set(l->skel->maps.host_devs, devs, n, sizeof(*devs));
	if (err)
		return err;
	if (bpf_map__value_size(l->skel->maps.host_root) != sizeof(root))
		return -EINVAL;
	return bpf_map__update_elem(l->skel->maps.host_root, &zero, sizeof(zero), &root, sizeof(root), BPF_ANY);
}

int cw_loader_set_token_devs(struct cw_loader *l, const uint32_t *devs, size_t n)
{
	int err = replace_key_set(l->skel->maps.token_devs, devs, n, sizeof(*devs));

	/* The kernel's fast path skips every token check while this is 0. */
	if (!err)
		l->skel->bss->token_any = n > 0;
	return err;
}

int cw_loader_set_api_servers(struct cw_loader *l, const struct cw_api_server *list, size_t n)
{
	return replace_key_set(l->skel->maps.api_servers, list, n, sizeof(*list));
}

void cw_loader_destroy(struct cw_loader *l)
{
	if (!l)
		return;
	ctrwatch_bpf__destroy(l->skel); /* detaches every link, closes every map */
	free(l);
}

const void *cw_loader_object(size_t *size)
{
	return ctrwatch_bpf__elf_bytes(size);
}

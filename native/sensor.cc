#include "sensor.h"

#include <cerrno>
#include <cstring>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "libbpf_log.h"
#include "loader.h"
#include "probe.h"
#include "contain.h"

extern "C" {
#include "ctrwatch.h"
}

struct Sensor::Handles {
	uv_poll_t poll;
	uv_timer_t timer;
	bool has_poll = false, has_timer = false; /* initialised, so to be closed */
	int open = 0;				  /* handles not yet closed */
	Sensor *owner;
};

static uint32_t GetU32(const Napi::Object &o, const char *k, uint32_t dflt)
{
	Napi::Value v = o.Get(k);
	return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : dflt;
}

Napi::Object Sensor::Init(Napi::Env env, Napi::Object exports)
{
	Napi::Function f = DefineClass(env, "Sensor",
				       {
					       InstanceMethod("drain", &Sensor::Drain),
					       InstanceMethod("stats", &Sensor::Stats),
					       InstanceMethod("taskCount", &Sensor::TaskCount),
					       InstanceMethod("programs", &Sensor::Programs),
					       InstanceMethod("setRuntimeSockets", &Sensor::SetRuntimeSockets),
					       InstanceMethod("follow", &Sensor::Follow),
					       InstanceMethod("setKillArm", &Sensor::SetKillArm),
					       InstanceMethod("setContainer", &Sensor::SetContainer),
					       InstanceMethod("setHostFs", &Sensor::SetHostFs),
					       InstanceMethod("setTokenDevs", &Sensor::SetTokenDevs),
					       InstanceMethod("setApiServers", &Sensor::SetApiServers),
					       InstanceMethod("close", &Sensor::Close),
				       });
	exports.Set("Sensor", f);
	exports.Set("statSlots", Napi::Number::New(env, CW_STAT_MAX));
	exports.Set("probe", Napi::Function::New(env, &Sensor::Probe, "probe"));
	exports.Set("killProcess", Napi::Function::New(env, &Sensor::KillProcess, "killProcess"));
	exports.Set("object", Napi::Function::New(env, &Sensor::BpfObject, "object"));
	return exports;
}

/* new Sensor({ ringBytes, hostNs[8], selfTgid, cgSubsys, cgHierarchy, traceAll,
 *              wakeGapNs, drainMs, parkAfterMs, parkedMs, onRecords(buf), onLog(level, line) }) */
Sensor::Sensor(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Sensor>(info)
{
	Napi::Env env = info.Env();
	if (info.Length() < 1 || !info[0].IsObject())
		throw Napi::TypeError::New(env, "Sensor(options): options must be an object");
	Napi::Object o = info[0].As<Napi::Object>();
	if (!o.Get("onRecords").IsFunction())
		throw Napi::TypeError::New(env, "Sensor(options): onRecords must be a function");
	Napi::Value hostNs = o.Get("hostNs");
	if (!hostNs.IsArray() || hostNs.As<Napi::Array>().Length() != 8)
		throw Napi::TypeError::New(env, "Sensor(options): hostNs must be an array of 8 inode numbers");

	cw_loader_opts lo = {};
	lo.ring_bytes = GetU32(o, "ringBytes", 8u << 20);
	lo.prio_ring_bytes = GetU32(o, "prioRingBytes", 1u << 20);
	lo.rate_per_sec = GetU32(o, "ratePerSec", 0);
	lo.rate_burst = GetU32(o, "rateBurst", 0);
	std::vector<uint16_t> ports;
	Napi::Value wp = o.Get("watchPorts");
	if (wp.IsArray()) {
		Napi::Array a = wp.As<Napi::Array>();
		for (uint32_t i = 0; i < a.Length(); i++) {
			Napi::Value v = a.Get(i);
			double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
			if (!(d >= 1 && d <= 65535 && d == (double)(uint16_t)d))
				throw Napi::TypeError::New(
					env, "Sensor(options): watchPorts must hold port numbers 1-65535");
			ports.push_back((uint16_t)d);
		}
	}
	lo.watch_ports = ports.data();
	lo.n_watch_ports = ports.size();
	for (uint32_t i = 0; i < 8; i++)
		lo.host_ns[i] = hostNs.As<Napi::Array>().Get(i).As<Napi::Number>().Uint32Value();
	lo.self_tgid = GetU32(o, "selfTgid", 0);
	Napi::Value sub = o.Get("cgSubsys");
	lo.cg_subsys = sub.IsNumber() ? sub.As<Napi::Number>().Int32Value() : -1;
	lo.cg_hierarchy = GetU32(o, "cgHierarchy", 0);
	lo.trace_all = o.Get("traceAll").ToBoolean().Value();
	lo.exec_all = lo.trace_all || o.Get("execAll").ToBoolean().Value();
	std::vector<std::string> names;
	std::vector<const char *> name_ptrs;
	Napi::Value en = o.Get("execNames");
	if (en.IsArray()) {
		Napi::Array a = en.As<Napi::Array>();
		for (uint32_t i = 0; i < a.Length(); i++)
			names.push_back(a.Get(i).ToString().Utf8Value());
	}
	for (auto &n : names)
		name_ptrs.push_back(n.c_str());
	lo.exec_names = name_ptrs.data();
	lo.n_exec_names = name_ptrs.size();
	std::vector<std::string> skip;
	std::vector<const char *> skip_ptrs;
	Napi::Value sp = o.Get("skipPrograms");
	if (sp.IsArray()) {
		Napi::Array a = sp.As<Napi::Array>();
		for (uint32_t i = 0; i < a.Length(); i++)
			skip.push_back(a.Get(i).ToString().Utf8Value());
	}
	for (auto &n : skip)
		skip_ptrs.push_back(n.c_str());
	lo.skip_progs = skip_ptrs.data();
	lo.n_skip_progs = skip_ptrs.size();
	Napi::Value gap = o.Get("wakeGapNs");
	lo.wake_gap_ns = gap.IsNumber() ? (uint64_t)gap.As<Napi::Number>().DoubleValue() : 2000000;
	uint32_t drain_ms = GetU32(o, "drainMs", 10);
	drain_ms_ = drain_ms;
	park_after_ms_ = GetU32(o, "parkAfterMs", 100);
	parked_ms_ = GetU32(o, "parkedMs", 1000);
	if (!o.Get("tracefs").IsString())
		throw Napi::TypeError::New(env, "Sensor(options): tracefs must be the path of a mounted tracefs");
	std::string tracefs = o.Get("tracefs").As<Napi::String>().Utf8Value();
	lo.tracefs = tracefs.c_str();
	lo.send_signal = o.Get("sendSignal").ToBoolean().Value();
	lo.lsm = o.Get("lsm").ToBoolean().Value();

	Napi::Value onLog = o.Get("onLog");
	std::vector<std::string> skipped;
	lo.ctx = &skipped;
	lo.skipped = [](void *ctx, const char *sec) { static_cast<std::vector<std::string> *>(ctx)->push_back(sec); };
	LibbpfLogCapture capture;
	const char *stage = "open";
	int err = cw_loader_open(&lo, &loader_, &stage);
	std::vector<LibbpfLine> lines = capture.Take();
	if (onLog.IsFunction()) {
		for (auto &l : lines)
			onLog.As<Napi::Function>().Call(
				{ Napi::String::New(env, l.level), Napi::String::New(env, l.text) });
		for (auto &sec : skipped)
			onLog.As<Napi::Function>().Call(
				{ Napi::String::New(env, "skipped"), Napi::String::New(env, sec) });
	}
	if (err) {
		std::string msg = std::string("BPF ") + stage + " failed: " + strerror(-err);
		for (auto it = lines.rbegin(); it != lines.rend() && it - lines.rbegin() < 3; ++it)
			if (it->level != "debug")
				msg += "\n  libbpf: " + it->text;
		Napi::Error e = Napi::Error::New(env, msg);
		e.Set("errno", Napi::Number::New(env, -err));
		e.Set("stage", Napi::String::New(env, stage));
		throw e;
	}

	/* The priority ring first: ring_buffer__consume drains rings in the order they were added. */
	rb_ = ring_buffer__new(cw_loader_prio_events_fd(loader_), &Sensor::OnPrioRecord, this, nullptr);
	if (!rb_) {
		int e = errno;
		Shutdown();
		throw Napi::Error::New(env, std::string("ring_buffer__new failed: ") + strerror(e));
	}
	err = ring_buffer__add(rb_, cw_loader_events_fd(loader_), &Sensor::OnBulkRecord, this);
	if (err) {
		Shutdown();
		throw Napi::Error::New(env, std::string("ring_buffer__add failed: ") + strerror(-err));
	}
	park_flag_ = cw_loader_park_flag(loader_);
	on_records_ = Napi::Persistent(o.Get("onRecords").As<Napi::Function>());
	async_ = std::make_unique<Napi::AsyncContext>(env, "ctrwatch:drain");
	/* The handles call back into this object: keep it alive until close(). */
	self_ = Napi::Persistent(info.This().As<Napi::Object>());

	uv_loop_t *loop = nullptr;
	if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) {
		Shutdown();
		throw Napi::Error::New(env, "napi_get_uv_event_loop failed");
	}
	handles_ = new Handles();
	handles_->owner = this;
	handles_->poll.data = handles_;
	handles_->timer.data = handles_;
	const char *what = "uv_poll_init";
	int rc = uv_poll_init(loop, &handles_->poll, ring_buffer__epoll_fd(rb_));
	handles_->has_poll = rc == 0;
	if (rc == 0) {
		what = "uv_timer_init";
		rc = uv_timer_init(loop, &handles_->timer);
		handles_->has_timer = rc == 0;
	}
	handles_->open = handles_->has_poll + handles_->has_timer;
	if (rc == 0) {
		what = "uv_poll_start";
		rc = uv_poll_start(&handles_->poll, UV_READABLE, &Sensor::OnPoll);
	}
	if (rc == 0) {
		what = "uv_timer_start";
		rc = uv_timer_start(&handles_->timer, &Sensor::OnTimer, drain_ms, drain_ms);
	}
	if (rc != 0) {
		Shutdown();
		throw Napi::Error::New(env, std::string(what) + " failed: " + uv_strerror(rc));
	}
}

Sensor::~Sensor()
{
	Shutdown();
}

int Sensor::OnPrioRecord(void *ctx, void *data, size_t size)
{
	Sensor *s = static_cast<Sensor *>(ctx);
	s->records_prio_++;
	s->records_++;
	Append(s->prio_, data, size);
	return 0;
}

int Sensor::OnBulkRecord(void *ctx, void *data, size_t size)
{
	Sensor *s = static_cast<Sensor *>(ctx);
	s->records_bulk_++;
	s->records_++;
	Append(s->bulk_, data, size);
	return 0;
}

void Sensor::Append(std::vector<uint8_t> &to, const void *data, size_t size)
{
	size_t at = to.size();
	/* Records are multiples of 8 bytes by construction; pad anyway so that the
	 * decoder can rely on 8-byte alignment whatever the kernel sends. */
	size_t padded = (size + 7) & ~size_t(7);
	to.resize(at + padded);
	memcpy(to.data() + at, data, size);
	if (padded != size)
		memset(to.data() + at + size, 0, padded - size);
}

/*
 * Why merge: a process's exec goes to the bulk ring and its escape syscall to
 * the priority ring; drained one ring after the other, the syscall would reach
 * the process table before the exec that made the process what it is. Each
 * ring keeps its own order; the two are interleaved by the header's ktime.
 */
void Sensor::MergeByTime()
{
	const size_t np = prio_.size(), nb = bulk_.size();
	size_t i = 0, j = 0;
	auto size_at = [](const std::vector<uint8_t> &v, size_t at) {
		cw_hdr h;
		memcpy(&h, v.data() + at, sizeof(h));
		return std::pair<size_t, uint64_t>(((size_t)h.size + 7) & ~size_t(7), h.ktime);
	};
	batch_.clear();
	/* Most drains hold records of one ring only: hand that buffer over, no copy. */
	if (np == 0 || nb == 0) {
		batch_.swap(np ? prio_ : bulk_);
		prio_.clear();
		bulk_.clear();
		return;
	}
	batch_.reserve(np + nb);
	while (i < np || j < nb) {
		bool take_prio;
		if (i >= np)
			take_prio = false;
		else if (j >= nb)
			take_prio = true;
		else
			take_prio = size_at(prio_, i).second <= size_at(bulk_, j).second;
		std::vector<uint8_t> &from = take_prio ? prio_ : bulk_;
		size_t &at = take_prio ? i : j;
		size_t len = size_at(from, at).first;
		if (len < sizeof(cw_hdr) || at + len > from.size())
			len = from.size() - at; /* a malformed size: hand the rest over, the decoder names it */
		batch_.insert(batch_.end(), from.begin() + at, from.begin() + at + len);
		at += len;
	}
	prio_.clear();
	bulk_.clear();
}

size_t Sensor::DrainNow(bool from_loop)
{
	if (!rb_ || draining_)
		return 0;
	draining_ = true;
	prio_.clear();
	bulk_.clear();
	if (ring_buffer__consume(rb_) < 0)
		consume_errors_++;
	MergeByTime();
	size_t n = batch_.size();
	if (n) {
		idle_ms_ = 0;
		if (parked_)
			Unpark();
		batches_++;
		Napi::Env env = on_records_.Env();
		Napi::HandleScope scope(env);
		Napi::Buffer<uint8_t> buf = Napi::Buffer<uint8_t>::Copy(env, batch_.data(), n);
		if (from_loop) {
			/* MakeCallback runs microtasks after, as any libuv-driven callback must. */
			try {
				on_records_.MakeCallback(self_.Value(), { buf }, *async_);
			} catch (const Napi::Error &e) {
				/* A throwing handler must not stop the drain: report it as an uncaught exception. */
				napi_fatal_exception(env, e.Value());
			}
		} else {
			/* drain() called from JavaScript: its handler's throw goes back to that caller,
			 * and the next drain must still run. */
			try {
				on_records_.Call(self_.Value(), { buf });
			} catch (...) {
				draining_ = false;
				throw;
			}
		}
	}
	draining_ = false;
	return n;
}

void Sensor::OnPoll(uv_poll_t *h, int status, int)
{
	Handles *hs = static_cast<Handles *>(h->data);
	if (status == 0 && hs->owner) {
		hs->owner->poll_wakes_++;
		hs->owner->DrainNow(true);
	}
}

void Sensor::OnTimer(uv_timer_t *h)
{
	Handles *hs = static_cast<Handles *>(h->data);
	if (hs->owner)
		hs->owner->Tick();
}

/*
 * Why park: on an idle node the drain timer woke the sensor 100 times a second
 * to find nothing. Parked, the timer ticks once per parkedMs, and a record that
 * would have waited for the timer wakes the consumer instead (quiet_flags() in
 * emit.bpf.h), so parking delays nothing that the timer would have delivered.
 */
void Sensor::Tick()
{
	ticks_++;
	if (DrainNow(true) || !rb_ || parked_)
		return;
	if (!park_flag_ || !park_after_ms_ || drain_ms_ >= parked_ms_)
		return;
	idle_ms_ += drain_ms_;
	if (idle_ms_ >= park_after_ms_)
		Park();
}

void Sensor::Park()
{
	/* Sequentially consistent: the flag is visible to the programs before
	 * the drain below reads the rings, so a record sent without a wake-up
	 * before they saw it is found by that drain (which unparks), unless its
	 * program commits it after the drain (README, Known limits). */
	__atomic_store_n(park_flag_, 1, __ATOMIC_SEQ_CST);
	parked_ = true;
	if (DrainNow(true) || !parked_)
		return;
	parks_++;
	SetTimer(parked_ms_);
}

void Sensor::Unpark()
{
	if (park_flag_)
		__atomic_store_n(park_flag_, 0, __ATOMIC_SEQ_CST);
	parked_ = false;
	idle_ms_ = 0;
	SetTimer(drain_ms_);
}

void Sensor::SetTimer(uint32_t ms)
{
	if (handles_ && handles_->has_timer)
		uv_timer_start(&handles_->timer, &Sensor::OnTimer, ms, ms);
}

/* drain(): consume now, synchronously; returns the bytes handed to onRecords. */
Napi::Value Sensor::Drain(const Napi::CallbackInfo &info)
{
	return Napi::Number::New(info.Env(), (double)DrainNow(false));
}

std::vector<uint64_t> Sensor::ReadKernelCounters() const
{
	std::vector<uint64_t> out(CW_STAT_MAX, 0);
	int ncpu = libbpf_num_possible_cpus();
	if (!loader_ || ncpu <= 0)
		return final_kernel_.empty() ? out : final_kernel_;
	std::vector<uint64_t> vals(ncpu);
	for (uint32_t k = 0; k < CW_STAT_MAX; k++)
		if (bpf_map_lookup_elem(cw_loader_stats_fd(loader_), &k, vals.data()) == 0)
			for (int c = 0; c < ncpu; c++)
				out[k] += vals[c];
	return out;
}

/* stats(): the kernel's per-CPU counters summed, indexed by enum cw_stat slots
 * (after close(), as they were when it detached). */
Napi::Value Sensor::Stats(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Napi::Object out = Napi::Object::New(env);
	std::vector<uint64_t> k = ReadKernelCounters();
	Napi::Array kernel = Napi::Array::New(env, k.size());
	for (uint32_t i = 0; i < k.size(); i++)
		kernel.Set(i, Napi::Number::New(env, (double)k[i]));
	out.Set("kernel", kernel);
	out.Set("records", Napi::Number::New(env, (double)records_));
	out.Set("batches", Napi::Number::New(env, (double)batches_));
	out.Set("consumeErrors", Napi::Number::New(env, (double)consume_errors_));
	out.Set("recordsPrio", Napi::Number::New(env, (double)records_prio_));
	out.Set("recordsBulk", Napi::Number::New(env, (double)records_bulk_));
	out.Set("parks", Napi::Number::New(env, (double)parks_));
	out.Set("parked", Napi::Boolean::New(env, parked_));
	out.Set("timerTicks", Napi::Number::New(env, (double)ticks_));
	out.Set("pollWakes", Napi::Number::New(env, (double)poll_wakes_));
	return out;
}

/* taskCount(): entries in the kernel's follow set (walks the map: not for hot paths). */
Napi::Value Sensor::TaskCount(const Napi::CallbackInfo &info)
{
	uint32_t n = 0;
	if (loader_) {
		int fd = cw_loader_tasks_fd(loader_);
		uint32_t key, next;
		void *prev = nullptr;
		while (bpf_map_get_next_key(fd, prev, &next) == 0) {
			key = next;
			prev = &key;
			n++;
		}
	}
	return Napi::Number::New(info.Env(), n);
}

/* programs(): every program of the object, [{ name, section, attached }]. */
Napi::Value Sensor::Programs(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Napi::Array out = Napi::Array::New(env);
	struct Ctx {
		Napi::Env env;
		Napi::Array *out;
	} ctx{ env, &out };
	if (loader_)
		cw_loader_programs(
			loader_,
			[](void *c, const char *name, const char *section, bool attached) {
				Ctx *x = static_cast<Ctx *>(c);
				Napi::Object p = Napi::Object::New(x->env);
				p.Set("name", Napi::String::New(x->env, name));
				p.Set("section", Napi::String::New(x->env, section));
				p.Set("attached", Napi::Boolean::New(x->env, attached));
				x->out->Set(x->out->Length(), p);
			},
			&ctx);
	return out;
}

/* killProcess(pid, startNs: bigint): 0, or a negative errno (-ESRCH: gone, or the pid is reused). */
Napi::Value Sensor::KillProcess(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsBigInt())
		throw Napi::TypeError::New(env, "killProcess(pid: number, startNs: bigint)");
	bool lossless = false;
	uint64_t start = info[1].As<Napi::BigInt>().Uint64Value(&lossless);
	if (!lossless)
		throw Napi::RangeError::New(env, "killProcess: startNs out of range");
	return Napi::Number::New(env, cw_kill_process(info[0].As<Napi::Number>().Int32Value(), start));
}

/* object(): a copy of the BPF object built in, made on each call. Copied into a Buffer at load, it
 * stayed in the sensor's resident memory for the life of the process, only for `version` to hash. */
Napi::Value Sensor::BpfObject(const Napi::CallbackInfo &info)
{
	size_t size = 0;
	const void *obj = cw_loader_object(&size);
	return Napi::Buffer<uint8_t>::Copy(info.Env(), static_cast<const uint8_t *>(obj), size);
}

/* probe(): what the running kernel offers (see native/probe.h); needs no loaded object. */
Napi::Value Sensor::Probe(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	cw_features f;
	cw_probe(&f);
	Napi::Object o = Napi::Object::New(env);
	o.Set("btf", Napi::Boolean::New(env, f.btf));
	o.Set("ringbuf", Napi::Boolean::New(env, f.ringbuf));
	o.Set("tracing", Napi::Boolean::New(env, f.tracing));
	o.Set("taskBtf", Napi::Boolean::New(env, f.task_btf));
	o.Set("sendSignal", Napi::Boolean::New(env, f.send_signal));
	o.Set("lsm", Napi::Boolean::New(env, f.lsm));
	return o;
}

/* setRuntimeSockets([[dev, ino], …]): dev in the kernel's encoding (major << 20 | minor),
 * ino a number or a bigint. Replaces the set the kernel matches unix connects against. */
Napi::Value Sensor::SetRuntimeSockets(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	if (info.Length() < 1 || !info[0].IsArray())
		throw Napi::TypeError::New(env, "setRuntimeSockets(list): list must be an array of [dev, ino]");
	if (!loader_)
		throw Napi::Error::New(env, "setRuntimeSockets: the sensor is closed");
	Napi::Array a = info[0].As<Napi::Array>();
	std::vector<uint32_t> devs;
	std::vector<uint64_t> inos;
	for (uint32_t i = 0; i < a.Length(); i++) {
		Napi::Value e = a.Get(i);
		if (!e.IsArray() || e.As<Napi::Array>().Length() != 2 || !e.As<Napi::Array>().Get(0u).IsNumber())
			throw Napi::TypeError::New(env, "setRuntimeSockets(list): each entry must be [dev, ino]");
		Napi::Value ino = e.As<Napi::Array>().Get(1u);
		uint64_t v;
		if (ino.IsBigInt()) {
			bool lossless = false;
			v = ino.As<Napi::BigInt>().Uint64Value(&lossless);
			if (!lossless)
				throw Napi::TypeError::New(env, "setRuntimeSockets(list): inode out of range");
		} else if (ino.IsNumber()) {
			v = (uint64_t)ino.As<Napi::Number>().DoubleValue();
		} else {
			throw Napi::TypeError::New(env, "setRuntimeSockets(list): inode must be a number or bigint");
		}
		devs.push_back(e.As<Napi::Array>().Get(0u).As<Napi::Number>().Uint32Value());
		inos.push_back(v);
	}
	int err = cw_loader_set_runtime_sockets(loader_, devs.data(), inos.data(), devs.size());
	if (err)
		throw Napi::Error::New(env, std::string("setRuntimeSockets: ") + strerror(-err));
	return env.Undefined();
}

/* follow(tgids: number[], startNs: bigint[]): adds processes that ran before
 * the sensor to the kernel's follow set; returns { added, existing }. Throws on
 * the first write that fails, naming the pid and errno. */
Napi::Value Sensor::Follow(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	if (!loader_)
		throw Napi::Error::New(env, "follow(): the sensor is closed");
	if (info.Length() < 2 || !info[0].IsArray() || !info[1].IsArray())
		throw Napi::TypeError::New(env, "follow(tgids, startNs): two arrays expected");
	Napi::Array tgids = info[0].As<Napi::Array>();
	Napi::Array starts = info[1].As<Napi::Array>();
	if (tgids.Length() != starts.Length())
		throw Napi::TypeError::New(env, "follow(tgids, startNs): arrays of different lengths");
	uint32_t added = 0, existing = 0;
	for (uint32_t i = 0; i < tgids.Length(); i++) {
		Napi::Value t = tgids.Get(i), s = starts.Get(i);
		if (!t.IsNumber() || !s.IsBigInt())
			throw Napi::TypeError::New(env,
						   "follow(tgids, startNs): tgids must be numbers, startNs bigints");
		bool lossless = false;
		uint64_t start = s.As<Napi::BigInt>().Uint64Value(&lossless);
		uint32_t tgid = t.As<Napi::Number>().Uint32Value();
		if (!lossless || tgid == 0)
			throw Napi::RangeError::New(env, "follow(tgids, startNs): pid or start time out of range");
		int r = cw_loader_follow(loader_, tgid, start);
		if (r < 0) {
			Napi::Error e =
				Napi::Error::New(env, std::string("follow: tasks map update for pid ") +
							      std::to_string(tgid) + " failed: " + strerror(-r));
			e.Set("errno", Napi::Number::New(env, -r));
			throw e;
		}
		if (r == 0)
			added++;
		else
			existing++;
	}
	Napi::Object out = Napi::Object::New(env);
	out.Set("added", Napi::Number::New(env, added));
	out.Set("existing", Napi::Number::New(env, existing));
	return out;
}

static void OnHandleClosed(uv_handle_t *h)
{
	Sensor::Handles *hs = static_cast<Sensor::Handles *>(h->data);
	if (--hs->open == 0)
		delete hs;
}

void Sensor::Shutdown()
{
	if (handles_) {
		handles_->owner = nullptr;
		if (handles_->has_poll) {
			uv_poll_stop(&handles_->poll);
			uv_close(reinterpret_cast<uv_handle_t *>(&handles_->poll), OnHandleClosed);
		}
		if (handles_->has_timer) {
			uv_timer_stop(&handles_->timer);
			uv_close(reinterpret_cast<uv_handle_t *>(&handles_->timer), OnHandleClosed);
		}
		if (!handles_->has_poll && !handles_->has_timer)
			delete handles_;
		handles_ = nullptr;
	}
	if (rb_) {
		ring_buffer__free(rb_);
		rb_ = nullptr;
	}
	park_flag_ = nullptr; /* unmapped with the skeleton */
	parked_ = false;
	if (loader_) {
		cw_loader_destroy(loader_); /* last: detaches every program */
		loader_ = nullptr;
	}
}

/* close(): idempotent; detaches every program, drains what is left, reads the
 * counters, then frees everything: nothing is sent after the final count, so
 * records taken out of each ring equal the kernel's sent counter for it. */
Napi::Value Sensor::Close(const Napi::CallbackInfo &info)
{
	if (loader_)
		cw_loader_detach(loader_);
	if (rb_)
		DrainNow(false);
	if (loader_)
		final_kernel_ = ReadKernelCounters();
	Shutdown();
	if (!self_.IsEmpty())
		self_.Reset();
	return info.Env().Undefined();
}

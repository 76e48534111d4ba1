#include "sensor.h"

#include <cerrno>
#include <cstring>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "libbpf_log.h"
#include "loader.h"
#include "probe.h"

extern "C" {
#include "ctrwatch.h"
}

struct Sensor::Handles {
	uv_poll_t poll;
	uv_timer_t timer;
	int open = 0; /* handles not yet closed */
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
					       InstanceMethod("close", &Sensor::Close),
				       });
	exports.Set("Sensor", f);
	exports.Set("statSlots", Napi::Number::New(env, CW_STAT_MAX));
	exports.Set("probe", Napi::Function::New(env, &Sensor::Probe, "probe"));
	return exports;
}

/* new Sensor({ ringBytes, hostNs[8], selfTgid, cgSubsys, cgHierarchy, traceAll,
 *              wakeGapNs, drainMs, onRecords(buf), onLog(level, line) }) */
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
	Napi::Value gap = o.Get("wakeGapNs");
	lo.wake_gap_ns = gap.IsNumber() ? (uint64_t)gap.As<Napi::Number>().DoubleValue() : 2000000;
	uint32_t drain_ms = GetU32(o, "drainMs", 10);

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
			onLog.As<Napi::Function>().Call({Napi::String::New(env, l.level), Napi::String::New(env, l.text)});
		for (auto &sec : skipped)
			onLog.As<Napi::Function>().Call({Napi::String::New(env, "skipped"), Napi::String::New(env, sec)});
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

	rb_ = ring_buffer__new(cw_loader_events_fd(loader_), &Sensor::OnRecord, this, nullptr);
	if (!rb_) {
		int e = errno;
		Shutdown();
		throw Napi::Error::New(env, std::string("ring_buffer__new failed: ") + strerror(e));
	}
	on_records_ = Napi::Persistent(o.Get("onRecords").As<Napi::Function>());
	async_ = std::make_unique<Napi::AsyncContext>(env, "ctrwatch:drain");
	/* The handles call back into this object: keep it alive until close(). */
	self_ = Napi::Persistent(info.This().As<Napi::Object>());

	uv_loop_t *loop = nullptr;
	napi_get_uv_event_loop(env, &loop);
	handles_ = new Handles();
	handles_->owner = this;
	uv_poll_init(loop, &handles_->poll, ring_buffer__epoll_fd(rb_));
	handles_->poll.data = handles_;
	uv_poll_start(&handles_->poll, UV_READABLE, &Sensor::OnPoll);
	uv_timer_init(loop, &handles_->timer);
	handles_->timer.data = handles_;
	uv_timer_start(&handles_->timer, &Sensor::OnTimer, drain_ms, drain_ms);
	handles_->open = 2;
}

Sensor::~Sensor() { Shutdown(); }

int Sensor::OnRecord(void *ctx, void *data, size_t size)
{
	Sensor *s = static_cast<Sensor *>(ctx);
	size_t at = s->batch_.size();
	/* Records are multiples of 8 bytes by construction; pad anyway so that the
	 * decoder can rely on 8-byte alignment whatever the kernel sends. */
	size_t padded = (size + 7) & ~size_t(7);
	s->batch_.resize(at + padded);
	memcpy(s->batch_.data() + at, data, size);
	if (padded != size)
		memset(s->batch_.data() + at + size, 0, padded - size);
	s->records_++;
	return 0;
}

size_t Sensor::DrainNow(bool from_loop)
{
	if (!rb_ || draining_)
		return 0;
	draining_ = true;
	batch_.clear();
	ring_buffer__consume(rb_);
	size_t n = batch_.size();
	if (n) {
		batches_++;
		Napi::Env env = on_records_.Env();
		Napi::HandleScope scope(env);
		Napi::Buffer<uint8_t> buf = Napi::Buffer<uint8_t>::Copy(env, batch_.data(), n);
		if (from_loop) {
			/* MakeCallback runs microtasks after, as any libuv-driven callback must. */
			try {
				on_records_.MakeCallback(self_.Value(), {buf}, *async_);
			} catch (const Napi::Error &e) {
				/* A throwing handler must not stop the drain: report it as an uncaught exception. */
				napi_fatal_exception(env, e.Value());
			}
		} else {
			on_records_.Call(self_.Value(), {buf});
		}
	}
	draining_ = false;
	return n;
}

void Sensor::OnPoll(uv_poll_t *h, int status, int)
{
	Handles *hs = static_cast<Handles *>(h->data);
	if (status == 0 && hs->owner)
		hs->owner->DrainNow(true);
}

void Sensor::OnTimer(uv_timer_t *h)
{
	Handles *hs = static_cast<Handles *>(h->data);
	if (hs->owner)
		hs->owner->DrainNow(true);
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
	} ctx{env, &out};
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
		uv_poll_stop(&handles_->poll);
		uv_timer_stop(&handles_->timer);
		uv_close(reinterpret_cast<uv_handle_t *>(&handles_->poll), OnHandleClosed);
		uv_close(reinterpret_cast<uv_handle_t *>(&handles_->timer), OnHandleClosed);
		handles_ = nullptr;
	}
	if (rb_) {
		ring_buffer__free(rb_);
		rb_ = nullptr;
	}
	if (loader_) {
		cw_loader_destroy(loader_); /* last: detaches every program */
		loader_ = nullptr;
	}
}

/* close(): idempotent; drains what is left, then detaches everything. */
Napi::Value Sensor::Close(const Napi::CallbackInfo &info)
{
	if (rb_)
		DrainNow(false);
	if (loader_)
		final_kernel_ = ReadKernelCounters();
	Shutdown();
	if (!self_.IsEmpty())
		self_.Reset();
	return info.Env().Undefined();
}

#ifndef CTRWATCH_SENSOR_H
#define CTRWATCH_SENSOR_H

#include <napi.h>
#include <uv.h>
#include <string>
#include <vector>

struct cw_loader;
struct ring_buffer;

/*
 * One loaded BPF object and its two ring buffers (priority and bulk, one
 * libbpf ring_buffer manager, priority consumed first), drained on the
 * JavaScript thread (no threads): a uv_poll on the manager's epoll fd for
 * records sent with a wake-up, and a uv_timer for the ones sent without. Each drain hands JavaScript
 * one Buffer holding every record it found, back to back. After parkAfterMs
 * without a record the consumer parks: the programs' consumer_parked flag set,
 * the timer slowed to parkedMs, and the next record wakes it (emit.bpf.h).
 */
class Sensor : public Napi::ObjectWrap<Sensor>
{
      public:
	static Napi::Object Init(Napi::Env env, Napi::Object exports);
	static Napi::Value Probe(const Napi::CallbackInfo &info);
	static Napi::Value KillProcess(const Napi::CallbackInfo &info);
	static Napi::Value BpfObject(const Napi::CallbackInfo &info);
	explicit Sensor(const Napi::CallbackInfo &info);
	~Sensor() override;

	struct Handles; /* uv handles, freed by their close callbacks */

      private:
	Napi::Value Drain(const Napi::CallbackInfo &info);
	Napi::Value Stats(const Napi::CallbackInfo &info);
	Napi::Value TaskCount(const Napi::CallbackInfo &info);
	Napi::Value Programs(const Napi::CallbackInfo &info);
	Napi::Value SetRuntimeSockets(const Napi::CallbackInfo &info);
	Napi::Value Follow(const Napi::CallbackInfo &info);
	/* Containment maps (sensor_contain.cc). */
	Napi::Value SetKillArm(const Napi::CallbackInfo &info);
	Napi::Value SetContainer(const Napi::CallbackInfo &info);
	Napi::Value SetHostFs(const Napi::CallbackInfo &info);
	Napi::Value SetTokenDevs(const Napi::CallbackInfo &info);
	Napi::Value SetApiServers(const Napi::CallbackInfo &info);
	Napi::Value Close(const Napi::CallbackInfo &info);

	static int OnPrioRecord(void *ctx, void *data, size_t size);
	static int OnBulkRecord(void *ctx, void *data, size_t size);
	static void Append(std::vector<uint8_t> &to, const void *data, size_t size);
	void MergeByTime();
	static void OnPoll(uv_poll_t *h, int status, int events);
	static void OnTimer(uv_timer_t *h);
	void Tick();
	void Park();
	void Unpark();
	void SetTimer(uint32_t ms);
	size_t DrainNow(bool from_loop);
	std::vector<uint64_t> ReadKernelCounters() const;
	void Shutdown();

	cw_loader *loader_ = nullptr;
	ring_buffer *rb_ = nullptr;
	Handles *handles_ = nullptr;
	Napi::FunctionReference on_records_;
	Napi::ObjectReference self_;
	std::unique_ptr<Napi::AsyncContext> async_;
	std::vector<uint8_t> batch_;
	std::vector<uint8_t> prio_; /* this drain's records from each ring, merged into batch_ by time */
	std::vector<uint8_t> bulk_;
	std::vector<uint64_t> final_kernel_; /* counters read just before close() detached */
	uint64_t records_ = 0;
	uint64_t records_prio_ = 0; /* per ring: drop accounting pairs these with the kernel's sent counters */
	uint64_t records_bulk_ = 0;
	uint64_t consume_errors_ = 0;
	uint64_t batches_ = 0;
	bool draining_ = false;
	/* Idle parking: the drain period, how long without a record before parking (0: never), the
	 * parked tick, the timer time since the last record, and the flag in the programs' .bss. */
	uint32_t drain_ms_ = 10;
	uint32_t park_after_ms_ = 100;
	uint32_t parked_ms_ = 1000;
	uint32_t idle_ms_ = 0;
	volatile uint32_t *park_flag_ = nullptr;
	bool parked_ = false;
	uint64_t parks_ = 0;
	uint64_t ticks_ = 0;
	uint64_t poll_wakes_ = 0;
};

#endif

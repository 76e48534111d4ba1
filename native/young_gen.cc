#include "young_gen.h"

#include <cstring>
#include <v8.h>

/*
 * capYoungGen(bytes): V8's young generation held at about `bytes` (both semi-spaces).
 *
 * Why in the addon: V8 sizes the young generation from --max-semi-space-size once, when the
 * isolate is made, so a running script cannot cap it, and under load it grows to 32 MB and stays
 * there. What V8 does read at run time is --semi-space-growth-factor, at each growth. So a GC
 * epilogue callback, run inside every collection before the next can grow the space, sets the
 * factor to 1 (no growth) once the space has reached the cap, and back to V8's 2 when V8 has
 * shrunk it below. A JS observer of collections runs too late: a synchronous burst (the start-up
 * scan) grows the space to its maximum before any callback of the event loop runs.
 */

namespace
{

struct State {
	size_t cap = 0;
	int space = -1; /* index of new_space in the isolate's heap spaces */
	bool frozen = false;
	uint32_t toggles = 0;
};

State state;

void SetFactor(bool frozen)
{
	const char *f = frozen ? "--semi-space-growth-factor=1" : "--semi-space-growth-factor=2";
	v8::V8::SetFlagsFromString(f, strlen(f));
	state.frozen = frozen;
	state.toggles++;
}

void Epilogue(v8::Isolate *iso, v8::GCType, v8::GCCallbackFlags, void *)
{
	v8::HeapSpaceStatistics s;

	if (!iso->GetHeapSpaceStatistics(&s, state.space))
		return;
	bool over = s.space_size() >= state.cap;
	if (over != state.frozen)
		SetFactor(over);
}

int NewSpaceIndex(v8::Isolate *iso)
{
	for (size_t i = 0; i < iso->NumberOfHeapSpaces(); i++) {
		v8::HeapSpaceStatistics s;
		if (iso->GetHeapSpaceStatistics(&s, i) && strcmp(s.space_name(), "new_space") == 0)
			return static_cast<int>(i);
	}
	return -1;
}

/* capYoungGen(bytes): false when this V8 has no new_space to watch (nothing installed). Once. */
Napi::Value CapYoungGen(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	if (info.Length() < 1 || !info[0].IsNumber() || info[0].As<Napi::Number>().DoubleValue() < 1)
		throw Napi::TypeError::New(env, "capYoungGen: bytes must be a positive number");
	if (state.cap)
		throw Napi::Error::New(env, "capYoungGen: already capped");
	v8::Isolate *iso = v8::Isolate::GetCurrent();
	int i = NewSpaceIndex(iso);
	if (i < 0)
		return Napi::Boolean::New(env, false);
	state.space = i;
	state.cap = static_cast<size_t>(info[0].As<Napi::Number>().DoubleValue());
	iso->AddGCEpilogueCallback(Epilogue);
	return Napi::Boolean::New(env, true);
}

/* youngGenCap(): { cap, frozen, toggles }, or null when not capped. */
Napi::Value YoungGenCap(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	if (!state.cap)
		return env.Null();
	Napi::Object o = Napi::Object::New(env);
	o.Set("cap", Napi::Number::New(env, static_cast<double>(state.cap)));
	o.Set("frozen", Napi::Boolean::New(env, state.frozen));
	o.Set("toggles", Napi::Number::New(env, state.toggles));
	return o;
}

} // namespace

void InitYoungGen(Napi::Env env, Napi::Object exports)
{
	exports.Set("capYoungGen", Napi::Function::New(env, &CapYoungGen, "capYoungGen"));
	exports.Set("youngGenCap", Napi::Function::New(env, &YoungGenCap, "youngGenCap"));
}

/* The Sensor's containment methods: the control plane fills the kernel's
 * containment maps from the policy and what it learns of containers. */
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>
#include "sensor.h"
#include "loader.h"
#include "ctrwatch.h"

static uint64_t BigU64(Napi::Env env, Napi::Value v, const char *what)
{
	bool lossless = false;
	if (v.IsBigInt()) {
		uint64_t r = v.As<Napi::BigInt>().Uint64Value(&lossless);
		if (lossless)
			return r;
	} else if (v.IsNumber() && v.As<Napi::Number>().DoubleValue() >= 0) {
		return (uint64_t)v.As<Napi::Number>().DoubleValue();
	}
	throw Napi::TypeError::New(env, std::string(what) + " must be a non-negative bigint");
}

static void Check(Napi::Env env, int err, const char *what)
{
	if (err)
		throw Napi::Error::New(env, std::string(what) + ": " + strerror(-err));
}

/* setKillArm(arm: number[]): enum cw_arm per enum cw_kill_class, from class 0. */
Napi::Value Sensor::SetKillArm(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	if (info.Length() < 1 || !info[0].IsArray())
		throw Napi::TypeError::New(env, "setKillArm(arm): arm must be an array of numbers");
	if (!loader_)
		throw Napi::Error::New(env, "setKillArm: the sensor is closed");
	Napi::Array a = info[0].As<Napi::Array>();
	if (a.Length() > CW_KC_MAX)
		throw Napi::RangeError::New(env, "setKillArm(arm): more entries than kill classes");
	std::vector<uint32_t> arm;
	for (uint32_t i = 0; i < a.Length(); i++) {
		Napi::Value v = a.Get(i);
		uint32_t x = v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : 99;
		if (x > CW_ARM_DRY_RUN)
			throw Napi::RangeError::New(
				env, "setKillArm(arm): each entry must be 0 (report), 1 (kill) or 2 (dry-run)");
		arm.push_back(x);
	}
	Check(env, cw_loader_set_kill_arm(loader_, arm.data(), arm.size()), "setKillArm");
	return env.Undefined();
}

/* setContainer(cgroupId: bigint, verdict: 0 forget | 1 armed | 2 spared). */
Napi::Value Sensor::SetContainer(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	if (info.Length() < 2 || !info[1].IsNumber())
		throw Napi::TypeError::New(env, "setContainer(cgroupId: bigint, verdict: number)");
	if (!loader_)
		throw Napi::Error::New(env, "setContainer: the sensor is closed");
	uint64_t id = BigU64(env, info[0], "setContainer: cgroupId");
	uint32_t v = info[1].As<Napi::Number>().Uint32Value();
	if (v > CW_CV_SPARED)
		throw Napi::RangeError::New(env, "setContainer: verdict must be 0, 1 or 2");
	Check(env, cw_loader_set_container(loader_, id, v), "setContainer");
	return env.Undefined();
}

/* setHostFs(devs: number[], rootDev: number, rootIno: bigint): kernel dev encoding. */
Napi::Value Sensor::SetHostFs(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	if (info.Length() < 3 || !info[0].IsArray() || !info[1].IsNumber())
		throw Napi::TypeError::New(env, "setHostFs(devs: number[], rootDev: number, rootIno: bigint)");
	if (!loader_)
		throw Napi::Error::New(env, "setHostFs: the sensor is closed");
	Napi::Array a = info[0].As<Napi::Array>();
	std::vector<uint32_t> devs;
	for (uint32_t i = 0; i < a.Length(); i++) {
		if (!a.Get(i).IsNumber())
			throw Napi::TypeError::New(env, "setHostFs: devs must be numbers");
		devs.push_back(a.Get(i).As<Napi::Number>().Uint32Value());
	}
	Check(env,
	      cw_loader_set_host_fs(loader_, devs.data(), devs.size(), info[1].As<Napi::Number>().Uint32Value(),
				    BigU64(env, info[2], "setHostFs: rootIno")),
	      "setHostFs");
	return env.Undefined();
}

/* setTokenDevs(devs: number[]): service-account volumes by superblock, kernel dev encoding. */
Napi::Value Sensor::SetTokenDevs(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	if (info.Length() < 1 || !info[0].IsArray())
		throw Napi::TypeError::New(env, "setTokenDevs(devs: number[])");
	if (!loader_)
		throw Napi::Error::New(env, "setTokenDevs: the sensor is closed");
	Napi::Array a = info[0].As<Napi::Array>();
	std::vector<uint32_t> devs;
	for (uint32_t i = 0; i < a.Length(); i++) {
		Napi::Value v = a.Get(i);
		if (!v.IsNumber())
			throw Napi::TypeError::New(env, "setTokenDevs(devs): each entry must be a device number");
		devs.push_back(v.As<Napi::Number>().Uint32Value());
	}
	Check(env, cw_loader_set_token_devs(loader_, devs.data(), devs.size()), "setTokenDevs");
	return env.Undefined();
}

/* setApiServers([[family, addr: Buffer(4 | 16), port], …]): replaces the API server addresses. */
Napi::Value Sensor::SetApiServers(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *usage = "setApiServers(list): each entry must be [2 | 10, Buffer of 4 | 16 bytes, port 1-65535]";
	if (info.Length() < 1 || !info[0].IsArray())
		throw Napi::TypeError::New(env, usage);
	if (!loader_)
		throw Napi::Error::New(env, "setApiServers: the sensor is closed");
	Napi::Array a = info[0].As<Napi::Array>();
	std::vector<cw_api_server> list;
	for (uint32_t i = 0; i < a.Length(); i++) {
		Napi::Value e = a.Get(i);
		if (!e.IsArray() || e.As<Napi::Array>().Length() != 3)
			throw Napi::TypeError::New(env, usage);
		Napi::Array t = e.As<Napi::Array>();
		Napi::Value fam = t.Get(0u), addr = t.Get(1u), port = t.Get(2u);
		if (!fam.IsNumber() || !addr.IsBuffer() || !port.IsNumber())
			throw Napi::TypeError::New(env, usage);
		uint32_t f = fam.As<Napi::Number>().Uint32Value(), p = port.As<Napi::Number>().Uint32Value();
		Napi::Buffer<uint8_t> b = addr.As<Napi::Buffer<uint8_t>>();
		if (!((f == 2 && b.Length() == 4) || (f == 10 && b.Length() == 16)) || p < 1 || p > 65535)
			throw Napi::RangeError::New(env, usage);
		cw_api_server k;
		memset(&k, 0, sizeof(k));
		memcpy(k.addr, b.Data(), b.Length());
		k.port = (uint16_t)p;
		k.family = (uint16_t)f;
		list.push_back(k);
	}
	Check(env, cw_loader_set_api_servers(loader_, list.data(), list.size()), "setApiServers");
	return env.Undefined();
}

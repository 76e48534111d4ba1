#include <napi.h>
#include "sensor.h"

static Napi::Object InitAll(Napi::Env env, Napi::Object exports)
{
	return Sensor::Init(env, exports);
}

NODE_API_MODULE(ctrwatch, InitAll)

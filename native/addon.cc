#include <napi.h>
#include "malloc_trim.h"
#include "sensor.h"
#include "young_gen.h"

static Napi::Object InitAll(Napi::Env env, Napi::Object exports)
{
	InitMallocTrim(env, exports);
	InitYoungGen(env, exports);
	return Sensor::Init(env, exports);
}

NODE_API_MODULE(ctrwatch, InitAll)

#include "malloc_trim.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

/*
 * trimMalloc(): gives the C heap's free pages back to the kernel. glibc returns by itself only
 * the free top of an arena; what was freed below memory still in use (Buffers' backing stores,
 * V8's compiler and collector scratch, from the main thread and V8's worker threads' arenas)
 * stays resident. malloc_trim(0) releases the free pages inside every arena. True when it
 * released some; without glibc, false and nothing done.
 */
static Napi::Value TrimMalloc(const Napi::CallbackInfo &info)
{
#if defined(__GLIBC__)
	return Napi::Boolean::New(info.Env(), malloc_trim(0) == 1);
#else
	return Napi::Boolean::New(info.Env(), false);
#endif
}

void InitMallocTrim(Napi::Env env, Napi::Object exports)
{
	exports.Set("trimMalloc", Napi::Function::New(env, &TrimMalloc, "trimMalloc"));
}

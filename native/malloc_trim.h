#ifndef CTRWATCH_MALLOC_TRIM_H
#define CTRWATCH_MALLOC_TRIM_H

#include <napi.h>

/* Adds trimMalloc() to the addon's exports (malloc_trim.cc). */
void InitMallocTrim(Napi::Env env, Napi::Object exports);

#endif

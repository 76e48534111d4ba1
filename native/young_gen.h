#ifndef CTRWATCH_YOUNG_GEN_H
#define CTRWATCH_YOUNG_GEN_H

#include <napi.h>

/* Adds capYoungGen() and youngGenCap() to the addon's exports (young_gen.cc). */
void InitYoungGen(Napi::Env env, Napi::Object exports);

#endif

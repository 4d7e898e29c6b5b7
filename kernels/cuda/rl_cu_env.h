/* rl_cu_env.h - on/off switches from the environment, for the CUDA
 * backend's C and CUDA files alike. */
#ifndef RL_CU_ENV_H
#define RL_CU_ENV_H

#include <stdbool.h>
#include <stdlib.h>

/* A switch: name set to a value starting with "0" or "1" forces off or on,
 * else (unset or anything else) dflt; read once per cache, which starts at
 * -1. */
static inline bool rl_env_switch(const char *name, bool dflt, int *cache)
{
    if (*cache < 0) {
        const char *e = getenv(name);
        *cache = e && (e[0] == '0' || e[0] == '1') ? e[0] == '1' : dflt;
    }
    return *cache;
}

#endif

/* rl_engine_select.h - choose and open the compute engine from daemon options. */
#ifndef RL_ENGINE_SELECT_H
#define RL_ENGINE_SELECT_H

#include "rl_daemon.h"
#include "rl_engine.h"

#include <stddef.h>

/* "test" (default without a model) -> rl_engine_test; a model path -> the LLM
 * engine (only when built with RL_HAVE_LLM). Returns 0 or a negative errno. */
int rl_engine_open(const rl_daemon_opts *o, rl_engine **out, char *err, size_t errlen);

#ifdef RL_HAVE_LLM
int rl_engine_llm_create(const char *path, int n_threads, rl_engine **out, char *err, size_t errlen);
#endif

#endif

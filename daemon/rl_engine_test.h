/* rl_engine_test.h - the deterministic test engine (transport tests, benches).
 *
 * Vocabulary: 256 byte tokens (id = byte), BOS = 256, EOS = 257. tokenize maps
 * bytes to ids (BOS first when add_special). Generation echoes the prompt bytes
 * (without BOS/EOS) in order, one token per step, then EOS. Prefill consumes
 * the prompt 8 tokens per step (chunked prefill). chat_format renders each
 * message as "<|role|>content\n" and appends "<|assistant|>".
 * A prompt starting with "__slow__" sleeps ~5 ms in every step it takes part in;
 * "__hang__" blocks the step until rl_engine_test_unhang() is called (the
 * daemon does when it stops). Regions given to map_region get the token ids
 * through tok_dst (a plain store).
 */
#ifndef RL_ENGINE_TEST_H
#define RL_ENGINE_TEST_H

#include "rl_engine.h"

#define RL_TEST_BOS 256
#define RL_TEST_EOS 257
#define RL_TEST_VOCAB 258
#define RL_TEST_CTX 4096

int rl_engine_test_create(rl_engine **out);
/* Zero copy (map_region/unmap_region, tok_dst): the engine stores token ^ x
 * through tok_dst while it reports token itself (x = 0 by default), so that a
 * test can tell which of the two the client read. Process-wide. */
void rl_engine_test_set_tokdst_xor(int32_t x);
/* Regions mapped and not yet unmapped, over all test engines (process-wide). */
int rl_engine_test_regions(void);
/* tok_dst pointers outside every mapped range, and unmap_region calls naming
 * no mapped base, so far. */
int rl_engine_test_range_errors(void);
/* The longest length map_region was given. */
size_t rl_engine_test_largest_range(void);
/* Make map_region fail with -ENOTSUP (true) so the daemon falls back to copies. */
void rl_engine_test_set_map_fail(bool fail);

/* Release every step blocked by a "__hang__" prompt created before this call
 * (process-wide). */
void rl_engine_test_unhang(void);

#endif

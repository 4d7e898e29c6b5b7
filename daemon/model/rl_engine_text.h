/* rl_engine_text.h - the text side shared by the model engines (CPU and CUDA):
 * the model's tokenizer and chat template behind the rl_engine text ops, and
 * the model-derived part of rl_engine_info. */
#ifndef RL_ENGINE_TEXT_H
#define RL_ENGINE_TEXT_H

#include "rl_engine.h"
#include "rl_model.h"
#include "rl_tokenizer.h"

typedef struct rl_engine_text {
    rl_tokenizer *tok; /* NULL when the file has no usable vocabulary */
    rl_chat_tmpl tmpl;
    char err[160];     /* why tok is NULL */
} rl_engine_text;

/* Load the tokenizer and chat template of a model file. A missing or broken
 * vocabulary is not an error: the engine then serves token ids only, and the
 * text ops answer -ENOTSUP (t->err says why). */
void rl_engine_text_init(rl_engine_text *t, const rl_gguf *g);
void rl_engine_text_free(rl_engine_text *t);

int rl_engine_text_tokenize(const rl_engine_text *t, const char *text, size_t len, bool add_special,
                            bool parse_special, int32_t *out, size_t cap);
int rl_engine_text_piece(const rl_engine_text *t, int32_t tok, char *buf, size_t cap);
bool rl_engine_text_is_eog(const rl_engine_text *t, int32_t tok);
int rl_engine_text_chat(const rl_engine_text *t, const rl_chat_msg *msgs, uint32_t n, char *out,
                        size_t cap);
/* Render msgs with the chat template and tokenize the result so that only the
 * template's markers can become control tokens (message contents are plain
 * text). Returns the id count (may exceed cap) or a negative errno. */
int rl_engine_text_chat_tokenize(const rl_engine_text *t, const rl_chat_msg *msgs, uint32_t n,
                                 bool add_special, int32_t *out, size_t cap);
/* The fields of info that come from the model and its vocabulary (name, arch,
 * type, shape, weight bytes, BOS/EOS); the caller sets backend, n_ctx, kv_bytes. */
void rl_engine_text_model_info(const rl_engine_text *t, const rl_model *m, rl_engine_info *info);

#endif

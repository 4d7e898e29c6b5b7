/* rl_engine_text.c - tokenizer, detokenizer pieces and chat template for the
 * model engines; one implementation behind the CPU and CUDA rl_engine ops. */
#include "rl_engine_text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rl_engine_text_init(rl_engine_text *t, const rl_gguf *g)
{
    memset(t, 0, sizeof *t);
    if (rl_tokenizer_load(g, &t->tok, t->err, sizeof t->err) < 0)
        t->tok = NULL; /* e.g. random test models without a vocabulary */
    rl_gguf_str ct = {0};
    rl_gguf_get_str(g, "tokenizer.chat_template", &ct);
    t->tmpl = rl_chat_detect(ct.ptr, ct.len);
}

void rl_engine_text_free(rl_engine_text *t)
{
    rl_tokenizer_free(t->tok);
    t->tok = NULL;
}

int rl_engine_text_tokenize(const rl_engine_text *t, const char *text, size_t len, bool add_special,
                            bool parse_special, int32_t *out, size_t cap)
{
    return t->tok ? rl_tokenize(t->tok, text, len, add_special, parse_special, out, cap) : -ENOTSUP;
}

int rl_engine_text_piece(const rl_engine_text *t, int32_t tok, char *buf, size_t cap)
{
    return t->tok ? rl_token_to_piece(t->tok, tok, buf, cap) : -ENOTSUP;
}

bool rl_engine_text_is_eog(const rl_engine_text *t, int32_t tok)
{
    return t->tok ? rl_tokenizer_is_eog(t->tok, tok) : false;
}

int rl_engine_text_chat(const rl_engine_text *t, const rl_chat_msg *msgs, uint32_t n, char *out,
                        size_t cap)
{
    if (n > 1u << 20)
        return -EINVAL;
    size_t k = n ? n : 1;
    const char **roles = malloc(sizeof(char *) * k);
    const char **contents = malloc(sizeof(char *) * k);
    size_t *lens = malloc(sizeof(size_t) * k);
    int rc = -ENOMEM;
    if (roles && contents && lens) {
        for (uint32_t i = 0; i < n; i++) {
            roles[i] = msgs[i].role;
            contents[i] = msgs[i].content;
            lens[i] = msgs[i].content_len;
        }
        rc = rl_chat_render(t->tmpl, roles, contents, lens, n, out, cap);
    }
    free(roles);
    free(contents);
    free(lens);
    return rc;
}

int rl_engine_text_chat_tokenize(const rl_engine_text *t, const rl_chat_msg *msgs, uint32_t n,
                                 bool add_special, int32_t *out, size_t cap)
{
    if (!t->tok)
        return -ENOTSUP;
    if (n > 1u << 20)
        return -EINVAL;
    size_t k = n ? n : 1, tlen = 256;
    for (uint32_t i = 0; i < n; i++)
        tlen += msgs[i].content_len + 64;
    const char **roles = malloc(sizeof(char *) * k);
    const char **contents = malloc(sizeof(char *) * k);
    size_t *lens = malloc(sizeof(size_t) * k);
    rl_tok_span *spans = malloc(sizeof(rl_tok_span) * (k + 1)); /* n + 1 always suffices */
    char *text = NULL;
    int rc = -ENOMEM;
    if (!roles || !contents || !lens || !spans)
        goto out;
    for (uint32_t i = 0; i < n; i++) {
        roles[i] = msgs[i].role;
        contents[i] = msgs[i].content;
        lens[i] = msgs[i].content_len;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        free(text);
        text = malloc(tlen);
        if (!text) {
            rc = -ENOMEM;
            goto out;
        }
        size_t n_spans = 0;
        rc = rl_chat_render_spans(t->tmpl, roles, contents, lens, n, text, tlen, spans, k + 1, &n_spans);
        if (rc < 0)
            goto out;
        if ((size_t)rc <= tlen) {
            if (n_spans > k + 1) {
                rc = -EIO;
                goto out;
            }
            /* the template's own text is the only place a control token may come from */
            rc = rl_tokenize_spans(t->tok, text, (size_t)rc, add_special, spans, n_spans, out, cap);
            goto out;
        }
        tlen = (size_t)rc;
        rc = -EIO; /* the size changed between calls */
    }
out:
    free(text);
    free(roles);
    free(contents);
    free(lens);
    free(spans);
    return rc;
}

void rl_engine_text_model_info(const rl_engine_text *t, const rl_model *m, rl_engine_info *info)
{
    const rl_model_hparams *hp = &m->hp;
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "%s", hp->name);
    snprintf(info->arch, sizeof info->arch, "%s", hp->arch);
    const rl_type_traits *tt = rl_type_get(m->main_type);
    snprintf(info->type, sizeof info->type, "%s", tt && tt->name ? tt->name : "?");
    info->n_vocab = hp->n_vocab;
    info->n_layer = hp->n_layer;
    info->n_embd = hp->n_embd;
    info->n_head = hp->n_head;
    info->n_head_kv = hp->n_head_kv;
    info->n_ff = hp->n_ff;
    info->weight_bytes = m->weight_bytes;
    info->bos = t->tok ? rl_tokenizer_bos(t->tok) : -1;
    info->eos = t->tok ? rl_tokenizer_eos(t->tok) : -1;
}

/* rl_chat.c - chat templates: picking the family from tokenizer.chat_template and
 * rendering a conversation plus the assistant prefix in that family's format.
 *
 * The rendered text leaves out the leading BOS (tokenize it with add_special to get
 * it). rl_chat_render_spans also tells which bytes are the template's own, so
 * that rl_tokenize_spans turns only those markers into control tokens and
 * message contents stay plain text. */
#include "rl_tokenizer.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

rl_chat_tmpl rl_chat_detect(const char *tmpl, size_t len)
{
    if (!tmpl || len == 0)
        return RL_CHAT_CHATML;
    if (memmem(tmpl, len, "<|start_header_id|>", 19))
        return RL_CHAT_LLAMA3;
    if (memmem(tmpl, len, "<|im_start|>", 12))
        return RL_CHAT_CHATML;
    if (memmem(tmpl, len, "[INST]", 6))
        return memmem(tmpl, len, "<<SYS>>", 7) ? RL_CHAT_LLAMA2 : RL_CHAT_MISTRAL;
    return RL_CHAT_CHATML;
}

typedef struct wbuf {
    char *out;
    size_t cap, n;
    rl_tok_span *spans; /* template-text spans, span_cap of them (NULL, 0: only counted) */
    size_t span_cap, n_spans;
    size_t span_end; /* end of the last span, also past span_cap */
} wbuf;

/* Message content: untrusted, outside every span. */
static void put(wbuf *w, const char *s, size_t n)
{
    if (n == 0)
        return;
    if (w->n < w->cap)
        memcpy(w->out + w->n, s, w->cap - w->n < n ? w->cap - w->n : n);
    w->n += n;
}

/* Template text: extends the last span when adjacent, else opens a new one. */
static void puts_(wbuf *w, const char *s)
{
    size_t n = strlen(s), at = w->n;
    put(w, s, n);
    if (n == 0)
        return;
    if (w->n_spans && w->span_end == at) {
        if (w->n_spans <= w->span_cap)
            w->spans[w->n_spans - 1].len += n;
    } else {
        if (w->n_spans < w->span_cap)
            w->spans[w->n_spans] = (rl_tok_span){at, n};
        w->n_spans++;
    }
    w->span_end = at + n;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

static void put_trim(wbuf *w, const char *s, size_t n)
{
    while (n && is_space(*s))
        s++, n--;
    while (n && is_space(s[n - 1]))
        n--;
    put(w, s, n);
}

enum { ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT };

static int role_of(const char *r)
{
    if (!r)
        return -1;
    if (strcmp(r, "system") == 0) return ROLE_SYSTEM;
    if (strcmp(r, "user") == 0) return ROLE_USER;
    if (strcmp(r, "assistant") == 0) return ROLE_ASSISTANT;
    return -1;
}

typedef struct msgs {
    const char *const *roles, *const *contents;
    const size_t *lens;
} msgs;

static size_t len_of(const msgs *m, uint32_t i) { return m->lens ? m->lens[i] : strlen(m->contents[i]); }

static void render_chatml(wbuf *w, const msgs *m, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        puts_(w, "<|im_start|>");
        puts_(w, m->roles[i]);
        puts_(w, "\n");
        put(w, m->contents[i], len_of(m, i));
        puts_(w, "<|im_end|>\n");
    }
    puts_(w, "<|im_start|>assistant\n");
}

static void render_llama3(wbuf *w, const msgs *m, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        puts_(w, "<|start_header_id|>");
        puts_(w, m->roles[i]);
        puts_(w, "<|end_header_id|>\n\n");
        put_trim(w, m->contents[i], len_of(m, i));
        puts_(w, "<|eot_id|>");
    }
    puts_(w, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

/* The [INST] families differ only in these strings and in trimming contents:
 * Llama 2: [INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {answer} </s><s>[INST] ...
 * Mistral: [INST] {user} [/INST] {answer}</s>[INST] ... ; a system prompt has no
 * marker of its own and goes before the next user message, separated by a blank line. */
typedef struct inst_style {
    const char *open_first, *open_next; /* a turn's opener: the first one, later ones */
    const char *sys_pre, *sys_post;     /* around a system prompt */
    const char *answer_post;            /* after an assistant message */
    bool trim;                          /* strip contents' surrounding whitespace */
} inst_style;

static const inst_style llama2_style = {"[INST] ", "<s>[INST] ", "<<SYS>>\n", "\n<</SYS>>\n\n", " </s>", true};
static const inst_style mistral_style = {"[INST] ", "[INST] ", "", "\n\n", "</s>", false};

static void put_content(wbuf *w, const msgs *m, uint32_t i, bool trim)
{
    if (trim)
        put_trim(w, m->contents[i], len_of(m, i));
    else
        put(w, m->contents[i], len_of(m, i));
}

static void render_inst(wbuf *w, const msgs *m, uint32_t n, const inst_style *st)
{
    bool in_turn = false, first = true;
    for (uint32_t i = 0; i < n; i++) {
        int r = role_of(m->roles[i]);
        if (r != ROLE_ASSISTANT && !in_turn) {
            puts_(w, first ? st->open_first : st->open_next);
            in_turn = true;
            first = false;
        }
        if (r == ROLE_SYSTEM) {
            puts_(w, st->sys_pre);
            put_content(w, m, i, st->trim);
            puts_(w, st->sys_post);
        } else if (r == ROLE_USER) {
            put_content(w, m, i, st->trim);
            puts_(w, " [/INST]");
            in_turn = false;
        } else {
            if (in_turn) {
                puts_(w, " [/INST]");
                in_turn = false;
            }
            puts_(w, " ");
            put_content(w, m, i, st->trim);
            puts_(w, st->answer_post);
            first = false;
        }
    }
    if (in_turn)
        puts_(w, " [/INST]");
}

int rl_chat_render(rl_chat_tmpl tmpl, const char *const *roles, const char *const *contents,
                   const size_t *content_lens, uint32_t n, char *out, size_t cap)
{
    size_t n_spans;
    return rl_chat_render_spans(tmpl, roles, contents, content_lens, n, out, cap, NULL, 0, &n_spans);
}

int rl_chat_render_spans(rl_chat_tmpl tmpl, const char *const *roles, const char *const *contents,
                         const size_t *content_lens, uint32_t n, char *out, size_t cap,
                         rl_tok_span *spans, size_t span_cap, size_t *n_spans)
{
    if ((n && (!roles || !contents)) || (!out && cap) || (!spans && span_cap) || !n_spans)
        return -EINVAL;
    for (uint32_t i = 0; i < n; i++)
        if (role_of(roles[i]) < 0 || (!contents[i] && (!content_lens || content_lens[i])))
            return -EINVAL;
    msgs m = {roles, contents, content_lens};
    wbuf w = {out, cap, 0, spans, span_cap, 0, 0};
    switch (tmpl) {
    case RL_CHAT_CHATML: render_chatml(&w, &m, n); break;
    case RL_CHAT_LLAMA2: render_inst(&w, &m, n, &llama2_style); break;
    case RL_CHAT_LLAMA3: render_llama3(&w, &m, n); break;
    case RL_CHAT_MISTRAL: render_inst(&w, &m, n, &mistral_style); break;
    default: return -EINVAL;
    }
    *n_spans = w.n_spans;
    if (w.n > INT_MAX)
        return -EOVERFLOW;
    return (int)w.n;
}

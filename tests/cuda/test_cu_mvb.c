/* test_cu_mvb.c - rl_cu_mvb, the one-sequence products whose weights
 * stream by bulk copies into shared memory, against float64 on fresh random
 * inputs. Exits 77 without a GPU; skips with a message without sm_90. */
#include <errno.h>
#include <time.h>

#include "tcu_kv.h"
#include "tcu_mat.h"

/* x as the kernel's int8 activation holds it: per block of 32, d = max |x| /
 * 127 and q = round-to-even(x / d), in float as the kernel computes them; the
 * values q * d. (Against the unquantized values the error of a small GLU
 * product's 48 outputs reached 0.022-0.025 in rare draws, over the old 2e-2
 * bound; with the activation modelled the products must agree far closer.) */
static void quant_act(float *x, int64_t n)
{
    for (int64_t b = 0; b < n / 32; b++) {
        float amax = 0.0f;
        for (int k = 0; k < 32; k++)
            amax = fmaxf(amax, fabsf(x[b * 32 + k]));
        float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
        for (int k = 0; k < 32; k++)
            x[b * 32 + k] = rintf(x[b * 32 + k] * id) * d;
    }
}

/* rl_cu_mvb (weights by bulk copies, the activation quantized per CTA, an
 * optional RMSNorm first) against float64: rows x cols of type t in mode,
 * with or without the norm; the int8 types' activation quantized in the
 * reference too (quant_act). */
static void check_mvb(rl_type t, int64_t rows, int64_t cols, int mode, bool norm)
{
    char name[96];
    snprintf(name, sizeof name, "mvb %s %lldx%lld mode%d norm%d", rl_type_get(t)->name, (long long)rows,
             (long long)cols, mode, norm);
    uint64_t s = tcu_seed(name);
    float *w = malloc(rows * cols * sizeof(float));
    rl_cu_mat m;
    tcu_make_weight(t, rows, cols, &s, &m, w);
    int64_t n_out = mode == RL_CU_MV_GLU ? rows / 2 : rows;
    float *x = tcu_rand_vec(&s, cols, 2.0f), *g = tcu_rand_vec(&s, cols, 1.0f), *y0 = tcu_rand_vec(&s, n_out, 1.0f);
    float *dx = tcu_up(x, cols * sizeof(float)), *dg = tcu_up(g, cols * sizeof(float));
    float *dy = mode == RL_CU_MV_ADD ? tcu_up(y0, n_out * sizeof(float)) : tcu_dev(n_out * sizeof(float));
    CU_OK(rl_cu_mvb(&m, dx, norm ? dg : NULL, 1e-5f, mode, dy, 0));
    float *xr = malloc(cols * sizeof(float)), *y = malloc(n_out * sizeof(float));
    if (norm)
        tcu_ref_rmsnorm(x, g, cols, 1, NULL, xr);
    else
        memcpy(xr, x, cols * sizeof(float));
    bool q8 = t != RL_TYPE_F16 && t != RL_TYPE_BF16;
    if (q8)
        quant_act(xr, cols);
    double *ref = malloc(n_out * sizeof(double));
    tcu_ref_product(w, xr, y0, rows, cols, 1, mode, ref);
    tcu_down(y, dy, n_out * sizeof(float));
    double err = tcu_rel_err(y, ref, n_out);
    ck_assert_msg(err < 2e-3, "%s: rel err %g", name, err);
    cudaFree(dx), cudaFree(dg), cudaFree(dy);
    rl_cu_mat_free(&m);
    free(w), free(x), free(g), free(y0), free(xr), free(y), free(ref);
}

/* Every type in every mode, rows of one chunk and of two or three (4,352
 * columns: 128 blocks, then 8), more tiles than SMs (the ring wraps: 2,400
 * rows), and what it refuses. */
/* Whether this device runs rl_cu_mvb (an sm_90 one), said when it does not. */
static bool mvb_device(const char *what)
{
    uint64_t s = tcu_seed("mvb device");
    rl_cu_mat m;
    float *w = malloc(16 * 512 * sizeof(float));
    tcu_make_weight(RL_TYPE_Q4_0, 16, 512, &s, &m, w);
    bool ok = rl_cu_mvb_ok(&m, RL_CU_MV_STORE);
    if (!ok)
        printf("no sm_90 device: skipping %s\n", what);
    rl_cu_mat_free(&m);
    free(w);
    return ok;
}

START_TEST(mvb_streams_products_of_each_type_in_every_mode)
{
    if (!mvb_device("rl_cu_mvb"))
        return;
    uint64_t s = tcu_seed("mvb refusals");
    rl_cu_mat m;
    float *w = malloc(24 * 2304 * sizeof(float));
    /* chunks of 128, 64 and 32 blocks of 32 (K-quants: 16, 16 and 8 of their
     * 256-value blocks, scales inside); the floats keep x in fp32 */
    const rl_type types[] = {RL_TYPE_Q4_0, RL_TYPE_Q8_0, RL_TYPE_F16, RL_TYPE_BF16,
                             RL_TYPE_Q4_K, RL_TYPE_Q5_K, RL_TYPE_Q6_K};
    for (int i = 0; i < 7; i++) {
        rl_type t = types[i];
        check_mvb(t, 64, 512, RL_CU_MV_STORE, false);
        check_mvb(t, 2400, 2304, RL_CU_MV_STORE, true);
        check_mvb(t, 2400, 4352, RL_CU_MV_STORE, false);
        check_mvb(t, 264, 4352, RL_CU_MV_ADD, true);
        check_mvb(t, 2 * 320, 4352, RL_CU_MV_GLU, true);
        check_mvb(t, 64, 11008, RL_CU_MV_ADD, false); /* Llama 2 7B's down: Q4_0 128 + 128 + 88 blocks */
        check_mvb(t, 40, 768, RL_CU_MV_ADD, false);
        check_mvb(t, 2 * 48, 2304, RL_CU_MV_GLU, true);
        check_mvb(t, 2 * 1200, 512, RL_CU_MV_GLU, false);
    }
    tcu_make_weight(RL_TYPE_F32, 24, 512, &s, &m, w);
    ck_assert(!rl_cu_mvb_ok(&m, RL_CU_MV_STORE));
    rl_cu_mat_free(&m);
    tcu_make_weight(RL_TYPE_Q4_0, 12, 512, &s, &m, w); /* 12 outputs: not in tiles of 8 */
    ck_assert(!rl_cu_mvb_ok(&m, RL_CU_MV_STORE));
    ck_assert(rl_cu_mvb_ok(&m, RL_CU_MV_GLU) == false); /* 6 outputs */
    float *d = tcu_dev(512 * sizeof(float));
    ck_assert_int_eq(rl_cu_mvb(&m, d, NULL, 0.0f, RL_CU_MV_STORE, d, 0), -ENOTSUP);
    rl_cu_mat_free(&m);
    tcu_make_weight(RL_TYPE_Q4_0, 16, 224 + 32, &s, &m, w); /* 256 columns: taken */
    ck_assert(rl_cu_mvb_ok(&m, RL_CU_MV_STORE));
    ck_assert_int_eq(rl_cu_mvb(&m, d, NULL, 0.0f, 7, d, 0), -EINVAL);
    ck_assert_int_eq(rl_cu_mvb(&m, d + 1, NULL, 0.0f, RL_CU_MV_STORE, d, 0), -ENOTSUP); /* x read as float4s */
    ck_assert_int_eq(rl_cu_mvb(&m, d, d + 2, 1e-5f, RL_CU_MV_STORE, d, 0), -ENOTSUP);
    rl_cu_mat_free(&m);
    cudaFree(d);
    free(w);
}
END_TEST

/* fp16 of v as rl_cu_mvb_ex's GLU hand-off stores it (saturated). */
static uint16_t half_sat(float v)
{
    if (fabsf(v) > 65504.0f)
        v = copysignf(65504.0f, v);
    return rl_fp32_to_fp16(v);
}

/* rl_cu_mvb_ex's fp16 hand-offs against rl_cu_mvb: a GLU product's halves
 * are its fp32 outputs rounded (scale: the norm weights' magnitude, large
 * enough for some outputs to saturate), and a product reading halves gives the same
 * bits as reading their fp32 values. */
static void check_hand_off(rl_type t, int64_t rows, int64_t cols, float scale)
{
    char name[96];
    snprintf(name, sizeof name, "mvb halves %s %lldx%lld x%g", rl_type_get(t)->name, (long long)rows,
             (long long)cols, scale);
    uint64_t s = tcu_seed(name);
    float *w = malloc(rows * cols * sizeof(float));
    rl_cu_mat m;
    tcu_make_weight(t, rows, cols, &s, &m, w);
    /* GLU: rows / 2 outputs, fp32 then halves */
    int64_t n_out = rows / 2;
    float *x = tcu_rand_vec(&s, cols, 2.0f), *g = tcu_rand_vec(&s, cols, scale);
    float *dx = tcu_up(x, cols * sizeof(float)), *dg = tcu_up(g, cols * sizeof(float));
    float *dy = tcu_dev(n_out * sizeof(float)), *dh = tcu_dev(n_out * sizeof(uint16_t));
    CU_OK(rl_cu_mvb(&m, dx, dg, 1e-5f, RL_CU_MV_GLU, dy, 0));
    CU_OK(rl_cu_mvb_ex(&m, dx, dg, 1e-5f, RL_CU_MV_GLU, dh, RL_CU_MVB_HOUT, 0));
    float *y = malloc(n_out * sizeof(float));
    uint16_t *h = malloc(n_out * sizeof(uint16_t));
    tcu_down(y, dy, n_out * sizeof(float));
    tcu_down(h, dh, n_out * sizeof(uint16_t));
    int sat = 0;
    for (int64_t i = 0; i < n_out; i++) {
        ck_assert_msg(h[i] == half_sat(y[i]), "%s: output %lld: half 0x%04x for %g", name, (long long)i, h[i], y[i]);
        sat += fabsf(y[i]) > 65504.0f;
    }
    if (scale > 100.0f)
        ck_assert_msg(sat > 0, "%s: no output saturated", name);
    /* a product reading halves: rows outputs added to y0 */
    uint16_t *xh = malloc(cols * sizeof(uint16_t));
    for (int64_t i = 0; i < cols; i++) {
        xh[i] = rl_fp32_to_fp16(x[i]);
        x[i] = rl_fp16_to_fp32(xh[i]);
    }
    float *y0 = tcu_rand_vec(&s, rows, 1.0f), *ya = malloc(rows * sizeof(float)), *yb = malloc(rows * sizeof(float));
    float *dxf = tcu_up(x, cols * sizeof(float)), *dya = tcu_up(y0, rows * sizeof(float));
    float *dyb = tcu_up(y0, rows * sizeof(float));
    uint16_t *dxh = tcu_up(xh, cols * sizeof(uint16_t));
    CU_OK(rl_cu_mvb(&m, dxf, NULL, 0.0f, RL_CU_MV_ADD, dya, 0));
    CU_OK(rl_cu_mvb_ex(&m, dxh, NULL, 0.0f, RL_CU_MV_ADD, dyb, RL_CU_MVB_HIN, 0));
    tcu_down(ya, dya, rows * sizeof(float));
    tcu_down(yb, dyb, rows * sizeof(float));
    ck_assert_msg(!memcmp(ya, yb, rows * sizeof(float)), "%s: the product of halves differs", name);
    /* what the hand-offs refuse */
    ck_assert_int_eq(rl_cu_mvb_ex(&m, dx, dg, 1e-5f, RL_CU_MV_STORE, dy, RL_CU_MVB_HOUT, 0), -EINVAL);
    ck_assert_int_eq(rl_cu_mvb_ex(&m, dxh, dg, 1e-5f, RL_CU_MV_STORE, dy, RL_CU_MVB_HIN, 0), -EINVAL);
    ck_assert_int_eq(rl_cu_mvb_ex(&m, dxh, NULL, 0.0f, RL_CU_MV_STORE, dy, 4, 0), -EINVAL);
    cudaFree(dx), cudaFree(dg), cudaFree(dy), cudaFree(dh), cudaFree(dxf), cudaFree(dya), cudaFree(dyb);
    cudaFree(dxh);
    rl_cu_mat_free(&m);
    free(w), free(x), free(g), free(y), free(h), free(xh), free(y0), free(ya), free(yb);
}

START_TEST(mvb_hands_off_in_halves)
{
    if (!mvb_device("rl_cu_mvb_ex"))
        return;
    uint64_t s = tcu_seed("mvb halves refusals");
    rl_cu_mat m;
    float *w = malloc(64 * 512 * sizeof(float));
    const rl_type types[] = {RL_TYPE_Q4_0, RL_TYPE_Q8_0, RL_TYPE_Q4_K, RL_TYPE_Q5_K, RL_TYPE_Q6_K};
    for (int i = 0; i < 5; i++) {
        check_hand_off(types[i], 2 * 320, 11008, 2.0f); /* 7B's down width: rows of three chunks */
        check_hand_off(types[i], 2 * 1200, 2304, 2.0f); /* the ring wraps */
    }
    check_hand_off(RL_TYPE_Q4_0, 2 * 64, 4096, 3000.0f); /* outputs past the largest half */
    tcu_make_weight(RL_TYPE_F16, 64, 512, &s, &m, w); /* float weights keep x fp32 */
    float *d = tcu_dev(512 * sizeof(float));
    ck_assert_int_eq(rl_cu_mvb_ex(&m, d, NULL, 0.0f, RL_CU_MV_STORE, d, RL_CU_MVB_HIN, 0), -EINVAL);
    rl_cu_mat_free(&m);
    cudaFree(d);
    free(w);
}
END_TEST

/* rl_cu_mvb_rope_kv against rl_cu_mvb then rl_cu_rope_kv_paged: the same
 * bits in q and in the whole pool (both pools start from the same random
 * bytes, so a stray write shows too). Q|K|V as one matrix or as three parts
 * (row0), types per part, partial rotation, frequencies from a table, a
 * position with no valid place (no pool write), 32 tiles a CTA on an H100's
 * 132 SMs (the most it takes), and 33 (wide: refused). */
typedef struct rope_case {
    const char *name;
    int n_head, hd, n_rot;
    bool table, wide;
    int64_t cols;
    rl_type types[3]; /* one matrix when types[1] is 0 (F32: never a part type here) */
} rope_case;

static void check_mvb_rope(const rope_case *rc, int seq, int pos)
{
    char name[128];
    snprintf(name, sizeof name, "mvb rope %s seq %d pos %d", rc->name, seq, pos);
    uint64_t s = tcu_seed(name);
    pool_case c;
    make_case(&c, &s, rc->hd, false);
    c.r.n_head = rc->n_head;
    c.r.n_rot = rc->n_rot;
    float *d_freq = NULL;
    if (rc->table) {
        float fr[256];
        for (int i = 0; i < rc->n_rot / 2; i++)
            fr[i] = powf(5e5f, -2.0f * (float)i / (float)rc->n_rot) * (1.0f + 0.25f * tcu_unif(&s));
        d_freq = tcu_up(fr, sizeof fr);
        c.r.inv_freq = d_freq;
    }
    const int64_t qd = (int64_t)c.r.n_head * c.r.head_dim, kd = (int64_t)c.r.n_head_kv * c.r.head_dim;
    const int64_t tot = qd + 2 * kd, cols = rc->cols;
    int np = rc->types[1] ? 3 : 1;
    int64_t rows[3] = {np == 3 ? qd : tot, kd, kd}, off[3] = {0, qd, qd + kd};
    rl_cu_mat m[3];
    float *w = malloc(tot * cols * sizeof(float));
    for (int i = 0; i < np; i++)
        tcu_make_weight(rc->types[i], rows[i], cols, &s, &m[i], w);
    int sms = 0;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    rl_cu_kv any = {.pool = w, .q8 = false};
    bool fits = sms > 0 && (tot / 8 + sms - 1) / sms <= 32; /* tiles of 8 rows a CTA */
    if (!rl_cu_mvb_ok(&m[0], RL_CU_MV_STORE) || !fits) {
        if (!rl_cu_mvb_ok(&m[0], RL_CU_MV_STORE))
            printf("%s: no sm_90 device: skipping rl_cu_mvb_rope_kv\n", name);
        else /* more than 32 tiles a CTA (the wide case on 132 SMs): refused */
            ck_assert_msg(!rl_cu_mvb_rope_ok(&m[0], &c.r, &any), "%s: %lld rows on %d SMs taken", name, (long long)tot,
                          sms);
        for (int i = 0; i < np; i++)
            rl_cu_mat_free(&m[i]);
        free(w), free(c.bt), cudaFree(d_freq);
        return;
    }
    ck_assert_msg(rl_cu_mvb_rope_ok(&m[0], &c.r, &any), "%s: refused", name);
    size_t pool_bytes = rl_cu_kv_block_bytes(NL, (uint32_t)c.r.n_head_kv, (uint32_t)c.r.head_dim, false) * c.n_blocks;
    unsigned char *init = malloc(pool_bytes);
    for (size_t i = 0; i < pool_bytes; i++)
        init[i] = (unsigned char)tcu_rng_next(&s);
    void *pa = tcu_up(init, pool_bytes), *pb = tcu_up(init, pool_bytes);
    int32_t *d_bt = tcu_up(c.bt, sizeof(int32_t) * c.n_seq * c.stride);
    int32_t *d_pos = tcu_up(&pos, sizeof pos), *d_row = tcu_up(&seq, sizeof seq);
    rl_cu_kv ka = dev_kv(&c, pa, d_bt, false), kb = dev_kv(&c, pb, d_bt, false);
    float *x = tcu_rand_vec(&s, cols, 2.0f), *g = tcu_rand_vec(&s, cols, 1.0f);
    float *dx = tcu_up(x, cols * sizeof(float)), *dg = tcu_up(g, cols * sizeof(float));
    float *dqkv = tcu_dev(tot * sizeof(float)), *dqa = tcu_dev(qd * sizeof(float)), *dqb = tcu_dev(qd * sizeof(float));
    for (int i = 0; i < np; i++)
        CU_OK(rl_cu_mvb(&m[i], dx, dg, 1e-5f, RL_CU_MV_STORE, dqkv + off[i], 0));
    CU_OK(rl_cu_rope_kv_paged(dqkv, 1, d_pos, d_row, &c.r, &ka, LAYER, dqa, 0));
    for (int i = 0; i < np; i++) {
        rl_cu_mvb_rope rp = {&c.r, &kb, LAYER, d_pos, d_row, dqb, off[i]};
        CU_OK(rl_cu_mvb_rope_kv(&m[i], dx, dg, 1e-5f, &rp, 0));
    }
    float *qa = malloc(qd * sizeof(float)), *qb = malloc(qd * sizeof(float));
    unsigned char *hpa = malloc(pool_bytes), *hpb = malloc(pool_bytes);
    tcu_down(qa, dqa, qd * sizeof(float));
    tcu_down(qb, dqb, qd * sizeof(float));
    tcu_down(hpa, pa, pool_bytes);
    tcu_down(hpb, pb, pool_bytes);
    int64_t bad = -1;
    for (int64_t i = 0; i < qd && bad < 0; i++)
        if (memcmp(&qa[i], &qb[i], 4))
            bad = i;
    ck_assert_msg(bad < 0, "%s: q[%lld] %g against the RoPE kernel's %g", name, (long long)bad, bad < 0 ? 0.0 : qb[bad],
                  bad < 0 ? 0.0 : qa[bad]);
    size_t pbad = pool_bytes;
    for (size_t i = 0; i < pool_bytes && pbad == pool_bytes; i++)
        if (hpa[i] != hpb[i])
            pbad = i;
    ck_assert_msg(pbad == pool_bytes, "%s: pool byte %zu differs from the RoPE kernel's", name, pbad);
    /* the place was written (or, with none, nothing was) */
    bool placed = seq >= 0 && pos < c.stride * RL_CU_KV_BLOCK;
    ck_assert_msg((memcmp(hpb, init, pool_bytes) != 0) == placed, "%s: pool %s", name,
                  placed ? "not written" : "written without a place");
    for (int i = 0; i < np; i++)
        rl_cu_mat_free(&m[i]);
    cudaFree(pa), cudaFree(pb), cudaFree(d_bt), cudaFree(d_pos), cudaFree(d_row), cudaFree(dx), cudaFree(dg);
    cudaFree(dqkv), cudaFree(dqa), cudaFree(dqb), cudaFree(d_freq);
    free(w), free(c.bt), free(init), free(x), free(g), free(qa), free(qb), free(hpa), free(hpb);
}

START_TEST(mvb_rope_stores_what_product_then_rope_kernel_store)
{
    const rope_case cases[] = {
        {"q4_0 one matrix", 8, 64, 64, false, false, 512, {RL_TYPE_Q4_0}},
        {"q4_k|q4_k|q6_k parts, partial rotation", 8, 128, 64, false, false, 1024,
         {RL_TYPE_Q4_K, RL_TYPE_Q4_K, RL_TYPE_Q6_K}},
        {"f16 freq table", 8, 64, 64, true, false, 256, {RL_TYPE_F16}},
        {"q8_0 32 tiles a CTA", 256, 128, 128, false, false, 256, {RL_TYPE_Q8_0}},
        {"q8_0 wide (33 tiles a CTA)", 264, 128, 128, false, true, 256, {RL_TYPE_Q8_0}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_mvb_rope(&cases[i], 1, 77);  /* mid-block */
        check_mvb_rope(&cases[i], 2, 299); /* the last position */
    }
    check_mvb_rope(&cases[0], -1, 5);  /* no block-table row: q only */
    check_mvb_rope(&cases[0], 0, 320); /* past the table: q only */
}
END_TEST

/* What rl_cu_mvb_rope_kv refuses: NeoX pairs, an int8 pool, rows misplaced. */
START_TEST(mvb_rope_refuses_what_it_cannot_fuse)
{
    uint64_t s = tcu_seed("mvb rope refusals");
    pool_case c;
    make_case(&c, &s, 64, false);
    rl_cu_mat m;
    float *w = malloc(768 * 512 * sizeof(float));
    tcu_make_weight(RL_TYPE_Q4_0, 768, 512, &s, &m, w);
    rl_cu_kv kv = {.pool = w, .q8 = false};
    if (!rl_cu_mvb_ok(&m, RL_CU_MV_STORE)) {
        printf("no sm_90 device: skipping rl_cu_mvb_rope_kv's refusals\n");
    } else {
        ck_assert(rl_cu_mvb_rope_ok(&m, &c.r, &kv));
        rl_cu_rope nx = c.r;
        nx.neox = true;
        ck_assert(!rl_cu_mvb_rope_ok(&m, &nx, &kv));
        kv.q8 = true;
        ck_assert(!rl_cu_mvb_rope_ok(&m, &c.r, &kv));
        size_t pool_bytes = rl_cu_kv_block_bytes(NL, (uint32_t)c.r.n_head_kv, (uint32_t)c.r.head_dim, false) * c.n_blocks;
        void *pool = tcu_dev(pool_bytes);
        int32_t *d_bt = tcu_up(c.bt, sizeof(int32_t) * c.n_seq * c.stride), zero = 0;
        int32_t *d_i = tcu_up(&zero, sizeof zero);
        float *d = tcu_dev(768 * sizeof(float));
        rl_cu_kv dk = dev_kv(&c, pool, d_bt, false);
        rl_cu_mvb_rope rp = {&c.r, &dk, LAYER, d_i, d_i, d, 4}; /* row0 not a multiple of 8 */
        ck_assert_int_eq(rl_cu_mvb_rope_kv(&m, d, NULL, 0.0f, &rp, 0), -EINVAL);
        rp.row0 = 8; /* 768 rows from 8: past [q | k | v] */
        ck_assert_int_eq(rl_cu_mvb_rope_kv(&m, d, NULL, 0.0f, &rp, 0), -EINVAL);
        rp.row0 = 0;
        rp.layer = NL; /* no such layer */
        ck_assert_int_eq(rl_cu_mvb_rope_kv(&m, d, NULL, 0.0f, &rp, 0), -ENOTSUP);
        rp.layer = LAYER;
        dk.q8 = true;
        ck_assert_int_eq(rl_cu_mvb_rope_kv(&m, d, NULL, 0.0f, &rp, 0), -ENOTSUP);
        ck_assert_int_eq(rl_cu_mvb_rope_kv(&m, d, NULL, 0.0f, NULL, 0), -EINVAL);
        ck_assert_int_eq(cudaDeviceSynchronize(), cudaSuccess);
        cudaFree(pool), cudaFree(d_bt), cudaFree(d_i), cudaFree(d);
    }
    rl_cu_mat_free(&m);
    free(w), free(c.bt);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cuda_mvb");
    TCase *tc = tcase_create("mvb");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, mvb_streams_products_of_each_type_in_every_mode);
    tcase_add_test(tc, mvb_hands_off_in_halves);
    suite_add_tcase(s, tc);
    TCase *tr = tcase_create("rope"); /* its own case: CK_RUN_CASE=rope under the sanitizers */
    tcase_set_timeout(tr, 240);
    tcase_add_test(tr, mvb_rope_stores_what_product_then_rope_kernel_store);
    tcase_add_test(tr, mvb_rope_refuses_what_it_cannot_fuse);
    suite_add_tcase(s, tr);
    return tcu_main(s);
}

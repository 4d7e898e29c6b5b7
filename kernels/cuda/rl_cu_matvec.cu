/* rl_cu_matvec.cu - matrix-vector dispatch by weight type (kernels in rl_cu_matvec.cuh). */
#include "rl_cu_matvec.cuh"

/* Float rows whose length is not a multiple of 8 (tiny models): scalar. */
__global__ void k_matvec_scalar(const rl_cu_mat m, const rl_cu_act x, int batch, rl_cu_act y, int mode)
{
    rl_pdl_trigger();
    rl_pdl_wait();
    int lane = threadIdx.x & 31;
    int64_t n_out = mode == RL_CU_MV_GLU ? m.rows / 2 : m.rows;
    int64_t o = (int64_t)blockIdx.x * MV_WARPS + (threadIdx.x >> 5);
    if (o >= n_out)
        return;
    for (int b = 0; b < batch; b++) {
        float g = 0.0f, u = 0.0f;
        for (int64_t c = lane; c < m.cols; c += 32) {
            float xv = x.f[b * x.n + c];
            g += rl_float_elem(m, o, c) * xv;
            if (mode == RL_CU_MV_GLU)
                u += rl_float_elem(m, o + n_out, c) * xv;
        }
        g = rl_warp_sum(g);
        u = rl_warp_sum(u);
        if (lane == 0) {
            float v = mode == RL_CU_MV_GLU ? rl_silu(g) * u : g;
            float *dst = y.f + b * (y.stride ? y.stride : n_out) + o;
            *dst = mode == RL_CU_MV_ADD ? *dst + v : v;
        }
    }
}

extern "C" bool rl_cu_matvec_norm_ok(const rl_cu_mat *m)
{
    bool fl = m->type == RL_TYPE_F16 || m->type == RL_TYPE_BF16 || m->type == RL_TYPE_F32;
    return m->rows % 32 == 0 && m->rows > 0 && (rl_cu_type_q8(m->type) || (fl && m->cols % 8 == 0));
}

/* Checks, then the type's kernels; g / xn: the deferred next norm, or NULL. */
static int matvec(const rl_cu_mat *m, const rl_cu_act *x, int batch, int mode, rl_cu_act *y, cudaStream_t s,
                  const float *g, const rl_cu_act *xn)
{
    if (batch < 1 || batch > RL_CU_MAX_BATCH || x->n != m->cols || (x->stride && x->stride != x->n) ||
        (mode == RL_CU_MV_GLU && m->rows % 2))
        return -EINVAL;
    int64_t n_out = mode == RL_CU_MV_GLU ? m->rows / 2 : m->rows;
    if (y->n != n_out || (y->stride && (y->stride < n_out || mode == RL_CU_MV_GLU)))
        return -EINVAL;
    if (rl_cu_type_q8(m->type) && (x->q == NULL || x->ds == NULL))
        return -EINVAL;
    if (x->ss && x->n % 32)
        return -EINVAL;
    switch (m->type) {
    case RL_TYPE_Q4_0: rl_cu_mv_q4_0(*m, *x, batch, mode, *y, s, g, xn); break;
    case RL_TYPE_Q8_0: rl_cu_mv_q8_0(*m, *x, batch, mode, *y, s, g, xn); break;
    case RL_TYPE_Q4_K: rl_cu_mv_q4_k(*m, *x, batch, mode, *y, s, g, xn); break;
    case RL_TYPE_Q5_K: rl_cu_mv_q5_k(*m, *x, batch, mode, *y, s, g, xn); break;
    case RL_TYPE_Q6_K: rl_cu_mv_q6_k(*m, *x, batch, mode, *y, s, g, xn); break;
    case RL_TYPE_F16: case RL_TYPE_BF16: case RL_TYPE_F32:
        if (m->cols % 8) {
            if (x->ss) /* (the deferred norm needs n % 32 == 0 anyway) */
                return -EINVAL;
            rl_launch(k_matvec_scalar, dim3((unsigned)((n_out + MV_WARPS - 1) / MV_WARPS)), dim3(MV_WARPS * 32), s,
                      *m, *x, batch, *y, mode);
            if (mode == RL_CU_MV_GLU && y->q && n_out % 32 == 0) {
                int rc = RL_CU_LAUNCHED("matvec_scalar");
                return rc ? rc : rl_cu_quantize(y, batch, s);
            }
        } else if (m->type == RL_TYPE_F16) {
            rl_cu_mv_f16(*m, *x, batch, mode, *y, s, g, xn);
        } else if (m->type == RL_TYPE_BF16) {
            rl_cu_mv_bf16(*m, *x, batch, mode, *y, s, g, xn);
        } else {
            rl_cu_mv_f32(*m, *x, batch, mode, *y, s, g, xn);
        }
        break;
    default:
        return -EINVAL;
    }
    return RL_CU_LAUNCHED("matvec");
}

extern "C" int rl_cu_matvec(const rl_cu_mat *m, const rl_cu_act *x, int batch, int mode, rl_cu_act *y,
                            cudaStream_t s)
{
    return matvec(m, x, batch, mode, y, s, NULL, NULL);
}

extern "C" int rl_cu_matvec_add_norm(const rl_cu_mat *m, const rl_cu_act *x, int batch, rl_cu_act *y,
                                     const float *d_g, const rl_cu_act *xn, cudaStream_t s)
{
    if (!rl_cu_matvec_norm_ok(m))
        return -ENOTSUP;
    if (!d_g || !xn->ss || !xn->f || xn->n != m->rows || (y->stride && y->stride != y->n) || xn->ss == x->ss)
        return -EINVAL;
    return matvec(m, x, batch, RL_CU_MV_ADD, y, s, d_g, xn);
}

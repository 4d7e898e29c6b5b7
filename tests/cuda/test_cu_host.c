/* test_cu_host.c - zero copy on the GPU: a memfd region (as the daemon makes
 * for each client) registered with CUDA as mapped memory; the scatter kernels
 * write token ids through the device addresses and the host reads them after
 * the stream synchronized. Exits 77 without a GPU. */
#include <errno.h>
#include <time.h>

#include "tcu_util.h"

#include <sys/mman.h>
#include <unistd.h>

#define REGION (2u << 20)

static void *memfd_region(int *fd)
{
    *fd = memfd_create("rl-cu-host-test", MFD_CLOEXEC);
    ck_assert_int_ge(*fd, 0);
    ck_assert_int_eq(ftruncate(*fd, REGION), 0);
    void *p = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
    ck_assert(p != MAP_FAILED);
    memset(p, 0x5A, REGION);
    return p;
}

/* A second mapping of the same memfd: what the client process sees. */
static int32_t *client_view(int fd)
{
    void *p = mmap(NULL, REGION, PROT_READ, MAP_SHARED, fd, 0);
    ck_assert(p != MAP_FAILED);
    return p;
}

START_TEST(scatter_writes_ids_where_the_client_reads_them)
{
    int fd;
    char *base = memfd_region(&fd);
    const int32_t *view = client_view(fd);
    rl_cu_hostmap *hm;
    ck_assert_int_eq(rl_cu_hostmap_new(&hm), 0);
    CU_OK(rl_cu_host_register(hm, base, REGION));
    int32_t tok[RL_CU_MAX_BATCH];
    uint64_t dst[RL_CU_MAX_BATCH];
    size_t off[RL_CU_MAX_BATCH];
    for (int i = 0; i < RL_CU_MAX_BATCH; i++) {
        tok[i] = 1000 + 37 * i;
        off[i] = (size_t)(REGION - 4096) + 128u * (size_t)i; /* cells near the end */
        dst[i] = i == 3 ? 0 : rl_cu_host_dev_ptr(hm, base + off[i], 4); /* 3: skipped */
        if (i != 3)
            ck_assert(dst[i] != 0);
    }
    int32_t *d_tok = tcu_up(tok, sizeof tok);
    uint64_t *d_dst = tcu_up(dst, sizeof dst);
    cudaStream_t s;
    ck_assert(cudaStreamCreate(&s) == cudaSuccess);
    CU_OK(rl_cu_scatter_tokens(d_tok, d_dst, RL_CU_MAX_BATCH, s));
    ck_assert(cudaStreamSynchronize(s) == cudaSuccess);
    for (int i = 0; i < RL_CU_MAX_BATCH; i++)
        ck_assert_int_eq(view[off[i] / 4], i == 3 ? 0x5A5A5A5A : tok[i]);
    /* by-value variant, other ids */
    rl_cu_tok_dst v = {{0}};
    for (int i = 0; i < RL_CU_MAX_BATCH; i++) {
        tok[i] = -7 - i;
        v.p[i] = dst[i];
    }
    ck_assert(cudaMemcpy(d_tok, tok, sizeof tok, cudaMemcpyHostToDevice) == cudaSuccess);
    CU_OK(rl_cu_scatter_tokens_v(d_tok, &v, 5, s)); /* only the first 5 */
    ck_assert(cudaStreamSynchronize(s) == cudaSuccess);
    for (int i = 0; i < RL_CU_MAX_BATCH; i++) {
        int32_t want = i == 3 ? 0x5A5A5A5A : i < 5 ? tok[i] : 1000 + 37 * i;
        ck_assert_int_eq(view[off[i] / 4], want);
    }
    CU_OK(rl_cu_host_unregister(hm, base));
    ck_assert_uint_eq(rl_cu_host_dev_ptr(hm, base + off[0], 4), 0);
    rl_cu_hostmap_free(hm);
    cudaFree(d_tok);
    cudaFree(d_dst);
    cudaStreamDestroy(s);
    munmap((void *)view, REGION);
    munmap(base, REGION);
    close(fd);
}
END_TEST

START_TEST(scatter_in_a_captured_graph_writes_on_each_replay)
{
    int fd;
    char *base = memfd_region(&fd);
    rl_cu_hostmap *hm;
    ck_assert_int_eq(rl_cu_hostmap_new(&hm), 0);
    CU_OK(rl_cu_host_register(hm, base, REGION));
    uint64_t dst[2] = {rl_cu_host_dev_ptr(hm, base + 64, 4), rl_cu_host_dev_ptr(hm, base + 128, 4)};
    int32_t tok[2] = {11, 22};
    int32_t *d_tok = tcu_up(tok, sizeof tok);
    uint64_t *d_dst = tcu_up(dst, sizeof dst);
    cudaStream_t s;
    ck_assert(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess);
    cudaGraph_t g;
    cudaGraphExec_t ge;
    ck_assert(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
    CU_OK(rl_cu_scatter_tokens(d_tok, d_dst, 2, s));
    ck_assert(cudaStreamEndCapture(s, &g) == cudaSuccess);
    ck_assert(cudaGraphInstantiate(&ge, g, 0) == cudaSuccess);
    for (int rep = 0; rep < 3; rep++) {
        tok[0] = 100 * rep + 1;
        tok[1] = 100 * rep + 2;
        ck_assert(cudaMemcpyAsync(d_tok, tok, sizeof tok, cudaMemcpyHostToDevice, s) == cudaSuccess);
        ck_assert(cudaGraphLaunch(ge, s) == cudaSuccess);
        ck_assert(cudaStreamSynchronize(s) == cudaSuccess);
        ck_assert_int_eq(((int32_t *)base)[16], tok[0]);
        ck_assert_int_eq(((int32_t *)base)[32], tok[1]);
    }
    cudaGraphExecDestroy(ge);
    cudaGraphDestroy(g);
    rl_cu_hostmap_free(hm); /* unregisters what is left */
    cudaFree(d_tok);
    cudaFree(d_dst);
    cudaStreamDestroy(s);
    munmap(base, REGION);
    close(fd);
}
END_TEST

START_TEST(register_refuses_overlaps_and_unknown_unregisters)
{
    int fd;
    char *base = memfd_region(&fd);
    rl_cu_hostmap *hm;
    ck_assert_int_eq(rl_cu_hostmap_new(&hm), 0);
    CU_OK(rl_cu_host_register(hm, base, REGION / 2));
    ck_assert_int_eq(rl_cu_host_register(hm, base, REGION / 2), -EEXIST);
    ck_assert_int_eq(rl_cu_host_unregister(hm, base + 4096), -ENOENT);
    ck_assert_uint_eq(rl_cu_host_dev_ptr(hm, base + REGION / 2 - 2, 4), 0); /* straddles the end */
    CU_OK(rl_cu_host_register(hm, base + REGION / 2, REGION / 2)); /* the rest: disjoint */
    CU_OK(rl_cu_host_unregister(hm, base));
    CU_OK(rl_cu_host_unregister(hm, base + REGION / 2));
    rl_cu_hostmap_free(hm);
    munmap(base, REGION);
    close(fd);
}
END_TEST

/* A mapping the device may not write (read-only) or RL_CU_ZEROCOPY=0: the
 * registration is refused, nothing is left registered, and no CUDA error is
 * left behind for the next launch check. */
START_TEST(refused_registration_leaves_no_error_behind)
{
    int fd;
    char *base = memfd_region(&fd);
    void *ro = mmap(NULL, REGION, PROT_READ, MAP_SHARED, fd, 0);
    ck_assert(ro != MAP_FAILED);
    rl_cu_hostmap *hm;
    ck_assert_int_eq(rl_cu_hostmap_new(&hm), 0);
    int rc = rl_cu_host_register(hm, ro, REGION);
    if (rc == 0) { /* this driver pins read-only pages: then it must unregister cleanly */
        fprintf(stderr, "note: read-only memory was registered\n");
        CU_OK(rl_cu_host_unregister(hm, ro));
    } else {
        ck_assert_int_eq(rc, -EIO);
    }
    ck_assert_uint_eq(rl_cu_host_dev_ptr(hm, ro, 4), 0);
    ck_assert_int_eq(cudaGetLastError(), cudaSuccess);
    setenv("RL_CU_ZEROCOPY", "0", 1);
    ck_assert_int_eq(rl_cu_host_register(hm, base, REGION), -ENOTSUP);
    unsetenv("RL_CU_ZEROCOPY");
    ck_assert_uint_eq(rl_cu_host_dev_ptr(hm, base, 4), 0);
    rl_cu_hostmap_free(hm);
    munmap(ro, REGION);
    munmap(base, REGION);
    close(fd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cuda_host");
    TCase *tc = tcase_create("host");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, scatter_writes_ids_where_the_client_reads_them);
    tcase_add_test(tc, scatter_in_a_captured_graph_writes_on_each_replay);
    tcase_add_test(tc, register_refuses_overlaps_and_unknown_unregisters);
    tcase_add_test(tc, refused_registration_leaves_no_error_behind);
    suite_add_tcase(s, tc);
    return tcu_main(s);
}

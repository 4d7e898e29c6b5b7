/* test_cu_zerocopy.c - the CUDA engine writes token ids through
 * rl_step_item.tok_dst into a mapped client region (memfd, as the daemon's):
 * greedy decode from the GPU, sampled and first tokens from the host; a
 * tok_dst outside any mapped region still gets the id. Exits 77 without a GPU;
 * skips with a message when ../shared is missing. */
#include <errno.h>
#include <time.h>

#include "tcu_util.h"

#include "rl_engine_cuda.h"

#include <sys/mman.h>
#include <unistd.h>

#define REGION (1u << 20)
#define SENTINEL 0x7F7F7F7F

static char model_path[1024];

static bool have_model(void)
{
    return tcu_shared_model(model_path, sizeof model_path);
}

START_TEST(engine_writes_each_sampled_id_where_the_client_reads_it)
{
    if (!have_model()) {
        printf("stories260K.gguf not found (RL_SHARED_DIR): skipping\n");
        return;
    }
    char err[256] = "";
    rl_engine *e;
    ck_assert_msg(rl_engine_cuda_create(model_path, 1, &e, err, sizeof err) == 0, "%s", err);
    ck_assert_ptr_nonnull(e->ops->map_region);
    int fd = memfd_create("rl-cu-zc-test", MFD_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, REGION), 0);
    char *base = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    const int32_t *view = mmap(NULL, REGION, PROT_READ, MAP_SHARED, fd, 0); /* the client's */
    ck_assert(base != MAP_FAILED && view != MAP_FAILED);
    ck_assert_int_eq(e->ops->map_region(e, base, REGION), 0);

    int32_t prompt[64];
    int np = e->ops->tokenize(e, "Once upon a time", 16, true, false, prompt, 64);
    ck_assert_int_gt(np, 0);
    rl_sampling greedy = {.temperature = 0, .top_p = 1, .repeat_penalty = 1};
    rl_sampling hot = {.temperature = 0.9f, .top_k = 40, .top_p = 0.95f, .repeat_penalty = 1, .seed = 7};
    rl_seq_desc d0 = {.prompt = prompt, .n_prompt = (uint32_t)np, .max_tokens = 40, .sampling = greedy};
    rl_seq_desc d1 = d0, d2 = d0;
    d1.sampling = hot;
    rl_seq *s[3];
    ck_assert_int_eq(e->ops->seq_new(e, &d0, &s[0]), 0); /* greedy: the GPU writes */
    ck_assert_int_eq(e->ops->seq_new(e, &d1, &s[1]), 0); /* sampled: the host writes */
    ck_assert_int_eq(e->ops->seq_new(e, &d2, &s[2]), 0); /* greedy, tok_dst not mapped */
    int32_t unmapped = SENTINEL;
    size_t off[2] = {REGION - 4096, REGION - 4096 + 128};
    int produced[3] = {0};
    for (int step = 0; step < 30; step++) {
        ((int32_t *)base)[off[0] / 4] = SENTINEL;
        ((int32_t *)base)[off[1] / 4] = SENTINEL;
        unmapped = SENTINEL;
        rl_step_item it[3] = {{.seq = s[0], .tok_dst = (int32_t *)(base + off[0])},
                              {.seq = s[1], .tok_dst = (int32_t *)(base + off[1])},
                              {.seq = s[2], .tok_dst = &unmapped}};
        ck_assert_int_eq(e->ops->step(e, it, 3), 0);
        for (int i = 0; i < 3; i++) {
            ck_assert_int_eq(it[i].status, 0);
            int32_t seen = i < 2 ? view[off[i] / 4] : unmapped;
            ck_assert_int_eq(seen, it[i].token >= 0 ? it[i].token : SENTINEL);
            produced[i] += it[i].token >= 0;
        }
    }
    for (int i = 0; i < 3; i++)
        ck_assert_int_gt(produced[i], 10); /* prefill, then decode steps */
    for (int i = 0; i < 3; i++)
        e->ops->seq_free(e, s[i]);
    e->ops->unmap_region(e, base);
    e->ops->destroy(e);
    munmap((void *)view, REGION);
    munmap(base, REGION);
    close(fd);
}
END_TEST

/* A region left mapped is unregistered by destroy (munmap afterwards is safe). */
START_TEST(destroy_unregisters_regions_left_mapped)
{
    if (!have_model()) {
        printf("stories260K.gguf not found (RL_SHARED_DIR): skipping\n");
        return;
    }
    char err[256] = "";
    rl_engine *e;
    ck_assert_msg(rl_engine_cuda_create(model_path, 1, &e, err, sizeof err) == 0, "%s", err);
    char *base = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert(base != MAP_FAILED);
    ck_assert_int_eq(e->ops->map_region(e, base, REGION), 0);
    ck_assert_int_eq(e->ops->map_region(e, base, REGION), -EEXIST);
    e->ops->destroy(e);
    /* unregistered: CUDA can register it again */
    ck_assert_int_eq(cudaHostRegister(base, REGION, cudaHostRegisterMapped), cudaSuccess);
    ck_assert_int_eq(cudaHostUnregister(base), cudaSuccess);
    munmap(base, REGION);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cuda_zerocopy");
    TCase *tc = tcase_create("engine");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, engine_writes_each_sampled_id_where_the_client_reads_it);
    tcase_add_test(tc, destroy_unregisters_regions_left_mapped);
    suite_add_tcase(s, tc);
    return tcu_main(s);
}

/* rl_cu_hosttab.h - host ranges registered with CUDA and their device
 * addresses: a sorted table, looked up by binary search. Plain C without CUDA
 * (tested on the CPU); rl_cu_host.cu keeps one per engine. Not thread-safe:
 * the owner serializes (the engine's thread). */
#ifndef RL_CU_HOSTTAB_H
#define RL_CU_HOSTTAB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rl_cu_hosttab_ent {
    uintptr_t host; /* first byte of the range */
    size_t len;     /* > 0 */
    uint64_t dev;   /* device address of host */
} rl_cu_hosttab_ent;

typedef struct rl_cu_hosttab {
    rl_cu_hosttab_ent *e; /* sorted by host, ranges disjoint */
    uint32_t n, cap;
} rl_cu_hosttab;

/* Add [host, host+len) -> dev. Returns 0, -EINVAL (len 0, NULL, wraps, dev 0
 * or dev + len wraps), -EEXIST (overlaps a range), -ENOMEM. */
int rl_cu_hosttab_add(rl_cu_hosttab *t, const void *host, size_t len, uint64_t dev);
/* Remove the range starting at host (copied to *out when out != NULL).
 * Returns 0 or -ENOENT. */
int rl_cu_hosttab_del(rl_cu_hosttab *t, const void *host, rl_cu_hosttab_ent *out);
/* Device address of p when [p, p+len) lies inside one range; else 0. */
uint64_t rl_cu_hosttab_dev(const rl_cu_hosttab *t, const void *p, size_t len);
void rl_cu_hosttab_free(rl_cu_hosttab *t);

#ifdef __cplusplus
}
#endif

#endif

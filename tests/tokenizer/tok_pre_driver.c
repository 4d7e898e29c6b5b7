/* tok_pre_driver.c - runs the pre-tokenizers for pre_regex_diff.py (not a test by
 * itself). stdin: records {u32 rule set, u32 length, bytes}; stdout: for each record
 * the words as {u64 start, u64 length}, ended by two UINT64_MAX. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rl_tok_internal.h"
static int emit(void *ctx, size_t start, size_t len) { (void)ctx; fwrite(&start, 8, 1, stdout); fwrite(&len, 8, 1, stdout); return 0; }
int main(void)
{
    uint32_t pre, len;
    while (fread(&pre, 4, 1, stdin) == 1 && fread(&len, 4, 1, stdin) == 1) {
        char *b = malloc(len + 1); if (fread(b, 1, len, stdin) != len) return 1;
        rl_tok_pretokenize((rl_tok_pre)pre, b, len, emit, NULL);
        size_t end = (size_t)-1; fwrite(&end, 8, 1, stdout); fwrite(&end, 8, 1, stdout);
        free(b);
    }
    return 0;
}

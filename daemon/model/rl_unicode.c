/* rl_unicode.c - strict UTF-8 and character-class lookups over the generated table. */
#include "rl_unicode.h"

uint32_t rl_unicode_flags(uint32_t cp)
{
    if (cp > 0x10FFFF)
        return 0;
    /* Largest entry whose first codepoint is <= cp (entry 0 starts at U+0000). */
    uint32_t lo = 0, hi = rl_unicode_n_ranges;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if ((rl_unicode_ranges[mid] >> 8) <= cp)
            lo = mid;
        else
            hi = mid;
    }
    return rl_unicode_ranges[lo] & 0xFF;
}

int rl_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp, int *incomplete)
{
    if (incomplete)
        *incomplete = 0;
    uint8_t b0 = s[0];
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    int len;
    uint32_t v;
    uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        len = 2; v = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        len = 3; v = b0 & 0x0F;
        if (b0 == 0xE0) lo = 0xA0;       /* no overlong forms */
        if (b0 == 0xED) hi = 0x9F;       /* no surrogates */
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        len = 4; v = b0 & 0x07;
        if (b0 == 0xF0) lo = 0x90;
        if (b0 == 0xF4) hi = 0x8F;       /* nothing above U+10FFFF */
    } else {
        *cp = 0xFFFD;
        return -1;
    }
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n) {
            if (incomplete)
                *incomplete = 1;
            *cp = 0xFFFD;
            return -i;
        }
        uint8_t b = s[i];
        uint8_t l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (b < l || b > h) {
            *cp = 0xFFFD;
            return -i;
        }
        v = (v << 6) | (b & 0x3F);
    }
    *cp = v;
    return len;
}

int rl_utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* fuzz_util.c - the helpers of fuzz.h that every target links. */
#include "fuzz.h"

int fuzz_utf8_valid(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        size_t k;
        unsigned char lo = 0x80, hi = 0xbf;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            k = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
            if (c == 0xe0)
                lo = 0xa0;
            if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
            if (c == 0xf0)
                lo = 0x90;
            if (c == 0xf4)
                hi = 0x8f;
        } else {
            return 0;
        }
        if (n - i <= k || p[i + 1] < lo || p[i + 1] > hi)
            return 0;
        for (size_t j = 2; j <= k; j++)
            if ((p[i + j] & 0xc0) != 0x80)
                return 0;
        i += k + 1;
    }
    return 1;
}

void chunker_init(struct chunker *ch, uint8_t seed)
{
    static const size_t maxes[] = {1, 2, 3, 5, 8, 17, 64, 100,
                                   256, 1000, 1500, 4096, 9000, 16384,
                                   65536, 1 << 20};
    ch->state = 0x9e3779b9u ^ seed;
    ch->max = seed ? maxes[seed & 15] : 0;
}

size_t chunker_next(struct chunker *ch, size_t left)
{
    if (!ch->max || left == 0)
        return left;
    /* xorshift32: cheap and the same on every run. */
    ch->state ^= ch->state << 13;
    ch->state ^= ch->state >> 17;
    ch->state ^= ch->state << 5;
    size_t n = 1 + ch->state % ch->max;
    return n < left ? n : left;
}

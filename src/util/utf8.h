/* utf8.h - where well-formed UTF-8 ends, for code that must not pass on
 * anything else (log lines, WebSocket close reasons).
 *
 * Pure and header-only: no allocation, no locale. */
#ifndef UTF8_H
#define UTF8_H
#include <stddef.h>

/* Length (1 to 4) of the well-formed UTF-8 sequence at s, reading at most
 * n bytes, or 0 if there is none (RFC 3629 4: no overlong forms, no
 * surrogates, nothing above U+10FFFF, no sequence cut by the end). */
static inline size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char c, lo = 0x80, hi = 0xbf;
    size_t len;
    if (!n)
        return 0;
    c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4;
    else
        return 0;
    if (n < len)
        return 0;
    /* The second byte's range is narrower after E0, ED, F0 and F4. */
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

/* 1 if the n bytes at s are all well-formed UTF-8, else 0. */
static inline int utf8_valid(const void *s, size_t n)
{
    const unsigned char *p = s;
    while (n) {
        size_t k = utf8_seq_len(p, n);
        if (!k)
            return 0;
        p += k;
        n -= k;
    }
    return 1;
}

/* Bytes of the longest prefix of the NUL-terminated, well-formed UTF-8
 * string s that is at most max bytes and ends on a character boundary:
 * for quoting a client's text back in a reason that must stay UTF-8. */
static inline int utf8_prefix(const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0, left = 0;
    while (p[left])
        left++;
    while (n < max) {
        size_t k = utf8_seq_len(p + n, left - n);
        if (!k || n + k > max)
            break;
        n += k;
    }
    return (int)n;
}
#endif

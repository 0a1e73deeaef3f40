/*
 * The only C library the runtime needs: memset and memcpy (and the ARM EABI
 * aliases it calls). No malloc anywhere: the firmware links -nostdlib and the
 * build fails if nm finds an allocator. Compile with -ffreestanding
 * -fno-builtin (and, with GCC, -fno-tree-loop-distribute-patterns) so the
 * compiler does not turn these loops back into calls to themselves.
 */
#include <stddef.h>
#include <stdint.h>

void *memset(void *dest, int c, size_t n) {
    unsigned char *d = dest;
    unsigned char b = (unsigned char)c;
    while (n && ((uintptr_t)d & 3u)) { *d++ = b; n--; }
    uint32_t w = b * 0x01010101u;
    uint32_t *dw = (uint32_t *)(void *)d;
    while (n >= 16) { dw[0] = w; dw[1] = w; dw[2] = w; dw[3] = w; dw += 4; n -= 16; }
    while (n >= 4) { *dw++ = w; n -= 4; }
    d = (unsigned char *)dw;
    while (n--) *d++ = b;
    return dest;
}

void *memcpy(void *dest, const void *src, size_t n) {
    unsigned char *d = dest;
    const unsigned char *s = src;
    if ((((uintptr_t)d ^ (uintptr_t)s) & 3u) == 0) {
        while (n && ((uintptr_t)d & 3u)) { *d++ = *s++; n--; }
        uint32_t *dw = (uint32_t *)(void *)d;
        const uint32_t *sw = (const uint32_t *)(const void *)s;
        while (n >= 16) { dw[0] = sw[0]; dw[1] = sw[1]; dw[2] = sw[2]; dw[3] = sw[3]; dw += 4; sw += 4; n -= 16; }
        while (n >= 4) { *dw++ = *sw++; n -= 4; }
        d = (unsigned char *)dw;
        s = (const unsigned char *)sw;
    }
    while (n--) *d++ = *s++;
    return dest;
}

#if defined(__ARM_EABI__)
/* ARM run-time ABI helpers (note the argument order of __aeabi_memset is not memset's; unused). */
void __aeabi_memclr(void *d, size_t n) { memset(d, 0, n); }
void __aeabi_memclr4(void *d, size_t n) { memset(d, 0, n); }
void __aeabi_memclr8(void *d, size_t n) { memset(d, 0, n); }
void __aeabi_memcpy(void *d, const void *s, size_t n) { memcpy(d, s, n); }
void __aeabi_memcpy4(void *d, const void *s, size_t n) { memcpy(d, s, n); }
void __aeabi_memcpy8(void *d, const void *s, size_t n) { memcpy(d, s, n); }
#endif

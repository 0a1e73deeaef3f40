/*
 * Inner loops of the runtime that have an optimized twin: plain C everywhere,
 * and on cores with the DSP extension (Cortex-M4/M7/M33: __ARM_FEATURE_DSP) a
 * version with dual 16-bit multiply-accumulates (SMLAD) through ACLE
 * intrinsics. Both compute the same wrapping int32 sum, bit for bit; the
 * firmware tests under QEMU check the DSP twin against the NumPy reference.
 * Imported by the Swift runtime (module CSDKernels); static inline, so each
 * build compiles the variant its target selects.
 */
#ifndef CSD_KERNELS_H
#define CSD_KERNELS_H

#include <stdint.h>

#if defined(__ARM_FEATURE_DSP) && !defined(CSD_PLAIN_KERNELS)
#include <arm_acle.h>
#define CSD_KERNELS_DSP 1
#else
#define CSD_KERNELS_DSP 0
#endif

static inline uint32_t csd_load32(const void *p) {
    uint32_t v;
    __builtin_memcpy(&v, p, 4);  /* one LDR: unaligned loads are allowed on these cores */
    return v;
}

/* sum_i w[i] * x[i], int8 weights, uint8 counts, wrapping int32. */
static inline int32_t csd_dot_s8_u8(const int8_t *w, const uint8_t *x, int32_t n) {
    uint32_t acc = 0;
    int32_t i = 0;
#if CSD_KERNELS_DSP
    for (; i + 4 <= n; i += 4) {
        uint32_t wv = csd_load32(w + i), xv = csd_load32(x + i);
        acc = (uint32_t)__smlad((int16x2_t)__sxtb16(wv), (int16x2_t)__uxtb16(xv), (int32_t)acc);
        acc = (uint32_t)__smlad((int16x2_t)__sxtb16(__ror(wv, 8)), (int16x2_t)__uxtb16(__ror(xv, 8)), (int32_t)acc);
    }
#endif
    for (; i < n; i++) acc += (uint32_t)((int32_t)w[i] * (int32_t)x[i]);
    return (int32_t)acc;
}

/* sum_i w[i] * x[i], int16 weights (stream writers), uint8 counts, wrapping int32. */
static inline int32_t csd_dot_s16_u8(const int16_t *w, const uint8_t *x, int32_t n) {
    uint32_t acc = 0;
    int32_t i = 0;
#if CSD_KERNELS_DSP
    for (; i + 4 <= n; i += 4) {
        uint32_t w01 = csd_load32(w + i), w23 = csd_load32(w + i + 2), xv = csd_load32(x + i);
        uint32_t w02 = (w01 & 0xFFFFu) | (w23 << 16), w13 = (w01 >> 16) | (w23 & 0xFFFF0000u);
        acc = (uint32_t)__smlad((int16x2_t)w02, (int16x2_t)__uxtb16(xv), (int32_t)acc);
        acc = (uint32_t)__smlad((int16x2_t)w13, (int16x2_t)__uxtb16(__ror(xv, 8)), (int32_t)acc);
    }
#endif
    for (; i < n; i++) acc += (uint32_t)((int32_t)w[i] * (int32_t)x[i]);
    return (int32_t)acc;
}

/* sum_i a[i] * b[i], two uint8 count vectors (attention scores), wrapping int32. */
static inline int32_t csd_dot_u8_u8(const uint8_t *a, const uint8_t *b, int32_t n) {
    uint32_t acc = 0;
    int32_t i = 0;
#if CSD_KERNELS_DSP
    for (; i + 4 <= n; i += 4) {
        uint32_t av = csd_load32(a + i), bv = csd_load32(b + i);
        acc = (uint32_t)__smlad((int16x2_t)__uxtb16(av), (int16x2_t)__uxtb16(bv), (int32_t)acc);
        acc = (uint32_t)__smlad((int16x2_t)__uxtb16(__ror(av, 8)), (int16x2_t)__uxtb16(__ror(bv, 8)), (int32_t)acc);
    }
#endif
    for (; i < n; i++) acc += (uint32_t)a[i] * (uint32_t)b[i];
    return (int32_t)acc;
}

#endif

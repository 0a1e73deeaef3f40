/*
 * What the Swift runtime cannot say in Swift (module CSDMachine): which core
 * the build is for, one-line wrappers of ACLE intrinsics, and a division
 * without Swift's trap paths. The kernels themselves are Embedded Swift
 * (Sources/CSDRuntime/Kernels); the Cortex-M4 assembly twins of two of them
 * are in csd_block_m4.h and csd_event_m4.h.
 *
 * CSD_KERNELS_DSP is 1 on cores with the DSP extension (Cortex-M4/M7/M33:
 * __ARM_FEATURE_DSP) unless CSD_PLAIN_KERNELS is defined. Swift reads it as a
 * constant, so `if CSD_KERNELS_DSP != 0 { twin } else { Swift loop }` folds at
 * compile time: the optimized variant beside the portable one, chosen at
 * build time (the CMSIS-NN arrangement). On other cores the wrappers below
 * are the same one-line operations in plain C.
 */
#ifndef CSD_MACHINE_H
#define CSD_MACHINE_H

#include <stdint.h>

#if defined(__ARM_FEATURE_DSP) && !defined(CSD_PLAIN_KERNELS)
#include <arm_acle.h>
#define CSD_KERNELS_DSP 1
#else
#define CSD_KERNELS_DSP 0
#endif

/* a / b for b >= 1 (validated thresholds and shapes): one SDIV. Swift's `/` checks zero and overflow
 * (compares and a trap); truncating division is what the kernels specify. */
static inline int32_t csd_quot(int32_t a, int32_t b) { return a / b; }

#if CSD_KERNELS_DSP
/* clip(x, 0, 255): USAT #8 */
static inline uint32_t csd_usat8(int32_t x) { return (uint32_t)__usat(x, 8); }
/* bytes 0 and 2 of x zero-extended into halfwords: UXTB16 */
static inline uint32_t csd_uxtb16(uint32_t x) { return __uxtb16(x); }
#else
static inline uint32_t csd_usat8(int32_t x) { return x < 0 ? 0u : x > 255 ? 255u : (uint32_t)x; }
static inline uint32_t csd_uxtb16(uint32_t x) { return x & 0x00FF00FFu; }
#endif

#endif

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

/*
 * x86-64 hosts (the packer's verify, the host library): the x86-64 twins
 * (Kernels/...X86.swift) multiply 32 bytes (counts against int8 weights,
 * PMADDUBSW) or sixteen int16 lanes (PMADDWD) per instruction, and compute
 * neurons eight at a time. CSD_KERNELS_X86 is 1 on x86-64 unless
 * CSD_PLAIN_KERNELS is defined. The wrappers below are single AVX2
 * instructions where the build enables AVX2 (-mavx2, with Swift's -target-cpu
 * so that they inline), else the same operations on SSE2 halves (every
 * x86-64). Swift imports the vector types as SIMD16<Int16>, SIMD8<Int32> and
 * so on; it has no multiply-add of pairs, and its generic lane conversions do
 * not compile to one instruction.
 */
#if defined(__x86_64__) && defined(__SSE2__)
#include <immintrin.h>
/* 256-bit vectors pass through these static inline wrappers only, inlined: no calling convention to keep */
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wpsabi"
#if !defined(CSD_PLAIN_KERNELS)
#define CSD_KERNELS_X86 1
#else
#define CSD_KERNELS_X86 0
#endif
typedef int8_t csd_i8x4 __attribute__((ext_vector_type(4)));
typedef int8_t csd_i8x8 __attribute__((ext_vector_type(8)));
typedef int8_t csd_i8x16 __attribute__((ext_vector_type(16)));
typedef int8_t csd_i8x32 __attribute__((ext_vector_type(32)));
typedef uint8_t csd_u8x8 __attribute__((ext_vector_type(8)));
typedef uint8_t csd_u8x16 __attribute__((ext_vector_type(16)));
typedef uint8_t csd_u8x32 __attribute__((ext_vector_type(32)));
typedef int16_t csd_i16x4 __attribute__((ext_vector_type(4)));
typedef int16_t csd_i16x8 __attribute__((ext_vector_type(8)));
typedef int16_t csd_i16x16 __attribute__((ext_vector_type(16)));
typedef int32_t csd_i32x4 __attribute__((ext_vector_type(4)));
typedef int32_t csd_i32x8 __attribute__((ext_vector_type(8)));
typedef uint16_t csd_u16x8 __attribute__((ext_vector_type(8)));
typedef uint32_t csd_u32x8 __attribute__((ext_vector_type(8)));

/* lane i: a[2i] * b[2i] + a[2i+1] * b[2i+1], wrapping int32 (VPMADDWD) */
#if defined(__AVX2__)
static inline csd_i32x8 csd_madd_i16x16(csd_i16x16 a, csd_i16x16 b) { return (csd_i32x8)_mm256_madd_epi16((__m256i)a, (__m256i)b); }
#else
static inline csd_i32x8 csd_madd_i16x16(csd_i16x16 a, csd_i16x16 b) {
    csd_i32x4 lo = (csd_i32x4)_mm_madd_epi16((__m128i)a.lo, (__m128i)b.lo), hi = (csd_i32x4)_mm_madd_epi16((__m128i)a.hi, (__m128i)b.hi);
    return __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7);
}
#endif
/* lane i: a[2i] + a[2i+1] */
static inline csd_i32x4 csd_pairsum_i32x8(csd_i32x8 a) { return a.even + a.odd; }
/* lane i: x[4i] * w[4i] + ... + x[4i+3] * w[4i+3], x unsigned, w signed bytes. AVX2: VPMADDUBSW
 * (pairs into int16, saturating) then VPMADDWD by 1: exact while every pair fits int16, as it does
 * for x <= 127 (counts); the SSE2 form widens first and is exact for every x. */
#if defined(__AVX2__)
static inline csd_i32x8 csd_dot4_u8i8(csd_u8x32 x, csd_i8x32 w) {
    return (csd_i32x8)_mm256_madd_epi16(_mm256_maddubs_epi16((__m256i)x, (__m256i)w), _mm256_set1_epi16(1));
}
#else
static inline csd_i32x8 csd_dot4_u8i8(csd_u8x32 x, csd_i8x32 w) {
    csd_i32x8 lo = csd_madd_i16x16(__builtin_convertvector(x.lo, csd_i16x16), __builtin_convertvector(w.lo, csd_i16x16));
    csd_i32x8 hi = csd_madd_i16x16(__builtin_convertvector(x.hi, csd_i16x16), __builtin_convertvector(w.hi, csd_i16x16));
    return __builtin_shufflevector(csd_pairsum_i32x8(lo), csd_pairsum_i32x8(hi), 0, 1, 2, 3, 4, 5, 6, 7);
}
#endif
/* acc + csd_dot4_u8i8(x, w) and acc + csd_madd_i16x16(a, b), wrapping int32: one VPDPBUSD or VPDPWSSD
 * where the build enables AVX-VNNI (-mavxvnni) or AVX-512 VNNI with 256-bit vectors (-mavx512vnni
 * -mavx512vl), which sum the four byte products (or the two halfword products) into the int32 lane
 * without an int16 step; else the two instructions above and an add. Same sums either way. */
#if defined(__AVXVNNI__)
static inline csd_i32x8 csd_dot4acc_u8i8(csd_i32x8 acc, csd_u8x32 x, csd_i8x32 w) {
    return (csd_i32x8)_mm256_dpbusd_avx_epi32((__m256i)acc, (__m256i)x, (__m256i)w);
}
static inline csd_i32x8 csd_maddacc_i16x16(csd_i32x8 acc, csd_i16x16 a, csd_i16x16 b) {
    return (csd_i32x8)_mm256_dpwssd_avx_epi32((__m256i)acc, (__m256i)a, (__m256i)b);
}
#elif defined(__AVX512VNNI__) && defined(__AVX512VL__)
static inline csd_i32x8 csd_dot4acc_u8i8(csd_i32x8 acc, csd_u8x32 x, csd_i8x32 w) {
    return (csd_i32x8)_mm256_dpbusd_epi32((__m256i)acc, (__m256i)x, (__m256i)w);
}
static inline csd_i32x8 csd_maddacc_i16x16(csd_i32x8 acc, csd_i16x16 a, csd_i16x16 b) {
    return (csd_i32x8)_mm256_dpwssd_epi32((__m256i)acc, (__m256i)a, (__m256i)b);
}
#else
static inline csd_i32x8 csd_dot4acc_u8i8(csd_i32x8 acc, csd_u8x32 x, csd_i8x32 w) {
    return (csd_i32x8)((csd_u32x8)acc + (csd_u32x8)csd_dot4_u8i8(x, w));
}
static inline csd_i32x8 csd_maddacc_i16x16(csd_i32x8 acc, csd_i16x16 a, csd_i16x16 b) {
    return (csd_i32x8)((csd_u32x8)acc + (csd_u32x8)csd_madd_i16x16(a, b));
}
#endif
/* four int8 weights (w's bytes, little-endian) as int16 lanes, in each of the four groups of four:
 * VPMOVSXBW and VPBROADCASTQ (AVX2) */
static inline csd_i16x16 csd_bcast4_i8(int32_t w) {
    csd_i16x4 h = __builtin_convertvector(__builtin_bit_cast(csd_i8x4, w), csd_i16x4);
    return __builtin_shufflevector(h, h, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3);
}
/* four int16 weights (w's halves, little-endian) in each of the four groups of four lanes: VPBROADCASTQ */
static inline csd_i16x16 csd_bcast4_i16(int64_t w) {
    csd_i16x4 h = __builtin_bit_cast(csd_i16x4, w);
    return __builtin_shufflevector(h, h, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3);
}
/* eight int8 weights (w's bytes, little-endian) in each of the four groups of eight bytes: VPBROADCASTQ */
static inline csd_i8x32 csd_bcast8_i8(int64_t w) {
    csd_i8x8 b = __builtin_bit_cast(csd_i8x8, w);
    return __builtin_shufflevector(b, b, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7,
                                   0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7);
}
/* lane conversions and minima for the neurons' counts in floating point (`Kernels.neuronCounts`,
 * BlockDotX86.swift; the exactness argument is there): VCVTDQ2PS, VCVTTPS2DQ, MINPS (no NaN to keep),
 * VCVTDQ2PD, VCVTTPD2DQ, MINPD */
typedef double csd_f64x4 __attribute__((ext_vector_type(4)));
typedef float csd_f32x8 __attribute__((ext_vector_type(8)));
static inline csd_f32x8 csd_f32_i32x8(csd_i32x8 a) { return __builtin_convertvector(a, csd_f32x8); }
static inline csd_i32x8 csd_trunc_f32x8(csd_f32x8 a) { return __builtin_convertvector(a, csd_i32x8); }
static inline csd_f32x8 csd_min_f32x8(csd_f32x8 a, csd_f32x8 b) { return a < b ? a : b; }
static inline csd_f64x4 csd_f64_i32x4(csd_i32x4 a) { return __builtin_convertvector(a, csd_f64x4); }
static inline csd_i32x4 csd_trunc_f64x4(csd_f64x4 a) { return __builtin_convertvector(a, csd_i32x4); }
static inline csd_f64x4 csd_min_f64x4(csd_f64x4 a, csd_f64x4 b) { return a < b ? a : b; }
/* whether any lane of a exceeds b's (VPCMPGTD, VPTEST); lane maxima (VPMAXSD): Swift's mask reductions
 * and selects do not compile to these */
static inline int32_t csd_any_gt_i32x8(csd_i32x8 a, csd_i32x8 b) { return __builtin_reduce_or(a > b) != 0; }
static inline int32_t csd_any_gt_i32x4(csd_i32x4 a, csd_i32x4 b) { return __builtin_reduce_or(a > b) != 0; }
static inline csd_i32x8 csd_max_i32x8(csd_i32x8 a, csd_i32x8 b) { return __builtin_elementwise_max(a, b); }
/* four outputs' parameters spread over their rows: lanes 0-3 v[0], 4-7 v[1] (lo); v[2], v[3] (hi) (VPERMD) */
static inline csd_i32x8 csd_spread_lo_i32x8(csd_i32x4 v) { return __builtin_shufflevector(v, v, 0, 0, 0, 0, 1, 1, 1, 1); }
static inline csd_i32x8 csd_spread_hi_i32x8(csd_i32x4 v) { return __builtin_shufflevector(v, v, 2, 2, 2, 2, 3, 3, 3, 3); }
/* the pair sums of a's lanes and of b's, within each 128-bit half (VPHADDD): a0+a1, a2+a3, b0+b1,
 * b2+b3, a4+a5, a6+a7, b4+b5, b6+b7 (wrapping) */
static inline csd_i32x8 csd_hadd_i32x8(csd_i32x8 a, csd_i32x8 b) {
    csd_u32x8 x = (csd_u32x8)a, y = (csd_u32x8)b;
    return (csd_i32x8)(__builtin_shufflevector(x, y, 0, 2, 8, 10, 4, 6, 12, 14) + __builtin_shufflevector(x, y, 1, 3, 9, 11, 5, 7, 13, 15));
}
/* lane `lane` (0 ... 3, a constant where inlined) of v in all eight lanes (VPERMD or VPBROADCASTD) */
static inline csd_i32x8 csd_dup_i32x8(csd_i32x4 v, int32_t lane) {
    switch (lane & 3) {
    case 0: return __builtin_shufflevector(v, v, 0, 0, 0, 0, 0, 0, 0, 0);
    case 1: return __builtin_shufflevector(v, v, 1, 1, 1, 1, 1, 1, 1, 1);
    case 2: return __builtin_shufflevector(v, v, 2, 2, 2, 2, 2, 2, 2, 2);
    default: return __builtin_shufflevector(v, v, 3, 3, 3, 3, 3, 3, 3, 3);
    }
}
/* eight bytes of a and of b (little-endian) widened and interleaved: lane 2i a's byte i, lane 2i + 1
 * b's (the pixel conv's tap pairs: PUNPCKLBW with zero, then PUNPCKLWD/HWD) */
static inline csd_i16x16 csd_zip_u8x8(uint64_t a, uint64_t b) {
    csd_i16x8 x = __builtin_convertvector(__builtin_bit_cast(csd_u8x8, a), csd_i16x8);
    csd_i16x8 y = __builtin_convertvector(__builtin_bit_cast(csd_u8x8, b), csd_i16x8);
    return __builtin_shufflevector(x, y, 0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
}
/* the low byte of each lane (values 0 ... 255: neuron outputs) */
static inline csd_u8x8 csd_bytes_i32x8(csd_i32x8 v) { return __builtin_convertvector(v, csd_u8x8); }
/* the low bytes of a's lanes, then b's (values 0 ... 255: neuron outputs) */
static inline csd_u8x16 csd_bytes_i32x16(csd_i32x8 a, csd_i32x8 b) {
    return __builtin_shufflevector(__builtin_convertvector(a, csd_u8x8), __builtin_convertvector(b, csd_u8x8),
                                   0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
/* sixteen bytes as a 4 x 4 matrix, transposed: byte 4i + j of the result is byte 4j + i of v (PSHUFB) */
static inline csd_u8x16 csd_transpose4x4_u8(csd_u8x16 v) {
    return __builtin_shufflevector(v, v, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
}
/* the low halves of a's lanes, then b's (stream values) */
static inline csd_i16x16 csd_halves_i32x16(csd_i32x8 a, csd_i32x8 b) {
    return __builtin_shufflevector(__builtin_convertvector(a, csd_i16x8), __builtin_convertvector(b, csd_i16x8),
                                   0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
#if defined(__AVX2__)
/* four vectors of eight lanes (each 0 ... 255) as bytes, per 128-bit half: a's four lanes, b's, c's,
 * d's (VPACKUSDW, VPACKUSWB) */
static inline __m256i csd_pack4_u8(csd_i32x8 a, csd_i32x8 b, csd_i32x8 c, csd_i32x8 d) {
    return _mm256_packus_epi16(_mm256_packus_epi32((__m256i)a, (__m256i)b), _mm256_packus_epi32((__m256i)c, (__m256i)d));
}
#endif
/* four vectors of eight lanes (each 0 ... 255) as 32 bytes: byte 4i + o is lane i of the o-th
 * (a, b, c, d): each lane's four values one word apart (`csd_pack4_u8`, VPSHUFB) */
static inline csd_u8x32 csd_bytes_lanes_i32x32(csd_i32x8 a, csd_i32x8 b, csd_i32x8 c, csd_i32x8 d) {
#if defined(__AVX2__)
    /* each half: a's four lanes, b's, c's, d's; transposed to lane by lane */
    const __m256i t = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
                                       0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return (csd_u8x32)_mm256_shuffle_epi8(csd_pack4_u8(a, b, c, d), t);
#else
    return __builtin_shufflevector(csd_bytes_i32x16(a, b), csd_bytes_i32x16(c, d),
                                   0, 8, 16, 24, 1, 9, 17, 25, 2, 10, 18, 26, 3, 11, 19, 27,
                                   4, 12, 20, 28, 5, 13, 21, 29, 6, 14, 22, 30, 7, 15, 23, 31);
#endif
}
/* four vectors of eight lanes (each 0 ... 255) whose lanes hold rows 0, 1, 4, 5, 2, 3, 6, 7 (`csd_hadd_i32x8`
 * of a pair's two blocks) as 32 bytes: byte 8o + r is row r of the o-th (a, b, c, d) (`csd_pack4_u8`,
 * VPUNPCKLWD/HWD of the halves) */
static inline csd_u8x32 csd_bytes_rows_i32x32(csd_i32x8 a, csd_i32x8 b, csd_i32x8 c, csd_i32x8 d) {
#if defined(__AVX2__)
    __m256i v = csd_pack4_u8(a, b, c, d);
    __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
    return (csd_u8x32)_mm256_setr_m128i(_mm_unpacklo_epi16(lo, hi), _mm_unpackhi_epi16(lo, hi));
#else
    return __builtin_shufflevector(csd_bytes_i32x16(a, b), csd_bytes_i32x16(c, d),
                                   0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15,
                                   16, 17, 20, 21, 18, 19, 22, 23, 24, 25, 28, 29, 26, 27, 30, 31);
#endif
}
/* four vectors of eight lanes whose lanes hold rows 0, 1, 4, 5, 2, 3, 6, 7 (`csd_hadd_i32x8` of a pair's
 * two blocks), their low halves: the four halfwords of row r (a's, b's, c's, d's) are halfwords
 * 4r ... 4r + 3 (the stream writers' values, a row's four outputs adjacent) */
typedef int16_t csd_i16x32 __attribute__((ext_vector_type(32)));
static inline csd_i16x32 csd_halves_rows_i32x32(csd_i32x8 a, csd_i32x8 b, csd_i32x8 c, csd_i32x8 d) {
    return __builtin_shufflevector(csd_halves_i32x16(a, b), csd_halves_i32x16(c, d),
                                   0, 8, 16, 24, 1, 9, 17, 25, 4, 12, 20, 28, 5, 13, 21, 29,
                                   2, 10, 18, 26, 3, 11, 19, 27, 6, 14, 22, 30, 7, 15, 23, 31);
}
/* sixteen halves as a 4 x 4 matrix, transposed: lane 4i + j of the result is lane 4j + i of v */
static inline csd_i16x16 csd_transpose4x4_i16(csd_i16x16 v) {
    return __builtin_shufflevector(v, v, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
}
/* the 2x2 max-pool of sixteen bytes of two rows: lane i the largest of a[2i], a[2i + 1], b[2i], b[2i + 1]
 * (PMAXUB, then the larger byte of each halfword: PSRLW, PMAXUW, PACKUSWB) */
static inline csd_u8x8 csd_pool2_u8x16(csd_u8x16 a, csd_u8x16 b) {
    csd_u16x8 m = (csd_u16x8)__builtin_elementwise_max(a, b);
    return __builtin_convertvector(__builtin_elementwise_max(m & 0xFF, m >> 8), csd_u8x8);
}
/* the sum of eight bytes (PSADBW); of their set bits (a nibble table: PSHUFB) */
static inline uint32_t csd_sum_u8x8(csd_u8x8 v) { return __builtin_reduce_add(__builtin_convertvector(v, csd_u16x8)); }
static inline uint32_t csd_popcount_u8x8(csd_u8x8 v) { return csd_sum_u8x8(__builtin_elementwise_popcount(v)); }
/* the count path's conversions, 32 uint8 trains or counts at a time (`Kernels.trainsToCountsX86`): each
 * byte's set bits (a nibble table: PSHUFB, PSHUFB, PADDB); the sum of 32 bytes (PSADBW); each count
 * c <= 8 as the prefix train (1 << c) - 1 (a table: PSHUFB) */
typedef uint16_t csd_u16x32 __attribute__((ext_vector_type(32)));
static inline csd_u8x32 csd_popcount_u8x32(csd_u8x32 v) { return __builtin_elementwise_popcount(v); }
static inline csd_u8x16 csd_popcount_u8x16(csd_u8x16 v) { return __builtin_elementwise_popcount(v); }
#if defined(__AVX2__)
static inline uint32_t csd_sum_u8x32(csd_u8x32 v) {
    __m256i s = _mm256_sad_epu8((__m256i)v, _mm256_setzero_si256());
    return (uint32_t)(_mm256_extract_epi64(s, 0) + _mm256_extract_epi64(s, 1) + _mm256_extract_epi64(s, 2) + _mm256_extract_epi64(s, 3));
}
static inline csd_u8x32 csd_prefix_u8x32(csd_u8x32 c) {
    const __m256i table = _mm256_setr_epi8(0, 1, 3, 7, 15, 31, 63, 127, (char)255, 0, 0, 0, 0, 0, 0, 0,
                                           0, 1, 3, 7, 15, 31, 63, 127, (char)255, 0, 0, 0, 0, 0, 0, 0);
    return (csd_u8x32)_mm256_shuffle_epi8(table, (__m256i)c);
}
#else
static inline uint32_t csd_sum_u8x32(csd_u8x32 v) { return __builtin_reduce_add(__builtin_convertvector(v, csd_u16x32)); }
static inline csd_u8x32 csd_prefix_u8x32(csd_u8x32 c) {
    csd_u16x32 one = 1;
    return __builtin_convertvector((one << __builtin_convertvector(c, csd_u16x32)) - one, csd_u8x32);
}
#endif
/* the lanes' wrapping sum */
static inline int32_t csd_sum_i32x8(csd_i32x8 v) { return (int32_t)__builtin_reduce_add((csd_u32x8)v); }
#pragma clang diagnostic pop
#else
#define CSD_KERNELS_X86 0
#endif

#endif

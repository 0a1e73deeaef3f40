/*
 * Cortex-M4 twins of the inner step of the event-driven accumulation
 * (Sources/CSDRuntime/Kernels/EventAccumulation.swift, eventSynapticOps):
 * the Swift kernel walks the active-input list and each input's spikes, and
 * calls these for the column of every spike, four output channels per pass.
 * Thumb-2 assembly because the four currents of a step must go through one
 * LDM / STM (r8, r9, r10, r12), which no C or Swift compiler emits here. Declared on every target; they exist on DSP cores
 * only, elsewhere they trap if called (the Swift branch folds away).
 */
#ifndef CSD_EVENT_M4_H
#define CSD_EVENT_M4_H

#include <stdint.h>

#include "csd_machine.h"

#if CSD_KERNELS_DSP
/* One spike's column (each spike of an input's train, or a prefix train's last): for the currents at
 * `at`, four at a time up to `end` (end - at a positive multiple of 4), += the int8 (s8) or int16 (s16)
 * weights at p, p + ws, p + 2 ws, p + 3 ws (ws: the weight-row stride in bytes), then p += 4 ws.
 * Returns p. */
#define CSD_COLUMN_M4(LD)                                                                              \
    int32_t w;                                                                                         \
    __asm__ volatile("1:\n\t"                                                                         \
                     "ldmia %[at], {r8, r9, r10, r12}\n\t"                                            \
                     LD " %[w], [%[p]]\n\t"                                                           \
                     "add r8, r8, %[w]\n\t"                                                           \
                     LD " %[w], [%[p], %[ws]]\n\t"                                                    \
                     "add r9, r9, %[w]\n\t"                                                           \
                     LD " %[w], [%[p], %[ws2]]\n\t"                                                   \
                     "add r10, r10, %[w]\n\t"                                                         \
                     LD " %[w], [%[p], %[ws3]]\n\t"                                                   \
                     "add r12, r12, %[w]\n\t"                                                         \
                     "stmia %[at]!, {r8, r9, r10, r12}\n\t"                                           \
                     "add %[p], %[p], %[ws4]\n\t"                                                     \
                     "cmp %[at], %[end]\n\t"                                                          \
                     "bne 1b\n\t"                                                                     \
                     : [at] "+r"(at), [p] "+r"(p), [w] "=&r"(w)                                       \
                     : [ws] "r"(ws), [ws2] "r"(2 * ws), [ws3] "r"(3 * ws), [ws4] "r"(4 * ws), [end] "r"(end) \
                     : "r8", "r9", "r10", "r12", "cc", "memory");                                     \
    return p;

static inline const uint8_t *csd_column4_s8_m4(int32_t *at, const int32_t *end, const uint8_t *p, int32_t ws) {
    CSD_COLUMN_M4("ldrsb")
}
static inline const uint8_t *csd_column4_s16_m4(int32_t *at, const int32_t *end, const uint8_t *p, int32_t ws) {
    CSD_COLUMN_M4("ldrsh")
}
#undef CSD_COLUMN_M4
#else
static inline const uint8_t *csd_column4_s8_m4(int32_t *at, const int32_t *end, const uint8_t *p, int32_t ws) {
    (void)at, (void)end, (void)ws;
    __builtin_trap();
    return p;
}
static inline const uint8_t *csd_column4_s16_m4(int32_t *at, const int32_t *end, const uint8_t *p, int32_t ws) {
    (void)at, (void)end, (void)ws;
    __builtin_trap();
    return p;
}
#endif

#endif

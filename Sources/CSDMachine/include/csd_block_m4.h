/*
 * Cortex-M4 twins of the fused block kernels (Sources/CSDRuntime/Kernels/BlockDot.swift):
 * two Thumb-2 routines, one per pairing an image has: int8 weights into
 * neurons (csd_neurons_s8_m4: blockDotNeurons) and int16 weights, the
 * STREAM_OUT ops', into the stream (csd_stream_s16_m4: blockDotStream). Each
 * runs every output of a block: its group loop (per 16 MACs: int8 one LDR, two
 * SXTB16, two LDM and eight SMLAD; int16 one LDRD, two LDM, eight SMLAD; two
 * groups per pass, 28 and 24 instructions with the loop), an odd group and a
 * tail group for K not a multiple of 4 (its 1..3 weights loaded one by one,
 * zero above) through a single-group body, and the sink, with the four
 * accumulators in registers. The block's words go through r8, r9, r10, r12
 * (LDM needs ascending registers). The routines keep their state in a struct
 * that the Swift kernel fills (every register is taken by the group loop), at
 * the byte offsets the _Static_asserts pin. A partial block (a layer's last
 * rows) gives its absent rows the offsets of row 0 and stores row 0 last, so
 * nothing outside the real rows is read or written. Tested against the Swift
 * kernels in the Cortex-M4 firmware (Tests/Firmware/KernelCheck.swift).
 *
 * Block layout: BlockGather.swift. The structs are declared on every target
 * (the Swift branch that fills them folds away where CSD_KERNELS_DSP is 0);
 * the routines exist on DSP cores only, elsewhere they trap if called.
 */
#ifndef CSD_BLOCK_M4_H
#define CSD_BLOCK_M4_H

#include <stddef.h>
#include <stdint.h>

#include "csd_machine.h"

/* Neurons: c = clip(((acc << shift) + bias + theta / 2) / theta, 0, levels) for output j, row r, with
 * theta and bias at j * pstep (+ r * prstep), written at out + j * cstep + r * rstep as counts or
 * prefix trains (table). Four neurons LSL, ADD, SDIV, USAT each; the clip at levels on the packed
 * bytes (c - UQSUB8(c, levels)), the spikes by USADA8, one word store when the rows are adjacent bytes.
 * The routine advances theta, bias, out, spikes and outputs in the struct. */
/* The first 24 bytes of both routines' structs: one LDM starts an output (block, groups, and the four
 * accumulators from zero). */
typedef struct csd_block_start {
    const uint32_t *block;         /*  0 */
    int32_t groups;                /*  4: K / 4 */
    int32_t zero[4];               /*  8: 0 */
} csd_block_start_t;

typedef struct csd_nblock {
    csd_block_start_t start;       /*  0 */
    const int32_t *theta, *bias;   /* 24, 28 */
    int32_t tstep, shift;          /* 32, 36: tstep = 4 * pstep, bytes */
    uint8_t *out;                  /* 40 */
    int32_t cstep, words;          /* 44, 48: words 1: four rows, adjacent bytes, one word store */
    uint32_t levels4, spikes;      /* 52, 56: levels in every real row's byte, 0 in the others */
    const uint8_t *trains;         /* 60: the prefix-train table (csd_prefix_trains_m4), or 0 for counts */
    int32_t wskip, outputs;        /* 64, 68: wstride - 4 * groups; outputs >= 1 */
    const int8_t *w;               /* 72 */
    int32_t tail;                  /* 76: K % 4 */
    int32_t per_row;               /* 80: 1: a neuron per row (theta and bias at prow offsets), 0: one per output */
    int32_t row[3], prow[3];       /* 84, 96: out and theta / bias (bytes) offsets of rows 1 .. 3 from row 0;
                                    * 0 for absent rows */
} csd_nblock_t;

/* Stream (int16): x[e] = (acc + bias[i]) >> shift, or x[e] += (acc + bias[i]) >> shift (set == 0),
 * the low 16 bits stored, e = j * cstep + r * rstep, i = j * pstep + r * prstep. All four rows are
 * loaded before any is stored, row 0 last. Rows of
 * int16 weights that are not 4-aligned (K odd) take a loop of two LDRs (LDRD faults there). The
 * routine advances stream, bias and outputs in the struct. */
typedef struct csd_sblock {
    csd_block_start_t start;       /*  0 */
    int16_t *stream;               /* 24 */
    const int32_t *bias;           /* 28 */
    int32_t cstep, pstep;          /* 32, 36: bytes */
    int32_t row[3], brow[3];       /* 40, 52: stream and bias offsets of rows 1 .. 3 from row 0, bytes;
                                    * 0 for absent rows */
    int32_t set;                   /* 64 */
    int32_t wskip, outputs;        /* 68, 72: wstride - 4 * groups, bytes; outputs >= 1 */
    const int16_t *w;              /* 76 */
    int32_t tail;                  /* 80: K % 4 */
    int32_t shift;                 /* 84: the stream shift, 0 .. 24 */
} csd_sblock_t;

#if CSD_KERNELS_DSP
/* every field the routines read or write at a fixed offset */
_Static_assert(offsetof(csd_block_start_t, block) == 0, "csd_block_start_t");
_Static_assert(offsetof(csd_block_start_t, groups) == 4, "csd_block_start_t");
_Static_assert(offsetof(csd_block_start_t, zero) == 8 && sizeof(csd_block_start_t) == 24, "csd_block_start_t");
_Static_assert(offsetof(csd_nblock_t, theta) == 24 && offsetof(csd_nblock_t, bias) == 28, "csd_nblock_t");
_Static_assert(offsetof(csd_nblock_t, tstep) == 32 && offsetof(csd_nblock_t, shift) == 36, "csd_nblock_t");
_Static_assert(offsetof(csd_nblock_t, out) == 40 && offsetof(csd_nblock_t, cstep) == 44, "csd_nblock_t");
_Static_assert(offsetof(csd_nblock_t, words) == 48 && offsetof(csd_nblock_t, levels4) == 52, "csd_nblock_t");
_Static_assert(offsetof(csd_nblock_t, spikes) == 56 && offsetof(csd_nblock_t, trains) == 60, "csd_nblock_t");
_Static_assert(offsetof(csd_nblock_t, wskip) == 64 && offsetof(csd_nblock_t, outputs) == 68, "csd_nblock_t");
_Static_assert(offsetof(csd_nblock_t, w) == 72 && offsetof(csd_nblock_t, tail) == 76, "csd_nblock_t");
_Static_assert(offsetof(csd_nblock_t, per_row) == 80, "csd_nblock_t");
_Static_assert(offsetof(csd_nblock_t, row) == 84 && offsetof(csd_nblock_t, prow) == 96, "csd_nblock_t");
_Static_assert(offsetof(csd_sblock_t, stream) == 24 && offsetof(csd_sblock_t, bias) == 28, "csd_sblock_t");
_Static_assert(offsetof(csd_sblock_t, cstep) == 32 && offsetof(csd_sblock_t, pstep) == 36, "csd_sblock_t");
_Static_assert(offsetof(csd_sblock_t, row) == 40 && offsetof(csd_sblock_t, brow) == 52, "csd_sblock_t");
_Static_assert(offsetof(csd_sblock_t, set) == 64 && offsetof(csd_sblock_t, wskip) == 68, "csd_sblock_t");
_Static_assert(offsetof(csd_sblock_t, outputs) == 72 && offsetof(csd_sblock_t, w) == 76, "csd_sblock_t");
_Static_assert(offsetof(csd_sblock_t, tail) == 80 && offsetof(csd_sblock_t, shift) == 84, "csd_sblock_t");

/* The prefix train of each count, (1 << c) - 1, 0 <= c <= 16 (bytes: uint8 trains), for csd_nblock_t.trains. */
static inline const uint8_t *csd_prefix_trains_m4(void) {
    static const uint8_t trains[17] = {0, 1, 3, 7, 15, 31, 63, 127, 255, 255, 255, 255, 255, 255, 255, 255, 255};
    return trains;
}

#define CSD_SMLAD8(wa, wb)                      \
    "ldmia r2!, {r8, r9, r10, r12}\n\t"         \
    "smlad r4, " wa ", r8, r4\n\t"              \
    "smlad r4, " wb ", r9, r4\n\t"              \
    "smlad r5, " wa ", r10, r5\n\t"             \
    "smlad r5, " wb ", r12, r5\n\t"             \
    "ldmia r2!, {r8, r9, r10, r12}\n\t"         \
    "smlad r6, " wa ", r8, r6\n\t"              \
    "smlad r6, " wb ", r9, r6\n\t"              \
    "smlad r7, " wa ", r10, r7\n\t"             \
    "smlad r7, " wb ", r12, r7\n\t"

/* one group of int8 weights (in r11) against the block */
#define CSD_GROUP_S8                            \
    "sxtb16 lr, r11\n\t"                        \
    "sxtb16 r11, r11, ror #8\n\t"               \
    CSD_SMLAD8("lr", "r11")

/* the neuron of accumulator a: ((a << shift) + offset) / theta, clipped at 0 (and 255) */
#define CSD_NEURON(a)                           \
    "lsl " a ", " a ", r9\n\t"                  \
    "add " a ", " a ", r11\n\t"                 \
    "sdiv " a ", " a ", r10\n\t"                \
    "usat " a ", #8, " a "\n\t"

/* row r's neuron (r2 theta, r3 bias, the row's offset at [r0, #off]) into a */
#define CSD_NEURON_ROW(a, off)                  \
    "ldr r12, [r0, #" off "]\n\t"               \
    "ldr r10, [r2, r12]\n\t"                    \
    "ldr r11, [r3, r12]\n\t"                    \
    "add r11, r11, r10, asr #1\n\t"             \
    CSD_NEURON(a)

__attribute__((naked, noinline, unused)) static void csd_neurons_s8_m4(csd_nblock_t *b __attribute__((unused))) {
    __asm__ volatile(
        "push {r4-r11, lr}\n\t"
        "ldr r1, [r0, #72]\n"
        "1:\n\t"
        "ldmia r0, {r2, r3, r4, r5, r6, r7}\n\t" /* block, groups, accumulators 0 */
        "lsrs r3, r3, #1\n\t"                   /* pairs of groups; carry: one more */
        "bcc 21f\n\t"
        "ldr r11, [r1], #4\n\t"
        "b 6f\n"
        "21:\n\t"
        "cbz r3, 7f\n"
        "2:\n\t"
        "ldr r11, [r1], #4\n\t"
        CSD_GROUP_S8
        "ldr r11, [r1], #4\n\t"
        CSD_GROUP_S8
        "subs r3, r3, #1\n\t"
        "bne 2b\n"
        "7:\n\t"
        "ldrd r3, r12, [r0, #76]\n\t"          /* tail, per_row */
        "orrs r12, r3, r12\n\t"
        "beq 8f\n\t"                           /* no tail, a neuron per output */
        "cbz r3, 72f\n\t"
        "ldrb r11, [r1]\n\t"                    /* the tail's 1 .. 3 weights */
        "cmp r3, #2\n\t"
        "blt 71f\n\t"
        "ldrb lr, [r1, #1]\n\t"
        "orr r11, r11, lr, lsl #8\n\t"
        "beq 71f\n\t"
        "ldrb lr, [r1, #2]\n\t"
        "orr r11, r11, lr, lsl #16\n"
        "71:\n\t"
        "mov r3, #-1\n"                          /* r3 < 0: the tail group */
        "6:\n\t"                                /* one group: the odd one (r3 >= 0) or the tail */
        CSD_GROUP_S8
        "cmp r3, #0\n\t"
        "bge 21b\n"
        "72:\n\t"
        "ldr r12, [r0, #80]\n\t"              /* per_row */
        "cmp r12, #0\n\t"
        "bne 10f\n"
        "8:\n\t"
        "add r12, r0, #24\n\t"
        "ldmia r12, {r2, r3, r8, r9}\n\t"       /* theta, bias, tstep, shift */
        "ldr r10, [r2]\n\t"
        "ldr r11, [r3]\n\t"
        "add r2, r2, r8\n\t"
        "add r3, r3, r8\n\t"
        "stmia r12, {r2, r3}\n\t"
        "add r11, r11, r10, asr #1\n\t"         /* bias + theta / 2 */
        CSD_NEURON("r4")
        CSD_NEURON("r5")
        CSD_NEURON("r6")
        CSD_NEURON("r7")
        "9:\n\t"
        "orr r4, r4, r5, lsl #8\n\t"
        "orr r4, r4, r6, lsl #16\n\t"
        "orr r4, r4, r7, lsl #24\n\t"
        "add r12, r0, #40\n\t"
        "ldmia r12, {r2, r3, r8, r9, r10, r11}\n\t" /* out, cstep, words, levels4, spikes, trains */
        "uqsub8 r5, r4, r9\n\t"
        "sub r4, r4, r5\n\t"
        "movs r5, #0\n\t"
        "usada8 r10, r4, r5, r10\n\t"
        "str r10, [r0, #56]\n\t"
        "cmp r11, #0\n\t"
        "beq 3f\n\t"
        "uxtb r5, r4\n\t"                       /* prefix trains */
        "ldrb r5, [r11, r5]\n\t"
        "ubfx r6, r4, #8, #8\n\t"
        "ldrb r6, [r11, r6]\n\t"
        "ubfx r7, r4, #16, #8\n\t"
        "ldrb r7, [r11, r7]\n\t"
        "lsrs r4, r4, #24\n\t"
        "ldrb r4, [r11, r4]\n\t"
        "lsls r4, r4, #24\n\t"
        "orr r4, r4, r5\n\t"
        "orr r4, r4, r6, lsl #8\n\t"
        "orr r4, r4, r7, lsl #16\n"
        "3:\n\t"
        "cmp r8, #1\n\t"
        "bne 4f\n\t"
        "str r4, [r2]\n\t"
        "b 5f\n"
        "4:\n\t"                                /* bytes: rows 3, 2, 1, then 0 */
        "ldr r5, [r0, #84]\n\t"
        "ldrd r6, r7, [r0, #88]\n\t"
        "lsrs r8, r4, #24\n\t"
        "strb r8, [r2, r7]\n\t"
        "ubfx r8, r4, #16, #8\n\t"
        "strb r8, [r2, r6]\n\t"
        "lsrs r8, r4, #8\n\t"
        "strb r8, [r2, r5]\n\t"
        "strb r4, [r2]\n"
        "5:\n\t"
        "add r2, r2, r3\n\t"
        "str r2, [r0, #40]\n\t"
        "ldrd r3, r2, [r0, #64]\n\t"            /* wskip, outputs */
        "add r1, r1, r3\n\t"
        "subs r2, r2, #1\n\t"
        "str r2, [r0, #68]\n\t"
        "bne 1b\n\t"
        "pop {r4-r11, pc}\n"
        "10:\n\t"                               /* a neuron per row */
        "add r12, r0, #24\n\t"
        "ldmia r12, {r2, r3, r8, r9}\n\t"       /* theta, bias, tstep, shift */
        "ldr r10, [r2]\n\t"
        "ldr r11, [r3]\n\t"
        "add r11, r11, r10, asr #1\n\t"
        CSD_NEURON("r4")
        CSD_NEURON_ROW("r5", "96")
        CSD_NEURON_ROW("r6", "100")
        CSD_NEURON_ROW("r7", "104")
        "add r2, r2, r8\n\t"
        "add r3, r3, r8\n\t"
        "add r12, r0, #24\n\t"
        "stmia r12, {r2, r3}\n\t"
        "b 9b\n\t");
}

/* row acc's value: (acc + the bias at r3 + boff) >> r12 */
#define CSD_STREAM_VALUE(acc, boff)             \
    "ldr lr, [r3" boff "]\n\t"                  \
    "add " acc ", " acc ", lr\n\t"              \
    "asr " acc ", " acc ", r12\n\t"
/* with flags eq: + the int16 stream at r2 + off */
#define CSD_STREAM_ADD(acc, off)                \
    "itt eq\n\t"                                \
    "ldrsheq lr, [r2" off "]\n\t"               \
    "addeq " acc ", " acc ", lr\n\t"

__attribute__((naked, noinline, unused)) static void csd_stream_s16_m4(csd_sblock_t *b __attribute__((unused))) {
    __asm__ volatile(
        "push {r4-r11, lr}\n\t"
        "ldr r1, [r0, #76]\n"
        "1:\n\t"
        "ldmia r0, {r2, r3, r4, r5, r6, r7}\n\t" /* block, groups, accumulators 0 */
        "tst r1, #3\n\t"
        "bne 11f\n\t"
        "lsrs r3, r3, #1\n\t"                   /* pairs of groups; carry: one more */
        "bcc 21f\n\t"
        "ldrd r11, lr, [r1], #8\n\t"
        "b 6f\n"
        "21:\n\t"
        "cbz r3, 7f\n"
        "2:\n\t"
        "ldrd r11, lr, [r1], #8\n\t"
        CSD_SMLAD8("r11", "lr")
        "ldrd r11, lr, [r1], #8\n\t"
        CSD_SMLAD8("r11", "lr")
        "subs r3, r3, #1\n\t"
        "bne 2b\n"
        "7:\n\t"
        "ldr r3, [r0, #80]\n\t"
        "cbz r3, 8f\n\t"
        "ldrh r11, [r1]\n\t"                    /* the tail's 1 .. 3 weights */
        "mov lr, #0\n\t"
        "cmp r3, #2\n\t"
        "blt 71f\n\t"
        "ldrh r12, [r1, #2]\n\t"
        "orr r11, r11, r12, lsl #16\n\t"
        "beq 71f\n\t"
        "ldrh lr, [r1, #4]\n"
        "71:\n\t"
        "mov r3, #-1\n"                          /* r3 < 0: the tail group */
        "6:\n\t"                                /* one group: the odd one (r3 >= 0) or the tail */
        CSD_SMLAD8("r11", "lr")
        "cmp r3, #0\n\t"
        "bge 21b\n"
        "8:\n\t"
        "ldrd r2, r3, [r0, #24]\n\t"            /* stream, bias */
        "add r12, r0, #52\n\t"
        "ldmia r12, {r9, r10, r11}\n\t"        /* brow1 .. brow3 */
        "ldr r12, [r0, #84]\n\t"                /* shift */
        CSD_STREAM_VALUE("r4", "")
        CSD_STREAM_VALUE("r5", ", r9")
        CSD_STREAM_VALUE("r6", ", r10")
        CSD_STREAM_VALUE("r7", ", r11")
        "add r12, r0, #40\n\t"
        "ldmia r12, {r8, r9, r10}\n\t"         /* row1 .. row3 */
        "ldr r12, [r0, #64]\n\t"
        "cmp r12, #0\n\t"                       /* eq: add onto the stream (no flag changes below) */
        CSD_STREAM_ADD("r4", "")
        CSD_STREAM_ADD("r5", ", r8")
        CSD_STREAM_ADD("r6", ", r9")
        CSD_STREAM_ADD("r7", ", r10")
        "strh r7, [r2, r10]\n\t"
        "strh r6, [r2, r9]\n\t"
        "strh r5, [r2, r8]\n\t"
        "strh r4, [r2]\n\t"
        "ldrd r8, r9, [r0, #32]\n\t"            /* cstep, pstep */
        "add r2, r2, r8\n\t"
        "add r3, r3, r9\n\t"
        "strd r2, r3, [r0, #24]\n\t"
        "ldrd r3, r2, [r0, #68]\n\t"            /* wskip, outputs */
        "add r1, r1, r3\n\t"
        "subs r2, r2, #1\n\t"
        "str r2, [r0, #72]\n\t"
        "bne 1b\n\t"
        "pop {r4-r11, pc}\n"
        "11:\n\t"                               /* rows not 4-aligned: a group at a time */
        "cmp r3, #0\n\t"
        "beq 7b\n"
        "12:\n\t"
        "ldr r11, [r1], #4\n\t"
        "ldr lr, [r1], #4\n\t"
        CSD_SMLAD8("r11", "lr")
        "subs r3, r3, #1\n\t"
        "bne 12b\n\t"
        "b 7b\n\t");
}
#undef CSD_SMLAD8
#undef CSD_GROUP_S8
#undef CSD_NEURON
#undef CSD_NEURON_ROW
#undef CSD_STREAM_VALUE
#undef CSD_STREAM_ADD
#else
static inline const uint8_t *csd_prefix_trains_m4(void) { return 0; }
static inline void csd_neurons_s8_m4(csd_nblock_t *b) { (void)b; __builtin_trap(); }
static inline void csd_stream_s16_m4(csd_sblock_t *b) { (void)b; __builtin_trap(); }
#endif

#endif

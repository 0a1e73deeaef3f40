/*
 * The optimized kernels against their plain twins (Sources/CSDKernels): on a
 * core with the DSP extension, csd_block_dot_s8_dsp / _s16_dsp (SMLAD in
 * Thumb-2 assembly, the sinks in the same routines) and the plain C loops must
 * give the same outputs bit for bit. Random blocks (uint8 rows, as pixels or
 * counts) and weights (full int8 / int16 range), every K from 1 to 40 and the
 * reference model's 64, 128, 144 and 288, 1 to 16 outputs, 1 to 4 rows, weight
 * rows strided or contiguous. The pairings an image has: int16 weights into
 * the stream (set with zero bias: the raw accumulators; or added onto random
 * values, a bias per output or per output and row as with token biases), int8
 * weights into neuron counts or prefix trains (random thresholds, biases,
 * levels 1..16 and shifts 0..8; a neuron per output as in conv / linear, one
 * for all as in attention scores, or one per row as in attention values);
 * rows adjacent (conv positions) or strided (tokens).
 * The event-driven spiking accumulation (csd_event_spikes_dsp / _plain) too:
 * random active lists (trains of up to 16 steps) against random int8 / int16
 * weight columns, 1 to 16 output channels, every spike or (prefix mode, prefix
 * trains) the last one only.
 * Prints "result: kernels cases=N mismatches=M dsp=0|1".
 */
#include <stdint.h>

#include "board.h"
#include "csd_kernels.h"
#include "fmt.h"
#include "kernel_check.h"

#if CSD_KERNELS_DSP
#define MAX_K 288
#define MAX_OUT 16
#define MAX_STRIDE (MAX_K + 3)

static uint32_t rng = 0x2545F491u;
static uint32_t next(void) { /* xorshift32 */
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static uint8_t rows[4 * MAX_K];
static uint32_t block[((MAX_K + 3) / 4) * 8];
static int8_t w8[MAX_OUT * MAX_STRIDE];
static int16_t w16[MAX_OUT * MAX_STRIDE];
static int32_t acc_a[4 * MAX_OUT], acc_b[4 * MAX_OUT], zero[4 * MAX_OUT], theta[4 * MAX_OUT], bias[4 * MAX_OUT];
static uint8_t cnt_a[4 * MAX_OUT], cnt_b[4 * MAX_OUT];

/* output j, row r at [4 j + r] (adjacent rows) or [j + MAX_OUT r] (strided) */
#define SINK_STEPS(strided) (strided) ? 1 : 4, (strided) ? MAX_OUT : 1

/* the stream: set with zero bias (the raw accumulators), or added onto what is there with a bias
 * per output (token_bias: per output and row) */
static csd_sink_t acc_sink(int32_t *acc, int32_t rows, int32_t set, int32_t strided, int32_t token_bias) {
    csd_sink_t s = {0, acc, 0, set ? zero : bias, set ? 0 : 1, token_bias ? MAX_OUT : 0, SINK_STEPS(strided), 0, 0,
                    rows, set, 0};
    return s;
}

/* neuron counts (or prefix trains): kind 0 a neuron per output, 1 one per row, 2 one for all */
static csd_sink_t neuron_sink(uint8_t *cnt, int32_t rows, int32_t shift, int32_t kind, int32_t strided, int32_t levels,
                              int32_t set) {
    csd_sink_t s = {cnt, 0, theta, bias, kind == 0 ? 1 : 0, kind == 1 ? 1 : 0, SINK_STEPS(strided), shift, levels,
                    rows, set, 0};
    return s;
}

static uint32_t list[64];
static int32_t cur_a[16 * MAX_OUT], cur_b[16 * MAX_OUT];

static uint32_t differ(const void *a, const void *b, uint32_t bytes) {
    const uint8_t *x = a, *y = b;
    for (uint32_t i = 0; i < bytes; i++)
        if (x[i] != y[i]) return 1;
    return 0;
}
#endif

uint32_t kernel_check(void) {
    uint32_t cases = 0, mismatches = 0;
#if CSD_KERNELS_DSP
    static const int32_t big[4] = {64, 128, 144, 288};
    for (int32_t t = 0; t < 44; t++) {
        int32_t k = t < 40 ? t + 1 : big[t - 40];
        for (int32_t rep = 0; rep < 6; rep++) {
            int32_t outputs = 1 + (int32_t)(next() % MAX_OUT);
            int32_t stride = k + (rep >= 3 ? (int32_t)(next() % 4) : 0);
            int32_t nrows = 1 + (int32_t)(next() % 4);
            for (int32_t i = 0; i < 4 * k; i++) rows[i] = (uint8_t)next();
            for (int32_t i = 0; i < outputs * stride; i++) {
                uint32_t r = next();
                w8[i] = (int8_t)r;
                w16[i] = (int16_t)(r >> 8);
            }
            for (int32_t j = 0; j < 4 * MAX_OUT; j++) {
                theta[j] = 1 + (int32_t)(next() % 20000u);
                bias[j] = (int32_t)(next() % 40001u) - 20000;
            }
            uint32_t bits = next();
            int32_t shift = (int32_t)(bits % 9u), set = (rep & 1) == 0, kind = (int32_t)((bits >> 4) % 3u);
            int32_t strided = (int32_t)(bits >> 6) & 1, token_bias = (int32_t)(bits >> 7) & 1;
            int32_t levels = 1 + (int32_t)((bits >> 8) % 16u), trains = (int32_t)(bits >> 12) & 1;
            uint32_t n = 4u * (uint32_t)MAX_OUT;
            for (int32_t natural = 0; natural < 2; natural++) {
                csd_sink_t sa = acc_sink(acc_a, nrows, set, strided, token_bias);
                csd_sink_t sb = acc_sink(acc_b, nrows, set, strided, token_bias);
                csd_sink_t na = neuron_sink(cnt_a, nrows, shift, kind, strided, levels, trains);
                csd_sink_t nb = neuron_sink(cnt_b, nrows, shift, kind, strided, levels, trains);
                for (uint32_t i = 0; i < n; i++) {
                    acc_a[i] = acc_b[i] = (int32_t)next();
                    cnt_a[i] = cnt_b[i] = 0;
                }
                csd_block_put_rows(block, rows, k, 1, nrows, k, natural);
                if (natural) {
                    csd_block_dot_s16_dsp(w16, stride, block, k, outputs, &sa);
                    csd_block_dot_s16_plain(w16, stride, block, k, outputs, &sb);
                } else {
                    csd_block_dot_s8_dsp(w8, stride, block, k, outputs, &na);
                    csd_block_dot_s8_plain(w8, stride, block, k, outputs, &nb);
                }
                mismatches += differ(acc_a, acc_b, n * 4u) | differ(cnt_a, cnt_b, n) | (na.spikes != nb.spikes);
                cases += 1;
            }
        }
    }
    for (int32_t rep = 0; rep < 120; rep++) {
        int32_t outputs = 1 + (int32_t)(next() % MAX_OUT), k = 1 + (int32_t)(next() % 64);
        int32_t count = (int32_t)(next() % 16u), wide = rep & 1, last = (rep >> 1) & 1;
        for (int32_t e = 0; e < count; e++) { /* prefix mode takes prefix trains only */
            uint32_t train = last ? (2u << (next() % 16u)) - 1u : next() & 0xFFFFu;
            list[e] = ((next() % (uint32_t)k) << 16) | (train ? train : 1u);
        }
        for (int32_t i = 0; i < outputs * k; i++) {
            uint32_t r = next();
            w8[i] = (int8_t)r;
            w16[i] = (int16_t)(r >> 8);
        }
        for (int32_t i = 0; i < 16 * outputs; i++) cur_a[i] = cur_b[i] = (int32_t)next();
        const void *weights = wide ? (const void *)w16 : (const void *)w8;
        uint32_t na = csd_event_spikes_dsp(list, count, weights, wide, k, outputs, cur_a, last);
        uint32_t nb = csd_event_spikes_plain(list, count, weights, wide, k, outputs, cur_b, last);
        mismatches += differ(cur_a, cur_b, 16u * 4u * (uint32_t)outputs) | (na != nb);
        cases += 1;
    }
#endif
    put_str("result: kernels");
    put_kv("cases", cases);
    put_kv("mismatches", mismatches);
    put_kv("dsp", CSD_KERNELS_DSP);
    put_nl();
    return mismatches;
}

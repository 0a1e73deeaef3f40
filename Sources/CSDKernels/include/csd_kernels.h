/*
 * The runtime's inner loops, in C (imported by the Swift runtime as module
 * CSDKernels; static inline, so each build compiles the variants its target
 * selects). Cores with the DSP extension (Cortex-M4/M7/M33:
 * __ARM_FEATURE_DSP) get Thumb-2 assembly where it pays: the fused block
 * kernels with their sinks (SMLAD group loops; neurons by SDIV, USAT and
 * byte-wise clip; stream adds) and the spiking event loop (LDM / ADD / STM).
 * Each of those has a plain C twin (csd_block_dot_*_plain,
 * csd_event_spikes_plain, compiled everywhere) beside its DSP twin (*_dsp);
 * the unsuffixed name is the one the target uses (-DCSD_PLAIN_KERNELS forces
 * the plain ones). Twins compute the same wrapping int32 results bit for bit:
 * the Cortex-M4 firmware compares them on random data
 * (Firmware/common/kernel_check.c) and runs the DSP ones against the NumPy
 * reference; the host, RV32 and Cortex-M0+ builds run the plain ones.
 *
 * Fused: the kernels compute four dot products at once: four "rows" (tokens,
 * conv positions, queries or value channels) against one weight row of K int8
 * (or int16) values. The rows are first expanded into a block in the arena's
 * kernel scratch (docs/FORMAT.md, "Kernel scratch"): 16-bit lanes, so every
 * value is unpacked once per block instead of once per output.
 *
 * Block layout (uint32 words; K rounded up to a multiple of 4, padding 0):
 * group g of row r (values k = 4g .. 4g+3) is the two words 8g + 2r, 8g + 2r + 1.
 *   interleaved (int8 weights):  (v[4g] | v[4g+2] << 16), (v[4g+1] | v[4g+3] << 16)
 *   natural     (int16 weights): (v[4g] | v[4g+1] << 16), (v[4g+2] | v[4g+3] << 16)
 * The interleaved order matches SXTB16 of four int8 weights (lanes 0 and 2,
 * then 1 and 3); the natural one two int16 weight pairs read as they lie.
 *
 * Spiking: the DIF neuron, the event-driven accumulation of conv / linear
 * (active-input lists, weight columns into per-step currents; with prefix
 * trains, one column per input at its last spike and suffix sums), the
 * attention products (temporal decomposition), the spiking max-pool, and the
 * count path's helpers (trains <-> counts in place, the synaptic operations
 * from counts, which later op reads a value: docs/SEMANTICS.md "Prefix
 * trains").
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

/* Kept out of line where the caller's register pressure would spill its loop (clang, which compiles
 * the runtime; GCC refuses noinline on an inline function). */
#if defined(__clang__)
#define CSD_OUTLINE __attribute__((noinline))
#else
#define CSD_OUTLINE
#endif

/* Halfword views of a block (written as words by one kernel, read as halfwords by another). */
typedef int16_t csd_lane_t __attribute__((may_alias));
typedef uint16_t csd_ulane_t __attribute__((may_alias));

static inline uint32_t csd_load32(const void *p) {
    uint32_t v;
    __builtin_memcpy(&v, p, 4); /* one LDR: unaligned loads are allowed on these cores */
    return v;
}

/* a / b for b >= 1 (validated shapes): one SDIV, without Swift's trap paths. */
static inline int32_t csd_quot(int32_t a, int32_t b) { return a / b; }

/* clip(floor(a / theta), 0, levels) for theta >= 1 (the runtime only sees validated thresholds).
 * Truncating division equals floor wherever the clip keeps the quotient (a >= 0), and no quotient
 * overflows for theta >= 1; C's division has no trap path (Swift's checks zero and overflow). */
static inline uint8_t csd_count(int32_t a, int32_t theta, int32_t levels) {
#if CSD_KERNELS_DSP
    uint32_t q = (uint32_t)__usat(a / theta, 8); /* the clip at 0 in one USAT (levels <= 16) */
    return (uint8_t)(q > (uint32_t)levels ? (uint32_t)levels : q);
#else
    int32_t q = a / theta;
    return (uint8_t)(q < 0 ? 0 : (q > levels ? levels : q));
#endif
}

/* Spikes among the low 16 bits of v. */
static inline uint32_t csd_popcount16(uint32_t v) {
    static const uint8_t bits[256] = {
#define CSD_B2(n) n, n + 1, n + 1, n + 2
#define CSD_B4(n) CSD_B2(n), CSD_B2(n + 1), CSD_B2(n + 1), CSD_B2(n + 2)
#define CSD_B6(n) CSD_B4(n), CSD_B4(n + 1), CSD_B4(n + 1), CSD_B4(n + 2)
        CSD_B6(0), CSD_B6(1), CSD_B6(1), CSD_B6(2)
#undef CSD_B6
#undef CSD_B4
#undef CSD_B2
    };
    return (uint32_t)bits[v & 255u] + bits[(v >> 8) & 255u];
}

/* The spiking neuron (docs/SEMANTICS.md section 2, DIF with delay D): with I[t] = (cur[t * stride] << shift)
 * (+ bias at t = 0), membrane theta / 2 + I[tau] for tau < steps, spikes (at most levels) from
 * tau = delay on; returns the train (bit u = a spike at output step u). Wrapping arithmetic. */
static inline uint32_t csd_dif(const int32_t *cur, int32_t stride, int32_t steps, int32_t delay, int32_t shift,
                               int32_t bias, int32_t theta, int32_t levels) {
    uint32_t v = (uint32_t)(theta >> 1) + (uint32_t)bias, train = 0;
    int32_t emitted = 0, tau = 0;
    if (delay >= steps) { /* every input first, then c = min(v / theta, levels) spikes at steps 0 .. c-1
                             (levels <= steps, and without input v only falls by theta per spike);
                             the shift distributes over the wrapping sum */
        uint32_t sum = 0;
        const int32_t *c = cur, *end = cur + steps * stride;
        if (stride == 1) /* a stream: two steps per pass */
            for (; c + 1 < end; c += 2) sum += (uint32_t)c[0] + (uint32_t)c[1];
        for (; c != end; c += stride) sum += (uint32_t)*c;
        v += sum << shift;
        int32_t q = (int32_t)v < theta ? 0 : (int32_t)v / theta;
        return q >= levels ? (1u << levels) - 1u : (1u << q) - 1u;
    }
    for (; tau < delay; tau++) v += (uint32_t)cur[tau * stride] << shift;
    for (; tau < steps + delay; tau++) {
        if (tau < steps) v += (uint32_t)cur[tau * stride] << shift;
        if ((int32_t)v >= theta && emitted < levels) {
            train |= 1u << (tau - delay);
            v -= (uint32_t)theta;
            emitted++;
        }
    }
    return train;
}

/* Channel j < outputs has the step currents cur[j * jstride + t * tstride] (conv / linear after the
 * event accumulation: jstride 1, tstride outputs; a token of the stream: jstride steps, tstride 1)
 * and fires (csd_dif, parameters theta[j], bias[j]) into trains[base + j * step] (uint8, or uint16
 * when wide); returns the spikes. */
static inline uint32_t csd_fire_channels(const int32_t *cur, int32_t outputs, int32_t steps, int32_t delay,
                                         int32_t shift, const int32_t *theta, const int32_t *bias, int32_t levels,
                                         void *trains, int32_t wide, int32_t base, int32_t step, int32_t jstride,
                                         int32_t tstride) {
    uint32_t spikes = 0;
    for (int32_t j = 0; j < outputs; j++) {
        uint32_t train = csd_dif(cur + j * jstride, tstride, steps, delay, shift, bias[j], theta[j], levels);
        if (wide)
            ((uint16_t *)trains)[base + j * step] = (uint16_t)train;
        else
            ((uint8_t *)trains)[base + j * step] = (uint8_t)train;
        spikes += csd_popcount16(train);
    }
    return spikes;
}

/* The stream: x[(base + j) * steps + t] = (or +=) I[t] (+ bias[j] at t = 0) with the step currents
 * I[t] = cur[t * outputs + j], or with prefix != 0 (slots of csd_event_spikes(..., last = 1)) the
 * suffix sums I[t] = sum over s >= t of cur[s * outputs + j]. Step currents are first turned into
 * slots (differences; cur is scratch) and a set stream into zeros, so that one loop adds suffix sums
 * from the last step. */
static inline void csd_stream_channels(int32_t *cur, int32_t outputs, int32_t steps, int32_t *x, int32_t base,
                                       const int32_t *bias, int32_t set, int32_t prefix) {
    int32_t n = steps * outputs;
    x += base * steps;
    if (!prefix)
        for (int32_t i = 0; i + outputs < n; i++) cur[i] = (int32_t)((uint32_t)cur[i] - (uint32_t)cur[i + outputs]);
    if (set)
        for (int32_t i = 0; i < n; i++) x[i] = 0;
    int32_t j = 0;
    for (; j + 2 <= outputs; j += 2, x += 2 * steps) { /* two channels per pass */
        const int32_t *c = cur + n - outputs + j;
        uint32_t r0 = 0, r1 = 0;
        for (int32_t *xt = x + steps; xt != x; c -= outputs) {
            r0 += (uint32_t)c[0];
            r1 += (uint32_t)c[1];
            xt--;
            xt[0] = (int32_t)((uint32_t)xt[0] + r0);
            xt[steps] = (int32_t)((uint32_t)xt[steps] + r1);
        }
        x[0] = (int32_t)((uint32_t)x[0] + (uint32_t)bias[j]);
        x[steps] = (int32_t)((uint32_t)x[steps] + (uint32_t)bias[j + 1]);
    }
    if (j < outputs) { /* an odd last channel */
        const int32_t *c = cur + n - outputs + j;
        uint32_t run = 0;
        for (int32_t *xt = x + steps; xt != x; c -= outputs) {
            run += (uint32_t)*c;
            xt--;
            *xt = (int32_t)((uint32_t)*xt + run);
        }
        *x = (int32_t)((uint32_t)*x + (uint32_t)bias[j]);
    }
}

/* ---- spiking accumulation: I[t] += the weight of every input spike at step t ---- */

/* The spike train of element i: uint8 (T <= 8) or uint16 (T <= 16). */
static inline uint32_t csd_train(const void *trains, int32_t wide, int32_t i) {
    return wide ? ((const uint16_t *)trains)[i] : ((const uint8_t *)trains)[i];
}

/* The active inputs of a token (csd_list_row) or a receptive field (csd_list_patch), shared by
 * every output channel: entries (k << 16) | train for the inputs k whose train is not 0.
 * Returns the number of entries. */
static inline int32_t csd_list_row(const void *trains, int32_t wide, int32_t count, uint32_t *list) {
    int32_t n = 0, k = 0;
    if (!wide) {
        const uint8_t *tr = (const uint8_t *)trains;
        for (; k + 4 <= count; k += 4) {
            if (csd_load32(tr + k) == 0) continue;
            for (int32_t u = k; u < k + 4; u++)
                if (tr[u]) list[n++] = ((uint32_t)u << 16) | tr[u];
        }
    }
    for (; k < count; k++) {
        uint32_t x = csd_train(trains, wide, k);
        if (x) list[n++] = ((uint32_t)k << 16) | x;
    }
    return n;
}

/* The same for the 3x3 receptive field at position pos = y * w + x of trains [cin][h][w] (zero outside):
 * k = i * 9 + dy * 3 + dx. */
static inline int32_t csd_list_patch(const void *trains, int32_t wide, int32_t cin, int32_t h, int32_t w, int32_t pos,
                                     uint32_t *list) {
    int32_t n = 0, y = pos / w, x = pos - y * w;
    int32_t y0 = y > 0 ? 0 : 1, y1 = y < h - 1 ? 3 : 2, x0 = x > 0 ? 0 : 1, x1 = x < w - 1 ? 3 : 2;
    int32_t plane = h * w, base = (y - 1) * w + (x - 1);
    for (int32_t i = 0; i < cin; i++, base += plane)
        for (int32_t dy = y0; dy < y1; dy++)
            for (int32_t dx = x0; dx < x1; dx++) {
                uint32_t v = csd_train(trains, wide, base + dy * w + dx);
                if (v) list[n++] = ((uint32_t)(i * 9 + dy * 3 + dx) << 16) | v;
            }
    return n;
}

/* Event-driven accumulation for conv / linear: every entry (k, train) of the active list adds column
 * k of the weights (weights[j * wstride + k], j < outputs) to the currents of the steps it spikes at,
 * cur[t * outputs + j]; four output channels per pass, the column's weights loaded once for all the
 * entry's spikes. With last != 0 every train must be a prefix train (docs/SEMANTICS.md "Prefix
 * trains"; its spikes are its bit length): an entry adds its column at its last spike only, and
 * csd_suffix_steps (or csd_stream_channels) then yields the step currents. Returns the synaptic
 * operations (spikes x outputs) either way. Plain twin: the spike loop in C; DSP twin (Cortex-M4/M7/
 * M33): in Thumb-2 assembly, LDM / four ADDs / STM per spike and four channels, and with last != 0
 * LDM / four loads and ADDs / STM per entry and four channels. */
#define CSD_ADD4_PLAIN(x, base, w0, w1, w2, w3)                      \
    for (uint32_t b = (x); b != 0; b &= b - 1) {                     \
        int32_t *c = (base) + __builtin_ctz(b) * outputs;            \
        c[0] = (int32_t)((uint32_t)c[0] + (w0));                     \
        c[1] = (int32_t)((uint32_t)c[1] + (w1));                     \
        c[2] = (int32_t)((uint32_t)c[2] + (w2));                     \
        c[3] = (int32_t)((uint32_t)c[3] + (w3));                     \
    }

/* Weight i of a column: int8, or int16 when wide (p: its first byte). */
static inline uint32_t csd_weight(const uint8_t *p, int32_t wide) {
    return wide ? (uint32_t)*(const int16_t *)p : (uint32_t)*(const int8_t *)p;
}

#define CSD_EVENT_LOOP(ADD4)                                                                          \
    for (int32_t e = 0; e < count; e++) {                                                             \
        uint32_t v = list[e], x = v & 0xFFFFu;                                                          \
        spikes += last ? 32u - (uint32_t)__builtin_clz(x) : (uint32_t)__builtin_popcount(x);            \
        if (last) x = 0x80000000u >> __builtin_clz(x); /* x != 0, a prefix train: its last spike only */ \
        const uint8_t *col = (const uint8_t *)weights + (v >> 16) * eb;                                 \
        int32_t j = 0;                                                                                  \
        for (; j + 4 <= outputs; j += 4, col += 4 * ws) {                                               \
            uint32_t w0 = csd_weight(col, wide), w1 = csd_weight(col + ws, wide),                       \
                     w2 = csd_weight(col + 2 * ws, wide), w3 = csd_weight(col + 3 * ws, wide);          \
            ADD4(x, cur + j, w0, w1, w2, w3)                                                            \
        }                                                                                               \
        for (; j < outputs; j++, col += ws)                                                             \
            for (uint32_t b = x; b != 0; b &= b - 1) {                                                  \
                int32_t *c = cur + __builtin_ctz(b) * outputs + j;                                      \
                c[0] = (int32_t)((uint32_t)c[0] + csd_weight(col, wide));                               \
            }                                                                                           \
    }

static inline uint32_t csd_event_spikes_plain(const uint32_t *list, int32_t count, const void *weights, int32_t wide,
                                              int32_t wstride, int32_t outputs, int32_t *cur, int32_t last) {
    uint32_t spikes = 0, eb = wide ? 2u : 1u, ws = (uint32_t)wstride * eb;
    CSD_EVENT_LOOP(CSD_ADD4_PLAIN)
    return spikes * (uint32_t)outputs;
}

#if CSD_KERNELS_DSP
/* x != 0 (list entries are spiking inputs); the four currents go through r8, r9, r10, r12. */
#define CSD_ADD4_DSP(x, p, a, b, c, d)                                                               \
    {                                                                                                \
        uint32_t b_ = (x), t_;                                                                       \
        int32_t *c_;                                                                                 \
        __asm__ volatile("1:\n\t"                                                                     \
                         "rbit %[t], %[bits]\n\t"                                                    \
                         "clz %[t], %[t]\n\t"                                                        \
                         "mla %[at], %[t], %[row], %[pb]\n\t"                                        \
                         "ldmia %[at], {r8, r9, r10, r12}\n\t"                                       \
                         "add r8, r8, %[wa]\n\t"                                                     \
                         "add r9, r9, %[wb]\n\t"                                                     \
                         "add r10, r10, %[wc]\n\t"                                                   \
                         "add r12, r12, %[wd]\n\t"                                                   \
                         "stmia %[at], {r8, r9, r10, r12}\n\t"                                       \
                         "sub %[t], %[bits], #1\n\t"                                                 \
                         "ands %[bits], %[bits], %[t]\n\t"                                           \
                         "bne 1b\n\t"                                                                \
                         : [bits] "+r"(b_), [t] "=&r"(t_), [at] "=&r"(c_)                            \
                         : [row] "r"(rowbytes), [pb] "r"(p), [wa] "r"(a), [wb] "r"(b), [wc] "r"(c), \
                           [wd] "r"(d)                                                               \
                         : "r8", "r9", "r10", "r12", "cc", "memory");                                \
    }

/* Prefix mode, one entry: the column's weights (LD = ldrsb or ldrsh; rows j .. j + 3 at p, p + ws,
 * p + ws2, p + ws3, ws the row stride in bytes) added to the four currents at `at`, to `end`. */
#define CSD_COLUMN_DSP(LD)                                                                             \
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
                     : "r8", "r9", "r10", "r12", "cc", "memory")

static inline CSD_OUTLINE uint32_t csd_event_spikes_dsp(const uint32_t *list, int32_t count, const void *weights, int32_t wide,
                                            int32_t wstride, int32_t outputs, int32_t *cur, int32_t last) {
    uint32_t spikes = 0, rowbytes = (uint32_t)outputs * 4u;
    if (last && outputs >= 4) { /* one addition per entry and channel: four channels per pass in assembly */
        int32_t eb = wide ? 2 : 1, ws = wstride * eb, quad = outputs & ~3;
        for (const uint32_t *l = list, *lend = list + count; l != lend; l++) {
            uint32_t v = *l, z = (uint32_t)__builtin_clz(v & 0xFFFFu), w; /* a prefix train: 32 - z spikes */
            spikes += 32u - z;
            int32_t *row = cur + (int32_t)(31u - z) * outputs, *at = row, *end = row + quad;
            const uint8_t *p = (const uint8_t *)weights + (v >> 16) * (uint32_t)eb;
            if (wide)
                CSD_COLUMN_DSP("ldrsh");
            else
                CSD_COLUMN_DSP("ldrsb");
            for (int32_t j = quad; j < outputs; j++, p += ws) /* p is at row j now */
                row[j] = (int32_t)((uint32_t)row[j] + csd_weight(p, wide));
        }
        return spikes * (uint32_t)outputs;
    }
    {
        uint32_t eb = wide ? 2u : 1u, ws = (uint32_t)wstride * eb;
        CSD_EVENT_LOOP(CSD_ADD4_DSP)
    }
    return spikes * (uint32_t)outputs;
}
#endif

/* The twin this target uses. */
static inline uint32_t csd_event_spikes(const uint32_t *list, int32_t count, const void *weights, int32_t wide,
                                        int32_t wstride, int32_t outputs, int32_t *cur, int32_t last) {
#if CSD_KERNELS_DSP
    return csd_event_spikes_dsp(list, count, weights, wide, wstride, outputs, cur, last);
#else
    return csd_event_spikes_plain(list, count, weights, wide, wstride, outputs, cur, last);
#endif
}

/* After csd_event_spikes(..., last = 1) on prefix trains: slot s holds the columns of the inputs whose
 * last spike is at step s, and an input spiking at steps 0 .. s adds to every step up to s, so the
 * step currents are the suffix sums cur[t] += cur[t + 1] (t from steps - 2 down to 0). */
static inline void csd_suffix_steps(int32_t *cur, int32_t steps, int32_t outputs) {
    for (int32_t i = (steps - 1) * outputs - 1; i >= 0; i--) cur[i] = (int32_t)((uint32_t)cur[i] + (uint32_t)cur[i + outputs]);
}

/* Temporal decomposition (docs/SEMANTICS.md section 3, ATTN_*) of the pairs (a_c, b_c): a_c from
 * an active list (entries (c << 16) | train, see csd_list_row), b_c = b[c * bstride]:
 * cur[t] += a_t * B_t + A_{t-1} * b_t, capitals the running counts (B_t through t, A_{t-1} through
 * t - 1). Returns the additions: one per spike of a, and one per spike of b after step 0, of every
 * pair where both trains spike (as the reference counts them). */
static inline uint32_t csd_list_products(const uint32_t *list, int32_t count, const void *b, int32_t bstride,
                                         int32_t wide, int32_t *cur) {
    uint32_t n = 0;
    for (int32_t e = 0; e < count; e++) {
        uint32_t v = list[e], x = v & 0xFFFFu, y = csd_train(b, wide, (int32_t)(v >> 16) * bstride);
        if (x == 0 || y == 0) continue;
        for (uint32_t s = x; s != 0; s &= s - 1) { /* a spikes at t: + B_t */
            int32_t t = __builtin_ctz(s);
            cur[t] = (int32_t)((uint32_t)cur[t] + csd_popcount16(y & ((2u << t) - 1u)));
            n++;
        }
        for (uint32_t s = y & ~1u; s != 0; s &= s - 1) { /* b spikes at t > 0: + A_{t-1} */
            int32_t t = __builtin_ctz(s);
            cur[t] = (int32_t)((uint32_t)cur[t] + csd_popcount16(x & ((1u << t) - 1u)));
            n++;
        }
    }
    return n;
}

/* The attention ops on the event path (D < T, or uint16 trains), trains uint8 or uint16 (wide):
 * scores (values == 0), x = q and b = k [n][d]: per head h and query i, q's channels of the head are listed
 * once (csd_list_row), and key j gets the currents of the list against k[j] (csd_list_products) and fires
 * (theta[h], bias[h]) into out[(h * n + i) * n + j]; values (values != 0), x = a [heads][n][n] and b = v
 * [n][d]: the attention row a[h][i] is listed once, and channel c of the head gets the currents of the list
 * against v[.][c] and fires (theta[c], bias[c]) into out[i * d + c]. The scratch holds the T currents
 * (16 int32), then the list. Returns the spikes; adds the synaptic operations to *synops. */
static inline uint32_t csd_attention_events(int32_t values, const void *x, const void *b, void *out, int32_t wide,
                                            int32_t n, int32_t d, int32_t heads, const int32_t *theta,
                                            const int32_t *bias, int32_t shift, int32_t levels, int32_t steps,
                                            int32_t delay, uint32_t *scratch, uint32_t *synops) {
    int32_t hd = d / heads, *cur = (int32_t *)scratch;
    uint32_t spikes = 0, eb = wide ? 2u : 1u, *list = scratch + 16;
    for (int32_t h = 0; h < heads; h++)
        for (int32_t i = 0; i < n; i++) {
            int32_t row = values ? (h * n + i) * n : i * d + h * hd, outputs = values ? hd : n;
            int32_t active = csd_list_row((const uint8_t *)x + (uint32_t)row * eb, wide, values ? n : hd, list);
            for (int32_t m = 0; m < outputs; m++) {
                int32_t p = values ? h * hd + m : h, o = values ? i * d + h * hd + m : (h * n + i) * n + m;
                for (int32_t t = 0; t < steps; t++) cur[t] = 0;
                *synops += csd_list_products(list, active, (const uint8_t *)b + (uint32_t)(h * hd + m * (values ? 1 : d)) * eb,
                                             values ? d : 1, wide, cur);
                uint32_t train = csd_dif(cur, 1, steps, delay, shift, bias[p], theta[p], levels);
                if (wide)
                    ((uint16_t *)out)[o] = (uint16_t)train;
                else
                    ((uint8_t *)out)[o] = (uint8_t)train;
                spikes += csd_popcount16(train);
            }
        }
    return spikes;
}

/* The stream neuron: element e = t * d + j of the stream x [n][d][steps] (steps 1 in fused mode) sees
 * the sum of its steps (on the spiking count path, D >= T: every input before any spike) and writes
 * its count c = csd_count((sum << shift) + bias[j] + theta[j] / 2, theta[j], levels) into out[e], or
 * with set != 0 its prefix train (1 << c) - 1. Returns the spikes. */
static inline uint32_t csd_stream_neuron(const int32_t *x, int32_t n, int32_t d, int32_t steps, int32_t shift,
                                         const int32_t *theta, const int32_t *bias, int32_t levels, int32_t set,
                                         uint8_t *out) {
    uint32_t spikes = 0;
    if (steps == 1 && !set) { /* fused: channel by channel, its neuron in registers */
        for (int32_t j = 0; j < d; j++) {
            int32_t th = theta[j], offset = bias[j] + (th >> 1);
            const int32_t *p = x + j;
            uint8_t *o = out + j;
            for (int32_t t = 0; t < n; t++, p += d, o += d) {
                uint32_t c = csd_count((int32_t)(((uint32_t)*p << shift) + (uint32_t)offset), th, levels);
                *o = (uint8_t)c;
                spikes += c;
            }
        }
        return spikes;
    }
    for (int32_t t = 0; t < n; t++)
        for (int32_t j = 0; j < d; j++) {
            uint32_t sum = 0;
            const int32_t *end = x + steps;
            for (; x + 1 < end; x += 2) sum += (uint32_t)x[0] + (uint32_t)x[1];
            if (x != end) sum += (uint32_t)*x++;
            int32_t th = theta[j];
            uint32_t c = csd_count((int32_t)((sum << shift) + (uint32_t)bias[j] + (uint32_t)(th >> 1)), th, levels);
            *out++ = (uint8_t)(set ? (1u << c) - 1u : c);
            spikes += c;
        }
    return spikes;
}

/* The classifier (docs/SEMANTICS.md section 3, CLASSIFIER): logits[j] = bias[j] + sum_c w[j * d + c] * S_c,
 * S_c = channel c's values summed over the n tokens of in [n][d]: counts (uint8, trains = 0), or the
 * spikes of trains (uint8, or uint16 when wide): every spike adds its column, at every delay. Wrapping
 * arithmetic; returns the sum of S_c. */
static inline uint32_t csd_classifier(const void *in, int32_t trains, int32_t wide, int32_t n, int32_t d,
                                      const int8_t *w, const int32_t *bias, int32_t classes, int32_t *logits) {
    uint32_t all = 0;
    for (int32_t j = 0; j < classes; j++) logits[j] = bias[j];
    for (int32_t c = 0; c < d; c++) {
        uint32_t total = 0;
        for (int32_t t = 0; t < n; t++) {
            uint32_t x = csd_train(in, wide, t * d + c);
            total += trains ? csd_popcount16(x) : x;
        }
        all += total;
        for (int32_t j = 0; j < classes; j++) logits[j] = (int32_t)((uint32_t)logits[j] + (uint32_t)w[j * d + c] * total);
    }
    return all;
}

/* ---- the count path (spiking, D >= T, uint8 trains): every train is a prefix train, spikes at
 * steps 0 .. c - 1 (docs/SEMANTICS.md, "Prefix trains"), so train = (1 << c) - 1 and a neuron's
 * integrated input is the fused accumulation of the counts c. The runtime turns an op's input trains
 * into counts in place, runs the fused kernels, and turns counts back into trains. ---- */

/* uint8 trains -> their spike counts, in place, four at a time (bit counts within each byte);
 * returns the sum of the counts. */
static inline uint32_t csd_trains_to_counts(uint8_t *p, int32_t n) {
    uint32_t sum = 0;
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        uint32_t x = csd_load32(p + i);
        x -= (x >> 1) & 0x55555555u;
        x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
        x = (x + (x >> 4)) & 0x0F0F0F0Fu;
        __builtin_memcpy(p + i, &x, 4);
        sum += (x * 0x01010101u) >> 24;
    }
    for (; i < n; i++) {
        uint32_t c = csd_popcount16(p[i]);
        p[i] = (uint8_t)c;
        sum += c;
    }
    return sum;
}

/* Counts (<= 8) -> prefix trains, in place, four at a time. */
static inline void csd_counts_to_trains(uint8_t *p, int32_t n) {
    static const uint8_t train[16] = {0, 1, 3, 7, 15, 31, 63, 127, 255};
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        uint32_t x = csd_load32(p + i);
        x = train[x & 15u] | (uint32_t)train[(x >> 8) & 15u] << 8 | (uint32_t)train[(x >> 16) & 15u] << 16 |
            (uint32_t)train[x >> 24 & 15u] << 24;
        __builtin_memcpy(p + i, &x, 4);
    }
    for (; i < n; i++) p[i] = train[p[i] & 15u];
}

/* Counts (<= 16) written as uint8 at p[0 .. n) -> uint16 prefix trains at the same address, from the
 * last (each uint16 covers bytes at or after its count's). */
static inline void csd_counts_to_trains16(void *p, int32_t n) {
    for (int32_t i = n - 1; i >= 0; i--) ((uint16_t *)p)[i] = (uint16_t)((1u << ((const uint8_t *)p)[i]) - 1u);
}

/* Whether op j in from .. count - 1 of the op records (64 bytes each, docs/FORMAT.md) reads the spiking
 * value at arena offset `offset` before one writes it: 0 no (the value is dead), 2 yes, first as the
 * input of an op the count path runs on counts (a conv or linear with neuron outputs, an attention op),
 * 1 yes otherwise. (An unused input2 field of 0 can give a needless 1: harmless.) */
static inline int32_t csd_read_later(const void *records, int32_t from, int32_t count, uint32_t offset) {
    for (const uint8_t *r = (const uint8_t *)records + from * 64, *end = (const uint8_t *)records + count * 64; r < end;
         r += 64) {
        if (csd_load32(r + 32) == offset) return 1;
        if (csd_load32(r + 24) == offset)
            return (r[0] == 5 || r[0] == 6 || ((r[0] == 1 || r[0] == 2) && !(r[1] & 2))) ? 2 : 1;
        if (csd_load32(r + 40) == offset) return 0;
    }
    return 0;
}

/* The synaptic operations the event path counts, from counts (prefix trains), wrapping like it.
 * Conv: every input spike adds its column once per 3x3 window (zero padding) that holds it, so the
 * sum over a [c][h][w] map of count x windows (times Cout, by the caller). */
static inline uint32_t csd_window_sum(const uint8_t *p, int32_t c, int32_t h, int32_t w) {
    uint32_t total = 0;
    for (int32_t ch = 0; ch < c; ch++)
        for (int32_t y = 0; y < h; y++) {
            uint32_t ny = 1u + (y > 0) + (y < h - 1), row = 0;
            for (int32_t x = 0; x < w; x++, p++) row += *p * (1u + (x > 0) + (x < w - 1));
            total += ny * row;
        }
    return total;
}

/* Attention (csd_list_products): a pair of trains where both spike, counts a and b, costs a + b - 1
 * additions. Summed over the pairs of group g < g1 * g2 (g = u * g2 + v): the count lists x[u * ax +
 * v * bx + i * sx], i < nx, and y[u * ay + v * by + j * sy], j < ny, pair each with each, so the sum is
 * (sum over spiking x of (a - 1)) * #y + #x * (sum of y), # counting the spiking entries. Scores (q and
 * k [n][d]): a group per channel; values (a [heads][n][n], v [n][d]): a group per head and key. */
static inline uint32_t csd_pair_synops(const uint8_t *x, const uint8_t *y, int32_t g1, int32_t g2, int32_t ax, int32_t bx,
                                       int32_t sx, int32_t nx, int32_t ay, int32_t by, int32_t sy, int32_t ny) {
    uint32_t total = 0;
    for (int32_t u = 0; u < g1; u++)
        for (int32_t v = 0; v < g2; v++) {
            uint32_t sa = 0, na = 0, nb = 0, sb = 0; /* sums and spiking entries */
            for (const uint8_t *p = x + u * ax + v * bx, *end = p + nx * sx; p != end; p += sx) {
                sa += *p;
                na += *p != 0;
            }
            for (const uint8_t *p = y + u * ay + v * by, *end = p + ny * sy; p != end; p += sy) {
                sb += *p;
                nb += *p != 0;
            }
            total += (sa - na) * nb + na * sb;
        }
    return total;
}

/* Spiking max-pool of one window (docs/SEMANTICS.md section 3, MAXPOOL): rows y0..y1-1, columns
 * x0..x1-1 (at most 3 x 3) of a channel's trains (row stride w). With C_i(t) the running counts,
 * the output spikes at t when max_i C_i(t) > max_i C_i(t - 1). Returns the output train. */
static inline uint32_t csd_pool_spikes(const void *trains, int32_t wide, int32_t w, int32_t y0, int32_t y1, int32_t x0,
                                       int32_t x1, int32_t steps) {
    uint32_t x[9], c[9], n = 0, out = 0, previous = 0, any = 0;
    for (int32_t y = y0; y < y1; y++)
        for (int32_t xx = x0; xx < x1; xx++, n++) {
            x[n] = csd_train(trains, wide, y * w + xx);
            c[n] = 0;
            any |= x[n];
        }
    for (int32_t t = 0; t < steps && (any >> t) != 0; t++) {
        uint32_t m = 0;
        for (uint32_t i = 0; i < n; i++) {
            c[i] += (x[i] >> t) & 1u;
            m = c[i] > m ? c[i] : m;
        }
        if (m > previous) out |= 1u << t;
        previous = m;
    }
    return out;
}

/* Max-pool (docs/SEMANTICS.md section 3, MAXPOOL) of a [c][h][w] map into [c][oh][ow]: pool 2 (2x2,
 * stride 2) or 3 (3x3, stride 2, padding 1), windows clipped to the map. mode 0: uint8 counts (fused),
 * their maximum; mode 1: uint8 prefix trains (the spiking count path), the maximum is the train of the
 * largest count; mode 2: spike trains (the event path, uint8 or uint16 when wide), csd_pool_spikes per
 * window. Returns the spikes (the sum of the counts, or of the trains' bits). */
static inline uint32_t csd_maxpool(const void *input, int32_t mode, int32_t wide, int32_t c, int32_t h, int32_t w,
                                   int32_t pool, void *output, int32_t oh, int32_t ow, int32_t steps) {
    const uint8_t *in = (const uint8_t *)input;
    uint8_t *out = (uint8_t *)output;
    uint32_t spikes = 0, eb = wide ? 2u : 1u;
    int32_t pad = pool == 3 ? 1 : 0, o = 0;
    if (pool == 2 && mode < 2) { /* uint8, every window the whole 2x2 block */
        for (int32_t ch = 0; ch < c; ch++, in += h * w)
            for (int32_t oy = 0; oy < oh; oy++)
                for (const uint8_t *p = in + 2 * oy * w, *end = p + 2 * ow; p < end; p += 2) {
                    uint32_t a = p[0] > p[1] ? p[0] : p[1], b = p[w] > p[w + 1] ? p[w] : p[w + 1];
                    uint32_t m = a > b ? a : b;
                    *out++ = (uint8_t)m;
                    spikes += mode ? csd_popcount16(m) : m;
                }
        return spikes;
    }
    for (int32_t ch = 0; ch < c; ch++, in += (uint32_t)(h * w) * eb)
        for (int32_t oy = 0; oy < oh; oy++) {
            int32_t top = oy * 2 - pad, y0 = top < 0 ? 0 : top, y1 = top + pool < h ? top + pool : h;
            for (int32_t ox = 0; ox < ow; ox++, o++) {
                int32_t left = ox * 2 - pad, x0 = left < 0 ? 0 : left, x1 = left + pool < w ? left + pool : w;
                uint32_t m = 0;
                if (mode == 2)
                    m = csd_pool_spikes(in, wide, w, y0, y1, x0, x1, steps);
                else
                    for (int32_t y = y0; y < y1; y++)
                        for (int32_t x = x0; x < x1; x++) m = in[y * w + x] > m ? in[y * w + x] : m;
                if (wide)
                    ((uint16_t *)output)[o] = (uint16_t)m;
                else
                    out[o] = (uint8_t)m;
                spikes += mode ? csd_popcount16(m) : m;
            }
        }
    return spikes;
}

/* Four values as group words of a block row (see the layout above). */
static inline void csd_block_put_group(uint32_t *d, uint32_t v0, uint32_t v1, uint32_t v2, uint32_t v3, int32_t natural) {
    d[0] = v0 | (natural ? v1 : v2) << 16;
    d[1] = (natural ? v2 : v1) | v3 << 16;
}

/* Row r of the block from k uint8 values at src[0], src[stride], ... (zero padding included). */
static inline void csd_block_put_row(uint32_t *block, int32_t r, const uint8_t *src, int32_t stride, int32_t k,
                                     int32_t natural) {
    uint32_t *d = block + 2 * r;
    int32_t tail = k & 3, s2 = 2 * stride, s3 = 3 * stride, g = k >> 2;
#if CSD_KERNELS_DSP
    if (stride == 1) /* a word of four values: UXTB16 gives (v0, v2) and (v1, v3) */
        for (; g > 0; g--, src += 4, d += 8) {
            uint32_t v = csd_load32(src), lo = __uxtb16(v), hi = __uxtb16(v >> 8 | v << 24);
            d[0] = natural ? (lo & 0xFFFFu) | hi << 16 : lo;
            d[1] = natural ? lo >> 16 | (hi & 0xFFFF0000u) : hi;
        }
#endif
    for (; g > 0; g--, src += 4 * stride, d += 8) csd_block_put_group(d, src[0], src[stride], src[s2], src[s3], natural);
    if (tail) csd_block_put_group(d, src[0], tail > 1 ? src[stride] : 0u, tail > 2 ? src[s2] : 0u, 0u, natural);
}

/* Row r of the block set to zero (a row past the end of the data). */
static inline void csd_block_zero_row(uint32_t *block, int32_t r, int32_t k) {
    int32_t groups = (k + 3) >> 2;
    for (int32_t g = 0; g < groups; g++) {
        block[g * 8 + r * 2] = 0;
        block[g * 8 + r * 2 + 1] = 0;
    }
}

/* Rows 0..3 from `rows` uint8 rows of k values (row r's value i at src[r * rstride + i * stride]);
 * rows >= `rows` are zero. */
static inline void csd_block_put_rows(uint32_t *block, const uint8_t *src, int32_t rstride, int32_t stride, int32_t rows,
                                      int32_t k, int32_t natural) {
    for (int32_t r = 0; r < 4; r++) {
        if (r < rows)
            csd_block_put_row(block, r, src + r * rstride, stride, k, natural);
        else
            csd_block_zero_row(block, r, k);
    }
}

/* Row r from the 3x3 receptive field at position pos = y * w + x of a uint8 [cin][h][w] map, zero outside,
 * in the weights' order [cin][3][3]: value k = (i * 3 + dy) * 3 + dx. The destination walks the
 * block's slots with a step per k & 3 (interleaved 0 -> 2 -> 1 -> 3 -> next group; natural in order). */
static inline CSD_OUTLINE void csd_block_put_patch(uint32_t *block, int32_t r, const uint8_t *in, int32_t cin, int32_t h,
                                       int32_t w, int32_t pos, int32_t natural) {
    int32_t y = pos / w, x = pos - y * w;
    static const int8_t steps[2][4] = {{2, -1, 2, 13}, {1, 1, 1, 13}};
    const int8_t *step = steps[natural ? 1 : 0];
    csd_ulane_t *dst = (csd_ulane_t *)block + 4 * r;
    uint32_t q = 0; /* k & 3 */
    int32_t plane = h * w;
    /* which of the window's rows and columns lie inside the map */
    uint32_t rows = (y > 0 ? 1u : 0u) | 2u | (y < h - 1 ? 4u : 0u);
    uint32_t cols = (x > 0 ? 1u : 0u) | 2u | (x < w - 1 ? 4u : 0u);
    const uint8_t *p = in + (y - 1) * w + (x - 1);
    if (rows == 7u && cols == 7u) {
        for (int32_t i = 0; i < cin; i++, p += plane) {
            const uint8_t *row = p;
            for (int32_t dy = 0; dy < 3; dy++, row += w) {
                dst[0] = row[0]; dst += step[q]; q = (q + 1) & 3;
                dst[0] = row[1]; dst += step[q]; q = (q + 1) & 3;
                dst[0] = row[2]; dst += step[q]; q = (q + 1) & 3;
            }
        }
    } else {
        for (int32_t i = 0; i < cin; i++, p += plane) {
            const uint8_t *row = p;
            for (int32_t dy = 0; dy < 3; dy++, row += w) {
                int32_t ok = (int32_t)((rows >> dy) & 1u);
                for (int32_t dx = 0; dx < 3; dx++) {
                    dst[0] = ok && ((cols >> dx) & 1u) ? row[dx] : 0;
                    dst += step[q];
                    q = (q + 1) & 3;
                }
            }
        }
    }
    for (; q != 0; q = (q + 1) & 3) {
        dst[0] = 0;
        dst += step[q];
    }
}


/* Rows 0..3 from the receptive fields of positions pos .. pos + rows - 1; rows >= `rows` are zero. */
static inline void csd_block_put_patches(uint32_t *block, const uint8_t *in, int32_t cin, int32_t h, int32_t w,
                                         int32_t pos, int32_t rows, int32_t natural) {
    for (int32_t r = 0; r < 4; r++) {
        if (r < rows)
            csd_block_put_patch(block, r, in, cin, h, w, pos + r, natural);
        else
            csd_block_zero_row(block, r, 9 * cin);
    }
}

/* ---- plain twins: every target ---- */

/* Where the four accumulators of output j go (docs/SEMANTICS.md: the fused neuron, or a stream
 * sink); rows 0 .. rows-1 are real, the others are dropped. With e(j, r) = j * cstep + r * rstep
 * and i(j, r) = j * pstep + r * prstep:
 *   neurons (out != NULL):   c = csd_count((acc << shift) + bias[i] + (theta[i] >> 1), theta[i], levels),
 *                            out[e] = c, or with set != 0 its prefix train (1 << c) - 1 (the spiking
 *                            count path); spikes += c
 *   stream (stream != NULL): stream[e] = acc + bias[i]   (set != 0), or stream[e] += acc + bias[i]
 * The kernels call csd_sink_put with the accumulators still in registers. */
typedef struct csd_sink {
    uint8_t *out;
    int32_t *stream;
    const int32_t *theta;
    const int32_t *bias;
    int32_t pstep, prstep, cstep, rstep;
    int32_t shift, levels, rows, set;
    uint32_t spikes;
} csd_sink_t;

static inline void csd_sink_put(csd_sink_t *s, int32_t j, int32_t a0, int32_t a1, int32_t a2, int32_t a3) {
    int32_t acc[4] = {a0, a1, a2, a3};
    int32_t e = j * s->cstep, i = j * s->pstep, rows = s->rows, rstep = s->rstep, prstep = s->prstep;
    const int32_t *bias = s->bias + i;
    if (s->out) {
        const int32_t *theta = s->theta + i;
        uint8_t *out = s->out + e;
        int32_t shift = s->shift, levels = s->levels;
        uint32_t spikes = 0;
        for (int32_t r = 0; r < rows; r++) {
            int32_t t = theta[r * prstep];
            int32_t v = (int32_t)(((uint32_t)acc[r] << shift) + (uint32_t)bias[r * prstep] + (uint32_t)(t >> 1));
            uint8_t c = csd_count(v, t, levels);
            out[r * rstep] = (uint8_t)(s->set ? (1u << c) - 1u : c);
            spikes += c;
        }
        s->spikes += spikes;
    } else {
        int32_t *x = s->stream + e;
        for (int32_t r = 0; r < rows; r++) {
            uint32_t v = (uint32_t)acc[r] + (uint32_t)bias[r * prstep];
            x[r * rstep] = (int32_t)(s->set ? v : (uint32_t)x[r * rstep] + v);
        }
    }
}

/* acc_r = sum_i w[j * wstride + i] * row_r[i] for j < outputs (int8 weights, interleaved block of
 * k values), wrapping int32, into the sink. Plain C: the block's lanes read as halfwords (row r of
 * group g at halfwords 16 g + 4 r: values 0, 2, 1, 3), four multiply-adds per row and group. */
static inline void csd_block_dot_s8_plain(const int8_t *w, int32_t wstride, const uint32_t *block, int32_t k,
                                          int32_t outputs, csd_sink_t *sink) {
    int32_t groups = k >> 2, tail = k & 3;
    for (int32_t j = 0; j < outputs; j++, w += wstride) {
        uint32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        const int8_t *p = w;
        const csd_lane_t *x = (const csd_lane_t *)block;
        for (int32_t g = 0; g <= groups; g++, p += 4, x += 16) {
            int32_t w0, w1, w2, w3;
            if (g < groups) {
                w0 = p[0]; w1 = p[1]; w2 = p[2]; w3 = p[3];
            } else if (tail) { /* the last 1..3 weights; the block's padding is 0 */
                w0 = p[0]; w1 = tail > 1 ? p[1] : 0; w2 = tail > 2 ? p[2] : 0; w3 = 0;
            } else {
                break;
            }
            a0 += (uint32_t)(w0 * x[0] + w2 * x[1] + w1 * x[2] + w3 * x[3]);
            a1 += (uint32_t)(w0 * x[4] + w2 * x[5] + w1 * x[6] + w3 * x[7]);
            a2 += (uint32_t)(w0 * x[8] + w2 * x[9] + w1 * x[10] + w3 * x[11]);
            a3 += (uint32_t)(w0 * x[12] + w2 * x[13] + w1 * x[14] + w3 * x[15]);
        }
        csd_sink_put(sink, j, (int32_t)a0, (int32_t)a1, (int32_t)a2, (int32_t)a3);
    }
}

/* The same with int16 weights and a natural block (values 0, 1, 2, 3 in order). */
static inline void csd_block_dot_s16_plain(const int16_t *w, int32_t wstride, const uint32_t *block, int32_t k,
                                           int32_t outputs, csd_sink_t *sink) {
    int32_t groups = k >> 2, tail = k & 3;
    for (int32_t j = 0; j < outputs; j++, w += wstride) {
        uint32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        const int16_t *p = w;
        const csd_lane_t *x = (const csd_lane_t *)block;
        for (int32_t g = 0; g <= groups; g++, p += 4, x += 16) {
            int32_t w0, w1, w2, w3;
            if (g < groups) {
                w0 = p[0]; w1 = p[1]; w2 = p[2]; w3 = p[3];
            } else if (tail) {
                w0 = p[0]; w1 = tail > 1 ? p[1] : 0; w2 = tail > 2 ? p[2] : 0; w3 = 0;
            } else {
                break;
            }
            a0 += (uint32_t)w0 * (uint32_t)x[0] + (uint32_t)w1 * (uint32_t)x[1] + (uint32_t)w2 * (uint32_t)x[2] + (uint32_t)w3 * (uint32_t)x[3];
            a1 += (uint32_t)w0 * (uint32_t)x[4] + (uint32_t)w1 * (uint32_t)x[5] + (uint32_t)w2 * (uint32_t)x[6] + (uint32_t)w3 * (uint32_t)x[7];
            a2 += (uint32_t)w0 * (uint32_t)x[8] + (uint32_t)w1 * (uint32_t)x[9] + (uint32_t)w2 * (uint32_t)x[10] + (uint32_t)w3 * (uint32_t)x[11];
            a3 += (uint32_t)w0 * (uint32_t)x[12] + (uint32_t)w1 * (uint32_t)x[13] + (uint32_t)w2 * (uint32_t)x[14] + (uint32_t)w3 * (uint32_t)x[15];
        }
        csd_sink_put(sink, j, (int32_t)a0, (int32_t)a1, (int32_t)a2, (int32_t)a3);
    }
}

/* ---- DSP twins (Cortex-M4/M7/M33): two Thumb-2 assembly routines, one per pairing an image has
 * (int8 weights into neurons; int16 weights, the STREAM_OUT ops', into the stream), each running every
 * output of a block: its group loop (per 16 MACs: int8 one LDR, two SXTB16, two LDM and eight SMLAD;
 * int16 one LDRD, two LDM, eight SMLAD; two groups per pass, 28 and 24 instructions with the loop), an
 * odd group and a tail group for K not a multiple of 4 (its 1..3 weights loaded one by one, zero above)
 * through a single-group body, and the sink, with the accumulators in registers. The block's words go through r8, r9, r10, r12 (LDM needs ascending registers). The
 * routines keep their state in a struct (the C wrappers fill it from the sink): every register is
 * taken by the group loop. A partial block (a layer's last rows) gives its absent rows the offsets of
 * row 0 and stores row 0 last, so nothing outside the real rows is read or written. ---- */
#if CSD_KERNELS_DSP
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
    const uint8_t *trains;         /* 60: the prefix-train table, or 0 for counts */
    int32_t wskip, outputs;        /* 64, 68: wstride - 4 * groups; outputs >= 1 */
    const int8_t *w;               /* 72 */
    int32_t extra;                 /* 76: K % 4, + 256 for a neuron per row; 0 in the common case */
    int32_t row[3], prow[3];       /* 80, 92: out and theta / bias (bytes) offsets of rows 1 .. 3 from row 0;
                                    * 0 for absent rows */
} csd_nblock_t;

__attribute__((naked, noinline, unused)) static void csd_neurons_s8_asm(csd_nblock_t *b __attribute__((unused))) {
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
        "ldr r3, [r0, #76]\n\t"
        "cbz r3, 8f\n\t"                        /* no tail, a neuron per output */
        "ands r3, r3, #3\n\t"
        "beq 72f\n\t"
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
        "ldr r12, [r0, #76]\n\t"
        "tst r12, #256\n\t"
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
        "ldr r5, [r0, #80]\n\t"
        "ldrd r6, r7, [r0, #84]\n\t"
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
        CSD_NEURON_ROW("r5", "92")
        CSD_NEURON_ROW("r6", "96")
        CSD_NEURON_ROW("r7", "100")
        "add r2, r2, r8\n\t"
        "add r3, r3, r8\n\t"
        "add r12, r0, #24\n\t"
        "stmia r12, {r2, r3}\n\t"
        "b 9b\n\t");
}

/* Stream: x[e] = acc + bias[i], or x[e] += acc + bias[i] (set == 0), e = j * cstep + r * rstep,
 * i = j * pstep + r * prstep. All four rows are loaded before any is stored, row 0 last. Rows of
 * int16 weights that are not 4-aligned (K odd) take a loop of two LDRs (LDRD faults there). The
 * routine advances stream, bias and outputs in the struct. */
typedef struct csd_sblock {
    csd_block_start_t start;       /*  0 */
    int32_t *stream;               /* 24 */
    const int32_t *bias;           /* 28 */
    int32_t cstep, pstep;          /* 32, 36: bytes */
    int32_t row[3], brow[3];       /* 40, 52: stream and bias offsets of rows 1 .. 3 from row 0, bytes;
                                    * 0 for absent rows */
    int32_t set;                   /* 64 */
    int32_t wskip, outputs;        /* 68, 72: wstride - 4 * groups, bytes; outputs >= 1 */
    const int16_t *w;              /* 76 */
    int32_t tail;                  /* 80: K % 4 */
} csd_sblock_t;

/* row acc's value: + bias at r3 + boff, and with flags eq + the stream at r2 + off */
#define CSD_STREAM_ROW(acc, boff, off)          \
    "ldr lr, [r3" boff "]\n\t"                  \
    "add " acc ", " acc ", lr\n\t"              \
    "itt eq\n\t"                                \
    "ldreq lr, [r2" off "]\n\t"                 \
    "addeq " acc ", " acc ", lr\n\t"

__attribute__((naked, noinline, unused)) static void csd_stream_s16_asm(csd_sblock_t *b __attribute__((unused))) {
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
        "ldr r12, [r0, #64]\n\t"
        "cmp r12, #0\n\t"                       /* eq: add onto the stream (no flag changes below) */
        "ldrd r2, r3, [r0, #24]\n\t"            /* stream, bias */
        "add r12, r0, #40\n\t"
        "ldmia r12, {r8, r9, r10, r11, r12}\n\t" /* row1 .. row3, brow1, brow2 */
        CSD_STREAM_ROW("r4", "", "")
        CSD_STREAM_ROW("r5", ", r11", ", r8")
        CSD_STREAM_ROW("r6", ", r12", ", r9")
        "ldr r11, [r0, #60]\n\t"
        CSD_STREAM_ROW("r7", ", r11", ", r10")
        "str r7, [r2, r10]\n\t"
        "str r6, [r2, r9]\n\t"
        "str r5, [r2, r8]\n\t"
        "str r4, [r2]\n\t"
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
#undef CSD_STREAM_ROW

/* int8 weights into neurons (sink->out): the routine's struct from the sink. outputs >= 1 and 1 <= rows <= 4
 * (validated dims). */
static inline CSD_OUTLINE void csd_block_dot_s8_dsp(const int8_t *w, int32_t wstride, const uint32_t *block, int32_t k,
                                                    int32_t outputs, csd_sink_t *sink) {
    static const uint8_t trains[17] = {0, 1, 3, 7, 15, 31, 63, 127, 255, 255, 255, 255, 255, 255, 255, 255, 255};
    int32_t rows = sink->rows, rs = sink->rstep, ps = 4 * sink->prstep;
    csd_nblock_t b = {{block, k >> 2, {0, 0, 0, 0}}, sink->theta, sink->bias, 4 * sink->pstep, sink->shift, sink->out,
                      sink->cstep, rows == 4 && rs == 1, (uint32_t)sink->levels * (0x01010101u >> (32 - 8 * rows)),
                      sink->spikes, sink->set ? trains : 0, wstride - (k & ~3), outputs, w,
                      (k & 3) | (ps ? 256 : 0), {0, 0, 0}, {0, 0, 0}};
    for (int32_t r = 1; r < rows; r++) {
        b.row[r - 1] = r * rs;
        b.prow[r - 1] = r * ps;
    }
    csd_neurons_s8_asm(&b);
    sink->spikes = b.spikes;
}

/* int16 weights into the stream (sink->stream). */
static inline CSD_OUTLINE void csd_block_dot_s16_dsp(const int16_t *w, int32_t wstride, const uint32_t *block,
                                                     int32_t k, int32_t outputs, csd_sink_t *sink) {
    int32_t rows = sink->rows, rs = 4 * sink->rstep, ps = 4 * sink->prstep;
    csd_sblock_t b = {{block, k >> 2, {0, 0, 0, 0}}, sink->stream, sink->bias, 4 * sink->cstep, 4 * sink->pstep,
                      {0, 0, 0}, {0, 0, 0}, sink->set, 2 * (wstride - (k & ~3)), outputs, w, k & 3};
    for (int32_t r = 1; r < rows; r++) {
        b.row[r - 1] = r * rs;
        b.brow[r - 1] = r * ps;
    }
    csd_stream_s16_asm(&b);
}
#endif

/* The twin this target uses. */
static inline void csd_block_dot_s8(const int8_t *w, int32_t wstride, const uint32_t *block, int32_t k, int32_t outputs,
                                    csd_sink_t *sink) {
#if CSD_KERNELS_DSP
    csd_block_dot_s8_dsp(w, wstride, block, k, outputs, sink);
#else
    csd_block_dot_s8_plain(w, wstride, block, k, outputs, sink);
#endif
}

static inline void csd_block_dot_s16(const int16_t *w, int32_t wstride, const uint32_t *block, int32_t k,
                                     int32_t outputs, csd_sink_t *sink) {
#if CSD_KERNELS_DSP
    csd_block_dot_s16_dsp(w, wstride, block, k, outputs, sink);
#else
    csd_block_dot_s16_plain(w, wstride, block, k, outputs, sink);
#endif
}

#endif

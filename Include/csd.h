/*
 * csd.h - run a packed CSDformer spiking transformer (.csd image) from C.
 *
 * The runtime is integer-only, never allocates and keeps no global state:
 * the caller owns the image (read in place, e.g. from flash) and the arena
 * (scratch RAM), and both must outlive every session that uses them.
 * Several sessions, on the same or different images, may run side by side.
 * A session is not thread-safe: use one per thread.
 *
 *   csd_model_check  validate an image, read its metadata
 *   csd_arena_bytes  the exact arena a mode needs (also in the generated
 *                    NAME_ARENA_BYTES_FUSED / NAME_ARENA_BYTES_SPIKING)
 *   csd_session_init bind image + arena + mode (validates the image once)
 *   csd_session_run  one inference: uint8 pixels in, int32 logits out
 *
 *   csd_session_set_delay / csd_session_set_path  DIF delay; count or event path
 *   csd_session_set_stats / csd_session_set_observer  per-op statistics, profiling
 *
 * Stack: the runtime recurses nowhere and keeps a few dozen words per kernel
 * on the stack; expanded inputs, active-input lists and per-step currents
 * live in the arena (each op's kernel scratch, placed by the packer among the buffers, docs/FORMAT.md).
 * Measured high-water mark of the whole
 * example firmware (main + runtime, all passes) by stack painting under QEMU:
 * 2,068 bytes on Cortex-M4, 2,024 on RV32, 2,272 on Cortex-M0+ code; an image
 * with attention units (csdpack convert --low-ram) runs a deeper path: 2,540
 * on Cortex-M4, 2,608 on the micro:bit's Cortex-M0; reserve at least 3 KB
 * for the calls below (the micro:bit firmware's stack; docs/BENCHMARKS.md). On x86-64 hosts the kernels use an
 * 8 KB buffer on the stack (eight gathered rows at a time, the convs'
 * bordered inputs, the count path's window counts; docs/KERNELS.md):
 * reserve 16 KB there.
 *
 * Image format: docs/FORMAT.md; arithmetic: docs/SEMANTICS.md. C99.
 */
#ifndef CSD_H
#define CSD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- alignment: the image and the arena must be 16-byte aligned ----
 * CSD_ALIGN16 goes before a declaration: CSD_ALIGN16 static uint8_t arena[N];
 * Define it before including csd.h for a compiler not listed here. */
#ifndef CSD_ALIGN16
#if defined(__IAR_SYSTEMS_ICC__)                       /* IAR */
#define CSD_ALIGN16 _Pragma("data_alignment=16")
#elif defined(__CC_ARM)                                 /* Arm Compiler 5 */
#define CSD_ALIGN16 __align(16)
#elif defined(__GNUC__) || defined(__clang__)           /* GCC, Clang, Arm Compiler 6 */
#define CSD_ALIGN16 __attribute__((aligned(16)))
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define CSD_ALIGN16 _Alignas(16)
#else
#error "csd.h: define CSD_ALIGN16 (16-byte alignment of the declaration that follows) for this compiler"
#endif
#endif

/* ---- status codes (int32_t: a C enum's size varies with -fshort-enums) ---- */
#define CSD_OK                    0
#define CSD_E_NULL_ARGUMENT     (-1)  /* a required pointer is NULL */
#define CSD_E_TOO_SMALL         (-2)  /* fewer bytes than a header */
#define CSD_E_BAD_MAGIC         (-3)  /* not a .csd image */
#define CSD_E_FORMAT_VERSION    (-4)  /* format version not supported */
#define CSD_E_MATH_VERSION      (-5)  /* integer-math version not supported */
#define CSD_E_HEADER_SIZE       (-6)  /* header_bytes is not 128 */
#define CSD_E_TRUNCATED         (-7)  /* image_bytes exceeds size, or sizes inconsistent */
#define CSD_E_CRC               (-8)  /* CRC-32 mismatch: the image is damaged */
#define CSD_E_OP_TABLE          (-9)  /* op table layout inconsistent */
#define CSD_E_RESERVED         (-10)  /* a reserved field or padding byte is not zero */
#define CSD_E_METADATA         (-11)  /* T, L, D, shapes or classes out of range */
#define CSD_E_OP_KIND          (-12)  /* unknown op kind */
#define CSD_E_OP_FIELDS        (-13)  /* flags, shift, pool or heads not valid for the op */
#define CSD_E_SHAPE            (-14)  /* shapes invalid or not chained between ops */
#define CSD_E_TENSOR_BOUNDS    (-15)  /* a tensor unaligned or outside the data section */
#define CSD_E_ARENA_PLAN       (-16)  /* a buffer or kernel scratch unaligned, starting outside the arena, overlapping or unchained */
#define CSD_E_ARENA_BYTES      (-17)  /* header arena_bytes differs from the plan */
#define CSD_E_MACS             (-18)  /* header macs differs from the ops */
#define CSD_E_THRESHOLD        (-19)  /* a neuron threshold below 1 */
#define CSD_E_IMAGE_ALIGNMENT  (-20)  /* image pointer not 16-byte aligned */
#define CSD_E_ARENA_ALIGNMENT  (-21)  /* arena pointer not 16-byte aligned */
#define CSD_E_ARENA_TOO_SMALL  (-22)  /* arena_size below the need of the mode (and delay and path) */
#define CSD_E_MODE             (-23)  /* mode is not CSD_MODE_FUSED or CSD_MODE_SPIKING */
#define CSD_E_DELAY            (-24)  /* delay exceeds T */
#define CSD_E_INPUT_LENGTH     (-25)  /* input_len is not C*H*W */
#define CSD_E_OUTPUT_LENGTH    (-26)  /* logits_len below the number of classes */
#define CSD_E_SESSION          (-27)  /* session not initialized (or its init failed) */
#define CSD_E_ARENA_END        (-28)  /* a buffer or kernel scratch starts inside the arena but ends past its end */
#define CSD_E_STATS_ALIGNMENT  (-29)  /* the stats array is not 4-byte aligned */
#define CSD_E_PATH             (-30)  /* neither CSD_PATH_AUTO nor CSD_PATH_EVENT */

/* ---- execution modes ---- */
#define CSD_MODE_FUSED   0  /* counts x weights (MACs); bit-exact with spiking at D = T */
#define CSD_MODE_SPIKING 1  /* DIF neurons, any delay 0..T; at D >= T computed from spike counts */

/* ---- spiking execution paths (csd_session_set_path) ----
 * Both give the same trains, statistics and logits; they differ in the work.
 * AUTO: at D >= T with T <= 8 the *count path*: the spiking network's trains,
 *   statistics and logits computed from spike counts, which multiplies counts
 *   by weights like fused mode (exact because at D >= T every train is a
 *   prefix train, docs/SEMANTICS.md "Prefix trains"); otherwise the event path.
 * EVENT: the per-spike *event path* at every delay: every input spike adds its
 *   weight column at its step (additions selected by spikes), as an
 *   event-driven chip would; slower on a CPU. */
#define CSD_PATH_AUTO  0
#define CSD_PATH_EVENT 1

/* Metadata of a valid image (filled by csd_model_check). */
typedef struct csd_model_info {
    uint32_t image_bytes;          /* size of the image */
    uint32_t tensor_bytes;         /* bytes of weights, thresholds and biases */
    uint32_t arena_bytes_fused;    /* exact arena need, CSD_MODE_FUSED */
    uint32_t arena_bytes_spiking;  /* exact arena need, CSD_MODE_SPIKING */
    uint32_t macs;                 /* multiply-accumulates of one fused inference */
    uint32_t op_count;             /* ops in the image */
    uint16_t input_channels;       /* input is uint8 [C][H][W] */
    uint16_t input_height;
    uint16_t input_width;
    uint16_t classes;              /* number of logits */
    uint16_t tokens;               /* N */
    uint16_t width;                /* D */
    uint8_t  time_steps;           /* T (<= 16) */
    uint8_t  levels;               /* L (<= T) */
    uint8_t  delay;                /* default DIF delay D */
    uint8_t  reserved;
} csd_model_info_t;

/* Statistics of one op in the last run (see csd_session_set_stats). */
typedef struct csd_op_stats {
    uint32_t kind;          /* op kind, 1..7 (docs/FORMAT.md CSD_OP_*) */
    uint32_t neurons;       /* output neurons (0 for ops without neurons) */
    uint32_t spikes;        /* output spikes (fused: sum of counts) */
    uint32_t synaptic_ops;  /* additions selected by a spike (spiking mode) */
    uint32_t macs;          /* multiply-accumulates (fused; spiking: encoding layer only) */
} csd_op_stats_t;

/* A session: caller-owned storage, opaque. Initialize with csd_session_init. */
typedef struct csd_session {
    uint64_t opaque[12];
} csd_session_t;

/*
 * Validates an image completely: size, magic, versions, CRC-32, op table,
 * every tensor offset, the arena plan and shape chaining (docs/FORMAT.md).
 * image must be 16-byte aligned. info may be NULL.
 * Returns CSD_OK, CSD_E_NULL_ARGUMENT, CSD_E_IMAGE_ALIGNMENT, or the first
 * failed check's CSD_E_* (-2 .. -19, or CSD_E_ARENA_END). Reads at most size bytes.
 */
int32_t csd_model_check(const void *image, size_t size, csd_model_info_t *info);

/*
 * Stores in *bytes the exact arena size that mode needs for this image; for
 * CSD_MODE_SPIKING, at every delay and on either path. A spiking session whose
 * runs all take the count path (D >= T, CSD_PATH_AUTO, T <= 8) needs only
 * CSD_MODE_FUSED's: it runs in the fused plan's buffers (docs/FORMAT.md).
 * Returns CSD_OK, CSD_E_NULL_ARGUMENT, CSD_E_MODE or an image status.
 */
int32_t csd_arena_bytes(const void *image, size_t size, int32_t mode, size_t *bytes);

/*
 * Binds a session to an image and an arena in one mode, after validating the
 * image. The image (16-byte aligned, never written) and the arena (16-byte
 * aligned, at least csd_arena_bytes) must stay valid and the image unchanged
 * while the session is used. The delay starts at the image's default.
 * A CSD_MODE_SPIKING session may have the smaller CSD_MODE_FUSED arena when
 * the image's default delay is T and T <= 8 (the count path); it then refuses
 * the delays and the path that need more (csd_session_set_delay, _set_path).
 * On failure the session is left unusable (CSD_E_SESSION on later calls).
 * Returns CSD_OK, CSD_E_NULL_ARGUMENT, an image status, CSD_E_MODE,
 * CSD_E_ARENA_ALIGNMENT or CSD_E_ARENA_TOO_SMALL.
 */
int32_t csd_session_init(csd_session_t *session, const void *image, size_t size,
                         void *arena, size_t arena_size, int32_t mode);

/*
 * Sets the DIF delay D (0..T) used by CSD_MODE_SPIKING runs. With D = T the
 * logits equal CSD_MODE_FUSED's; smaller D trades that exactness for latency.
 * Returns CSD_OK, CSD_E_NULL_ARGUMENT, CSD_E_SESSION, CSD_E_DELAY, or
 * CSD_E_ARENA_TOO_SMALL (D < T on a session with only the count path's arena;
 * the delay is unchanged).
 */
int32_t csd_session_set_delay(csd_session_t *session, uint32_t delay);

/*
 * Chooses how CSD_MODE_SPIKING runs compute (CSD_PATH_AUTO, the default after
 * csd_session_init, or CSD_PATH_EVENT); results are the same either way.
 * Ignored in CSD_MODE_FUSED. Returns CSD_OK, CSD_E_NULL_ARGUMENT,
 * CSD_E_SESSION, CSD_E_PATH, or CSD_E_ARENA_TOO_SMALL (CSD_PATH_EVENT on a
 * session with only the count path's arena; the path is unchanged).
 */
int32_t csd_session_set_path(csd_session_t *session, int32_t path);

/*
 * Registers a caller-owned array (4-byte aligned) that every later run fills
 * with per-op statistics: op i goes to stats[i] when i < capacity.
 * stats = NULL with capacity 0 turns statistics off.
 * Returns CSD_OK, CSD_E_NULL_ARGUMENT (NULL with a capacity), CSD_E_STATS_ALIGNMENT
 * or CSD_E_SESSION.
 */
int32_t csd_session_set_stats(csd_session_t *session, csd_op_stats_t *stats, uint32_t capacity);

/*
 * Called by csd_session_run after each op, in order, with the op's index and
 * statistics (valid during the call only). For per-layer profiling: read a
 * cycle counter (DWT->CYCCNT on Cortex-M) in the observer; the example
 * firmware marks an address that the QEMU instruction counter watches. The
 * attention pair (ATTN_SCORES then ATTN_VALUES) runs as one loop at its
 * first op: the time between the two calls is only the dispatch, and each
 * op still gets its own statistics. Likewise in the fused plan (fused mode,
 * and spiking at D >= T) a band unit's two ops and an attention unit's six
 * (docs/FORMAT.md, "Bands", "Attention units") run as one loop and are
 * observed one after the other when it ends.
 */
typedef void (*csd_op_observer_t)(void *user, uint32_t op_index, const csd_op_stats_t *stats);

/*
 * Registers an observer (and its user pointer) that every later run calls
 * after each op; observer = NULL turns it off. Statistics are collected for
 * the call whether or not a stats array is registered.
 * Returns CSD_OK, CSD_E_NULL_ARGUMENT or CSD_E_SESSION.
 */
int32_t csd_session_set_observer(csd_session_t *session, csd_op_observer_t observer, void *user);

/*
 * Runs one inference. input: uint8 pixels [C][H][W], input_len = C*H*W.
 * logits: int32, logits_len >= classes; all logits share one unit, so the
 * prediction is the index of the largest (the first on ties).
 * Returns CSD_OK, CSD_E_NULL_ARGUMENT, CSD_E_SESSION, CSD_E_INPUT_LENGTH or
 * CSD_E_OUTPUT_LENGTH; it never fails once those hold.
 */
int32_t csd_session_run(csd_session_t *session, const uint8_t *input, size_t input_len,
                        int32_t *logits, size_t logits_len);

/* A constant, NUL-terminated description of a status (never NULL). */
const char *csd_status_str(int32_t status);

#ifdef __cplusplus
}
#endif

#endif /* CSD_H */

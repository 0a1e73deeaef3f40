/*
 * Bare-metal demo, shared by every board port: runs a packed model (the
 * reference fmnist_tiny unless the build says otherwise: FW_MODEL names its
 * C symbol, FW_MODEL_HEADER its generated header; linked into flash as const
 * data) on the golden images in four passes through Include/csd.h: fused,
 * spiking at GOLDEN_DELAY (D = T unless FIRMWARE_DELAY says otherwise: the
 * count path), spiking at GOLDEN_EVENT_DELAY < T (the per-spike event path)
 * and spiking at GOLDEN_DELAY on the event path (CSD_PATH_EVENT), so both
 * paths are measured at D = T. Every logit of every pass is checked against
 * the NumPy reference (golden.h).
 *
 * Built with FW_FUSED_PLAN_ONLY (firmware.mk: FIRMWARE_PLAN=fused, and always
 * on the micro:bit), the static arena is the fused plan's (arena_bytes_fused)
 * and only the two passes that run in it run: fused, and spiking at
 * GOLDEN_DELAY on the count path (CSD_PATH_AUTO). The event passes need the
 * spiking plan's arena and are not built in. When the model has no count path
 * at that delay (T > 8, or a delay below T), the spiking pass cannot run in
 * the fused plan: it prints "result: mode=spiking skipped=1" and the reason,
 * and the runner checks that the reason holds.
 *
 * Output is line-oriented text on the board's UART; lines starting with
 * "result:" carry key=value fields that Firmware/common/run.py parses.
 * csd_bench_begin / csd_bench_end bracket each measured csd_session_run; the
 * QEMU plugin (Firmware/qemu-plugin/counter.c) counts the guest instructions
 * between them. The order of the measured pairs is fixed: one empty
 * calibration pair, then GOLDEN_COUNT runs of each pass in pass order.
 * Per-layer counts come from csd_bench_mark: three calibration marks (two
 * empty observer calls), then per pass one mark before the statistics run of
 * image 0 and one after each op (from a csd_session_set_observer callback).
 * A skipped pass has neither pairs nor marks.
 *
 * Exit status (through the board's exit device): 0 only if every logit of
 * every image in every pass equals the golden value and, on cores with the DSP
 * extension, the Cortex-M4 assembly twins agree with the Swift kernels on
 * random cases (Tests/Firmware/KernelCheck.swift, linked in by firmware.mk),
 * else 1.
 */
#include <stddef.h>
#include <stdint.h>

#include "board.h"
#include "csd.h"
#include "fmt.h"
#include "golden.h"

#ifndef FW_MODEL
#define FW_MODEL fmnist_tiny
#define FW_MODEL_HEADER "fmnist_tiny.h"
#endif
#include FW_MODEL_HEADER

#define FW_CAT_(a, b) a##b
#define FW_CAT(a, b) FW_CAT_(a, b)
#define MODEL_IMAGE FW_MODEL
#define MODEL_SIZE FW_CAT(FW_MODEL, _size)
#define MODEL_ARENA_FUSED FW_CAT(FW_MODEL, _ARENA_BYTES_FUSED)
#define MODEL_ARENA_SPIKING FW_CAT(FW_MODEL, _ARENA_BYTES_SPIKING)

#if defined(__ARM_FEATURE_DSP)
/* Tests/Firmware/KernelCheck.swift: the assembly twins against the Swift kernels, in `memory` (the
 * arena, before any session uses it); returns the mismatches. */
uint32_t kernel_check_run(void *memory, uint32_t bytes, uint32_t *cases);
#endif

/* Prints "result: kernels cases=N mismatches=M dsp=0|1" (no twins to check on other cores). */
static uint32_t kernel_check(uint8_t *memory, uint32_t bytes) {
    uint32_t cases = 0, mismatches = 0;
#if defined(__ARM_FEATURE_DSP)
    mismatches = kernel_check_run(memory, bytes, &cases);
#else
    (void)memory, (void)bytes;
#endif
    put_str("result: kernels");
    put_kv("cases", cases);
    put_kv("mismatches", mismatches);
#if defined(__ARM_FEATURE_DSP)
    put_kv("dsp", 1);
#else
    put_kv("dsp", 0);
#endif
    put_nl();
    return mismatches;
}

#define MAX_ARENA(a, b) ((a) > (b) ? (a) : (b))
#if defined(__ARM_FEATURE_DSP)
/* What the kernel check carves out of the arena (21.3 KB for its largest case, with alignment;
 * it traps if given less): a small model's arena is grown to it. */
#define KERNEL_CHECK_BYTES 22528u
#else
#define KERNEL_CHECK_BYTES 0u
#endif
#if defined(FW_FUSED_PLAN_ONLY)
#define ARENA_BYTES MAX_ARENA(MODEL_ARENA_FUSED, KERNEL_CHECK_BYTES)
#define PASSES 2
#define PLAN_NAME "fused"
#else
#define ARENA_BYTES MAX_ARENA(MAX_ARENA(MODEL_ARENA_FUSED, MODEL_ARENA_SPIKING), KERNEL_CHECK_BYTES)
#define PASSES 4
#endif
#define MAX_OPS GOLDEN_OPS  /* stats capacity: the model's op count (golden.h, from the image) */
#define MAX_CLASSES 16
#define SHOW_IMAGES 3     /* images whose logits are printed */

/* One arena for every pass (sessions run one after the other), sized by the
 * generated macros: the spiking need, the larger one (and the kernel check's);
 * in a fused-plan-only build the fused need (and the kernel check's). */
CSD_ALIGN16 static uint8_t arena[ARENA_BYTES];
static csd_op_stats_t op_stats[MAX_OPS] __attribute__((aligned(4)));
static csd_session_t session;

/* Markers for the instruction counter: never inlined, never merged (distinct
 * bodies), their entry addresses are read from the ELF by the runner. */
volatile uint32_t csd_bench_phase;
__attribute__((noinline, used)) void csd_bench_begin(void) { csd_bench_phase = 1u; }
__attribute__((noinline, used)) void csd_bench_end(void) { csd_bench_phase = 2u; }
/* Per-layer counts: marked before a profiled run and after each of its ops. */
__attribute__((noinline, used)) void csd_bench_mark(void) { csd_bench_phase = 3u; }

static void mark_op(void *user, uint32_t op_index, const csd_op_stats_t *stats) {
    (void)user;
    (void)op_index;
    (void)stats;
    csd_bench_mark();
}

static const char *const kClassNames[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

static void fail(const char *what, int32_t status) {
    put_str("error: ");
    put_str(what);
    put_str(": ");
    put_str(csd_status_str(status));
    put_str(" (");
    put_i32(status);
    put_str(")");
    put_nl();
    board_exit(1);
}

static uint32_t argmax(const int32_t *v, uint32_t n) {
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

static uint32_t stack_high_water(void) {
    const uint32_t *p = __stack_bottom;
    while (p < __stack_top && *p == CSD_STACK_PAINT) p++;
    return (uint32_t)((uintptr_t)__stack_top - (uintptr_t)p);
}

static const char *op_name(uint32_t kind) {
    static const char *const names[8] = {"?", "conv3x3", "linear", "maxpool", "stream_neuron",
                                         "attn_scores", "attn_values", "classifier"};
    return kind < 8 ? names[kind] : "?";
}

typedef struct pass {
    const char *name;  /* "fused", "spiking" (count path at D = T), "event" (D < T), "spiking_event" */
    int32_t mode;
    uint32_t delay;
    int32_t path;      /* CSD_PATH_AUTO or CSD_PATH_EVENT */
    const int32_t (*expected)[GOLDEN_CLASSES];
} pass_t;

typedef struct pass_result {
    uint32_t correct, exact, stats_exact, macs, synaptic_ops, spikes;
} pass_result_t;

static uint32_t same_logits(const int32_t *logits, const int32_t *expected, uint32_t classes) {
    uint32_t same = 1;
    for (uint32_t k = 0; k < classes; k++) same &= logits[k] == expected[k];
    return same;
}

/* Whether a spiking pass takes the count path: D >= T, CSD_PATH_AUTO, T <= 8 and the image's default
 * delay >= T (csd.h, csd_session_init); it then runs in the fused plan's buffers. */
static int count_path(const pass_t *pass, const csd_model_info_t *info) {
    return pass->mode == CSD_MODE_SPIKING && pass->path == CSD_PATH_AUTO && pass->delay >= info->time_steps &&
           info->time_steps <= 8 && info->delay >= info->time_steps;
}

/* The arena bytes a pass gives its session: the spiking pass at D >= T that takes the count path
 * runs in the fused plan's buffers, so it gets only arena_bytes_fused of the static arena
 * (docs/FORMAT.md, "Arena plan"); the others get it all. */
static size_t pass_arena(const pass_t *pass, const csd_model_info_t *info) {
    return count_path(pass, info) ? info->arena_bytes_fused : sizeof arena;
}

#if defined(FW_FUSED_PLAN_ONLY)
/* Whether a pass runs in the fused plan's arena: the fused pass, and a spiking pass on the count path. */
static int in_fused_plan(const pass_t *pass, const csd_model_info_t *info) {
    return pass->mode == CSD_MODE_FUSED || count_path(pass, info);
}

/* A spiking pass that needs the spiking plan: named and skipped, with the reason. */
static void skip_pass(const pass_t *pass, const csd_model_info_t *info) {
    put_str(pass->name);
    put_str(": skipped: D = ");
    put_u32(pass->delay);
    put_str(" is not on the count path here (T = ");
    put_u32(info->time_steps);
    put_str(", image D = ");
    put_u32(info->delay);
    put_str("; it needs D >= T, image D >= T and T <= 8), so it needs the spiking plan's arena (");
    put_u32(info->arena_bytes_spiking);
    put_str(" bytes), not built in");
    put_nl();
    put_str("result: mode=");
    put_str(pass->name);
    put_kv("delay", pass->delay);
    put_kv("skipped", 1);
    put_nl();
}
#endif

static void run_pass(const pass_t *pass, const csd_model_info_t *info, pass_result_t *r) {
    const size_t pixels = (size_t)info->input_channels * info->input_height * info->input_width;
    int32_t logits[MAX_CLASSES];
    int32_t status = csd_session_init(&session, MODEL_IMAGE, MODEL_SIZE, arena, pass_arena(pass, info), pass->mode);
    if (status != CSD_OK) fail("csd_session_init", status);
    if (pass->mode == CSD_MODE_SPIKING) {
        status = csd_session_set_delay(&session, pass->delay);
        if (status != CSD_OK) fail("csd_session_set_delay", status);
        status = csd_session_set_path(&session, pass->path);
        if (status != CSD_OK) fail("csd_session_set_path", status);
    }

    /* Statistics and per-layer instruction counts of image 0, in a run of its
     * own outside the measured pairs (collecting them costs instructions). */
    status = csd_session_set_stats(&session, op_stats, MAX_OPS);
    if (status != CSD_OK) fail("csd_session_set_stats", status);
    status = csd_session_set_observer(&session, mark_op, NULL);
    if (status != CSD_OK) fail("csd_session_set_observer", status);
    csd_bench_mark();
    status = csd_session_run(&session, golden_inputs[0], pixels, logits, MAX_CLASSES);
    if (status != CSD_OK) fail("csd_session_run", status);
    r->stats_exact = same_logits(logits, pass->expected[0], info->classes);  /* the stats run must match too */
    r->macs = r->synaptic_ops = r->spikes = 0;
    put_str(pass->name);
    put_str(" stats of image 0 (per op):");
    put_nl();
    for (uint32_t i = 0; i < info->op_count && i < MAX_OPS; i++) {
        put_str("  op ");
        put_u32(i);
        put_str(" ");
        put_str(op_name(op_stats[i].kind));
        put_kv("neurons", op_stats[i].neurons);
        put_kv("spikes", op_stats[i].spikes);
        put_kv("synaptic_ops", op_stats[i].synaptic_ops);
        put_kv("macs", op_stats[i].macs);
        put_nl();
        r->macs += op_stats[i].macs;
        r->synaptic_ops += op_stats[i].synaptic_ops;
        r->spikes += op_stats[i].spikes;
    }
    status = csd_session_set_stats(&session, NULL, 0);
    if (status != CSD_OK) fail("csd_session_set_stats", status);
    status = csd_session_set_observer(&session, NULL, NULL);
    if (status != CSD_OK) fail("csd_session_set_observer", status);

    r->correct = 0;
    r->exact = 0;
    for (uint32_t i = 0; i < GOLDEN_COUNT; i++) {
        csd_bench_begin();
        status = csd_session_run(&session, golden_inputs[i], pixels, logits, MAX_CLASSES);
        csd_bench_end();
        if (status != CSD_OK) fail("csd_session_run", status);
        uint32_t predicted = argmax(logits, info->classes);
        uint32_t same = same_logits(logits, pass->expected[i], info->classes);
        r->correct += predicted == golden_labels[i];
        r->exact += same;
        if (i < SHOW_IMAGES || !same) {
            put_str(pass->name);
            put_str(" image ");
            put_u32(i);
            put_str(": class ");
            put_u32(predicted);
            if (GOLDEN_LABELLED) {
                put_str(" label ");
                put_u32(golden_labels[i]);
                put_str(" (");
                put_str(info->classes == 10 ? kClassNames[predicted] : "?");
                put_str(")");
            }
            put_str(same ? " logits" : " LOGITS DIFFER FROM GOLDEN");
            for (uint32_t k = 0; k < info->classes; k++) {
                board_putc(' ');
                put_i32(logits[k]);
            }
            put_nl();
        }
    }
    put_str("result: mode=");
    put_str(pass->name);
    put_kv("delay", pass->mode == CSD_MODE_SPIKING ? pass->delay : 0);
    put_kv("arena", (uint32_t)pass_arena(pass, info));
    put_kv("images", GOLDEN_COUNT);
    put_kv("labelled", GOLDEN_LABELLED);
    put_kv("correct", r->correct);
    put_kv("bit_exact", r->exact);
    put_kv("stats_run_exact", r->stats_exact);
    put_kv("macs", r->macs);
    put_kv("synaptic_ops", r->synaptic_ops);
    put_kv("spikes", r->spikes);
    put_nl();
}

int main(void) {
    board_init();
    put_str("csd firmware: board=");
    put_str(board_name);
    put_str(" cpu=");
    put_str(board_cpu);
    put_nl();

    csd_model_info_t info;
    int32_t status = csd_model_check(MODEL_IMAGE, MODEL_SIZE, &info);
    if (status != CSD_OK) fail("csd_model_check", status);
    if (info.classes > MAX_CLASSES || info.classes != GOLDEN_CLASSES || info.op_count > MAX_OPS ||
        (uint32_t)info.input_channels * info.input_height * info.input_width != GOLDEN_PIXELS)
        fail("model does not match golden.h", CSD_E_METADATA);
    put_str("model: image_bytes=");
    put_u32(info.image_bytes);
    put_str(" ops=");
    put_u32(info.op_count);
    put_str(" input=");
    put_u32(info.input_channels);
    board_putc('x');
    put_u32(info.input_height);
    board_putc('x');
    put_u32(info.input_width);
    put_str(" classes=");
    put_u32(info.classes);
    put_str(" tokens=");
    put_u32(info.tokens);
    put_str(" width=");
    put_u32(info.width);
    put_str(" T=");
    put_u32(info.time_steps);
    put_str(" L=");
    put_u32(info.levels);
    put_str(" D=");
    put_u32(info.delay);
    put_nl();
    put_str("result: model");
    put_kv("image_bytes", info.image_bytes);
    put_kv("tensor_bytes", info.tensor_bytes);
    put_kv("macs", info.macs);
    put_kv("arena_fused", info.arena_bytes_fused);
    put_kv("arena_spiking", info.arena_bytes_spiking);
    put_kv("arena_static", (uint32_t)sizeof arena);
    put_kv("images", GOLDEN_COUNT);
#if defined(FW_FUSED_PLAN_ONLY)
    put_str(" plan=" PLAN_NAME);
#endif
    put_nl();

    /* Pair 0: an empty begin/end, the runner subtracts its count (call overhead). */
    csd_bench_begin();
    csd_bench_end();
    /* Marks 0-2: the cost of an observer call that only marks (mark 2 - mark 1). */
    csd_bench_mark();
    mark_op(NULL, 0, NULL);
    mark_op(NULL, 0, NULL);

    uint32_t kernel_mismatches = kernel_check(arena, sizeof arena);

    static const pass_t passes[PASSES] = {
        {"fused", CSD_MODE_FUSED, 0, CSD_PATH_AUTO, golden_logits},
        {"spiking", CSD_MODE_SPIKING, GOLDEN_DELAY, CSD_PATH_AUTO, golden_logits_spiking},
#if !defined(FW_FUSED_PLAN_ONLY)
        {"event", CSD_MODE_SPIKING, GOLDEN_EVENT_DELAY, CSD_PATH_AUTO, golden_logits_event},
        {"spiking_event", CSD_MODE_SPIKING, GOLDEN_DELAY, CSD_PATH_EVENT, golden_logits_spiking},
#endif
    };
    static pass_result_t results[PASSES];  /* static: the stack high-water mark is the runtime's */
    int ok = kernel_mismatches == 0;
    for (uint32_t p = 0; p < PASSES; p++) {
#if defined(FW_FUSED_PLAN_ONLY)
        if (!in_fused_plan(&passes[p], &info)) {
            skip_pass(&passes[p], &info);
            continue;
        }
#endif
        run_pass(&passes[p], &info, &results[p]);
        ok &= results[p].exact == GOLDEN_COUNT && results[p].stats_exact;
    }

    uint32_t stack_size = (uint32_t)((uintptr_t)__stack_top - (uintptr_t)__stack_bottom);
    put_str("result: stack");
    put_kv("high_water", stack_high_water());
    put_kv("size", stack_size);
    put_nl();

#if defined(FW_FUSED_PLAN_ONLY)
    put_str(ok ? "PASS: every logit equals the golden value in every pass run (fused plan only); kernel twins agree"
               : "FAIL: logits differ from golden, or the kernel twins disagree");
#else
    put_str(ok ? "PASS: every logit equals the golden value in every pass; kernel twins agree"
               : "FAIL: logits differ from golden, or the kernel twins disagree");
#endif
    put_nl();
    board_exit(ok ? 0 : 1);
}

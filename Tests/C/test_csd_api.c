/*
 * cmocka tests of the C API (Include/csd.h) against the Embedded Swift
 * runtime linked as a plain static library into this C program.
 *
 * Usage: test_csd_api MODEL.csd GOLDEN_DIR [TESTDATA_DIR]
 *   GOLDEN_DIR holds inputs.u8 and logits_fused.i32 from `python -m csdformer.golden`
 *   (the NumPy reference's logits: the runtime must match them bit for bit).
 *   TESTDATA_DIR (default Tests/TestData, relative to the repository root where `make test-c`
 *   runs) holds the committed fmnist_tiny case: model.csd, inputs.u8 and spiking_D0.logits.i32,
 *   the reference's logits at D = 0. A missing file stops the program with its path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "csd.h"

static uint8_t *g_image;      /* 16-byte aligned copy of the model */
static size_t g_image_size;
static uint8_t *g_inputs;
static int32_t *g_expected;
static size_t g_count;
static csd_model_info_t g_info;
/* The committed golden case Tests/TestData/fmnist_tiny: the reference model, its inputs and the
 * NumPy reference's spiking logits at D = 0. */
static uint8_t *g_d0_image;
static size_t g_d0_image_size;
static uint8_t *g_d0_inputs;
static int32_t *g_d0_logits;
static size_t g_d0_count;

static void *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "test_csd_api: cannot open %s (a required test input is missing)\n", path); exit(2); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = aligned_alloc(16, ((size_t)n + 15) / 16 * 16 + 16);
    if (!p || fread(p, 1, (size_t)n, f) != (size_t)n) { fprintf(stderr, "cannot read %s\n", path); exit(2); }
    fclose(f);
    *size = (size_t)n;
    return p;
}

static void *arena_alloc(size_t n) { return aligned_alloc(16, (n + 15) / 16 * 16 + 16); }

static size_t pixels(void) { return (size_t)g_info.input_channels * g_info.input_height * g_info.input_width; }

/* CRC-32/ISO-HDLC over the image with the CRC field (bytes 16..19) read as zero, stored back. */
static void reseal(uint8_t *img, size_t n) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (i >= 16 && i < 20) ? 0 : img[i];
        crc ^= b;
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    crc = ~crc;
    for (int i = 0; i < 4; i++) img[16 + i] = (uint8_t)(crc >> (8 * i));
}

static uint8_t *image_copy(void) {
    uint8_t *p = aligned_alloc(16, (g_image_size + 15) / 16 * 16);
    memcpy(p, g_image, g_image_size);
    return p;
}

static void test_model_check(void **state) {
    (void)state;
    csd_model_info_t info;
    memset(&info, 0xAB, sizeof info);
    assert_int_equal(csd_model_check(g_image, g_image_size, &info), CSD_OK);
    assert_int_equal(info.image_bytes, g_image_size);
    assert_int_equal(info.classes, 10);
    assert_int_equal(info.input_channels * info.input_height * info.input_width, 784);
    assert_true(info.time_steps >= 1 && info.time_steps <= 16);
    assert_true(info.levels >= 1 && info.levels <= info.time_steps);
    assert_true(info.arena_bytes_fused > 0 && info.arena_bytes_fused % 16 == 0);
    assert_true(info.arena_bytes_spiking >= info.arena_bytes_fused);
    assert_true(info.macs > 1000000u);
    assert_true(info.tensor_bytes < info.image_bytes);
    assert_int_equal(info.reserved, 0);
    assert_int_equal(csd_model_check(g_image, g_image_size, NULL), CSD_OK);  /* info is optional */
}

static void test_arena_bytes(void **state) {
    (void)state;
    size_t fused = 0, spiking = 0;
    assert_int_equal(csd_arena_bytes(g_image, g_image_size, CSD_MODE_FUSED, &fused), CSD_OK);
    assert_int_equal(csd_arena_bytes(g_image, g_image_size, CSD_MODE_SPIKING, &spiking), CSD_OK);
    assert_int_equal(fused, g_info.arena_bytes_fused);
    assert_int_equal(spiking, g_info.arena_bytes_spiking);
    assert_int_equal(csd_arena_bytes(g_image, g_image_size, 2, &fused), CSD_E_MODE);
    assert_int_equal(csd_arena_bytes(g_image, g_image_size, -1, &fused), CSD_E_MODE);
    assert_int_equal(csd_arena_bytes(g_image, g_image_size, CSD_MODE_FUSED, NULL), CSD_E_NULL_ARGUMENT);
}

static void test_status_strings(void **state) {
    (void)state;
    for (int32_t s = CSD_E_PATH; s <= 0; s++) {  /* CSD_E_PATH (-30): the last code */
        const char *m = csd_status_str(s);
        assert_non_null(m);
        assert_true(strlen(m) > 0);
        assert_string_not_equal(m, "unknown status");
        for (int32_t r = s + 1; r <= 0; r++) assert_string_not_equal(m, csd_status_str(r));  /* one text per code */
    }
    assert_int_equal(CSD_E_ARENA_END, -28);
    assert_int_equal(CSD_E_STATS_ALIGNMENT, -29);
    assert_string_equal(csd_status_str(CSD_OK), "ok");
    assert_string_equal(csd_status_str(CSD_E_CRC), "CRC-32 mismatch");
    assert_string_equal(csd_status_str(CSD_E_SESSION), "session not initialized");
    assert_string_equal(csd_status_str(CSD_E_ARENA_END), "buffer ends past the arena");
    assert_string_equal(csd_status_str(CSD_E_STATS_ALIGNMENT), "stats array not 4-byte aligned");
    assert_int_equal(CSD_E_PATH, -30);
    assert_string_equal(csd_status_str(CSD_E_PATH), "unknown spiking path");
    assert_string_equal(csd_status_str(-31), "unknown status");
    assert_string_equal(csd_status_str(7), "unknown status");
}

static void test_null_arguments(void **state) {
    (void)state;
    csd_session_t s;
    void *arena = arena_alloc(g_info.arena_bytes_fused);
    int32_t logits[10];
    assert_int_equal(csd_model_check(NULL, g_image_size, NULL), CSD_E_NULL_ARGUMENT);
    assert_int_equal(csd_arena_bytes(NULL, g_image_size, CSD_MODE_FUSED, &(size_t){0}), CSD_E_NULL_ARGUMENT);
    assert_int_equal(csd_session_init(NULL, g_image, g_image_size, arena, g_info.arena_bytes_fused, CSD_MODE_FUSED), CSD_E_NULL_ARGUMENT);
    assert_int_equal(csd_session_init(&s, NULL, g_image_size, arena, g_info.arena_bytes_fused, CSD_MODE_FUSED), CSD_E_NULL_ARGUMENT);
    assert_int_equal(csd_session_init(&s, g_image, g_image_size, NULL, g_info.arena_bytes_fused, CSD_MODE_FUSED), CSD_E_NULL_ARGUMENT);
    assert_int_equal(csd_session_init(&s, g_image, g_image_size, arena, g_info.arena_bytes_fused, CSD_MODE_FUSED), CSD_OK);
    assert_int_equal(csd_session_run(NULL, g_inputs, pixels(), logits, 10), CSD_E_NULL_ARGUMENT);
    assert_int_equal(csd_session_run(&s, NULL, pixels(), logits, 10), CSD_E_NULL_ARGUMENT);
    assert_int_equal(csd_session_run(&s, g_inputs, pixels(), NULL, 10), CSD_E_NULL_ARGUMENT);
    assert_int_equal(csd_session_set_delay(NULL, 0), CSD_E_NULL_ARGUMENT);
    assert_int_equal(csd_session_set_stats(NULL, NULL, 0), CSD_E_NULL_ARGUMENT);
    assert_int_equal(csd_session_set_stats(&s, NULL, 4), CSD_E_NULL_ARGUMENT);
    assert_int_equal(csd_session_set_stats(&s, NULL, 0), CSD_OK);
    /* a misaligned statistics array has a status of its own and changes nothing */
    static csd_op_stats_t stats[4];
    assert_int_equal(csd_session_set_stats(&s, (csd_op_stats_t *)((uint8_t *)stats + 2), 2), CSD_E_STATS_ALIGNMENT);
    assert_int_equal(csd_session_set_stats(&s, stats, 4), CSD_OK);
    free(arena);
}

static void test_alignment(void **state) {
    (void)state;
    csd_session_t s;
    uint8_t *arena = arena_alloc(g_info.arena_bytes_fused + 16);
    uint8_t *shifted = aligned_alloc(16, (g_image_size + 32) / 16 * 16);
    memcpy(shifted + 1, g_image, g_image_size);
    assert_int_equal(csd_session_init(&s, g_image, g_image_size, arena + 1, g_info.arena_bytes_fused, CSD_MODE_FUSED), CSD_E_ARENA_ALIGNMENT);
    assert_int_equal(csd_session_init(&s, g_image, g_image_size, arena + 8, g_info.arena_bytes_fused, CSD_MODE_FUSED), CSD_E_ARENA_ALIGNMENT);
    assert_int_equal(csd_model_check(shifted + 1, g_image_size, NULL), CSD_E_IMAGE_ALIGNMENT);
    assert_int_equal(csd_session_init(&s, shifted + 1, g_image_size, arena, g_info.arena_bytes_fused, CSD_MODE_FUSED), CSD_E_IMAGE_ALIGNMENT);
    free(arena);
    free(shifted);
}

/* The smallest arena each mode accepts: the fused plan's for fused mode, and for a spiking session at the
 * image's D = T, which takes the count path in the fused plan's buffers; a byte less is refused. Such a
 * session refuses the settings that need the event path's (spiking) arena and keeps its own. */
static void test_arena_exact_size(void **state) {
    (void)state;
    int32_t modes[2] = {CSD_MODE_FUSED, CSD_MODE_SPIKING};
    for (int m = 0; m < 2; m++) {
        size_t need = g_info.arena_bytes_fused;
        csd_session_t s;
        uint8_t *arena = arena_alloc(need);
        int32_t logits[10];
        assert_int_equal(csd_session_init(&s, g_image, g_image_size, arena, need - 1, modes[m]), CSD_E_ARENA_TOO_SMALL);
        assert_int_equal(csd_session_run(&s, g_inputs, pixels(), logits, 10), CSD_E_SESSION);  /* failed init */
        assert_int_equal(csd_session_init(&s, g_image, g_image_size, arena, need, modes[m]), CSD_OK);
        assert_int_equal(csd_session_run(&s, g_inputs, pixels(), logits, 10), CSD_OK);
        assert_memory_equal(logits, g_expected, sizeof logits);  /* D = T: spiking gives the fused logits */
        if (modes[m] == CSD_MODE_SPIKING) {
            assert_int_equal(csd_session_set_delay(&s, g_info.time_steps - 1), CSD_E_ARENA_TOO_SMALL);
            assert_int_equal(csd_session_set_path(&s, CSD_PATH_EVENT), CSD_E_ARENA_TOO_SMALL);
            assert_int_equal(csd_session_run(&s, g_inputs, pixels(), logits, 10), CSD_OK);  /* still D = T, count path */
            assert_memory_equal(logits, g_expected, sizeof logits);
        }
        free(arena);
    }
    /* the spiking need runs every delay and path; a byte less refuses them */
    size_t need = g_info.arena_bytes_spiking;
    uint8_t *arena = arena_alloc(need);
    csd_session_t s;
    assert_int_equal(csd_session_init(&s, g_image, g_image_size, arena, need - 1, CSD_MODE_SPIKING), CSD_OK);
    assert_int_equal(csd_session_set_delay(&s, 0), CSD_E_ARENA_TOO_SMALL);
    assert_int_equal(csd_session_init(&s, g_image, g_image_size, arena, need, CSD_MODE_SPIKING), CSD_OK);
    assert_int_equal(csd_session_set_delay(&s, 0), CSD_OK);
    assert_int_equal(csd_session_set_path(&s, CSD_PATH_EVENT), CSD_OK);
    free(arena);
}

static void test_lengths_and_mode(void **state) {
    (void)state;
    csd_session_t s;
    uint8_t *arena = arena_alloc(g_info.arena_bytes_fused);
    int32_t logits[11];
    assert_int_equal(csd_session_init(&s, g_image, g_image_size, arena, g_info.arena_bytes_fused, 7), CSD_E_MODE);
    assert_int_equal(csd_session_init(&s, g_image, g_image_size, arena, g_info.arena_bytes_fused, CSD_MODE_FUSED), CSD_OK);
    assert_int_equal(csd_session_run(&s, g_inputs, pixels() - 1, logits, 10), CSD_E_INPUT_LENGTH);
    assert_int_equal(csd_session_run(&s, g_inputs, pixels() + 1, logits, 10), CSD_E_INPUT_LENGTH);
    assert_int_equal(csd_session_run(&s, g_inputs, pixels(), logits, 9), CSD_E_OUTPUT_LENGTH);
    logits[10] = 0x5A5A5A5A;
    assert_int_equal(csd_session_run(&s, g_inputs, pixels(), logits, 11), CSD_OK);
    assert_memory_equal(logits, g_expected, 10 * sizeof logits[0]);
    assert_int_equal(logits[10], 0x5A5A5A5A);  /* nothing written past classes */
    free(arena);
}

static void test_uninitialized_session(void **state) {
    (void)state;
    csd_session_t s;
    int32_t logits[10];
    memset(&s, 0, sizeof s);
    assert_int_equal(csd_session_run(&s, g_inputs, pixels(), logits, 10), CSD_E_SESSION);
    assert_int_equal(csd_session_set_delay(&s, 1), CSD_E_SESSION);
    assert_int_equal(csd_session_set_stats(&s, NULL, 0), CSD_E_SESSION);
    assert_int_equal(csd_session_set_observer(&s, NULL, NULL), CSD_E_SESSION);
}

/* Each header corruption gives its own status. */
static void test_header_corruptions(void **state) {
    (void)state;
    struct { size_t offset; uint8_t value; int reseal; int32_t status; } cases[] = {
        {0, 0x00, 0, CSD_E_BAD_MAGIC},
        {4, 0x01, 0, CSD_E_FORMAT_VERSION},  /* version 1 (before the attention pair) */
        {4, 0x03, 0, CSD_E_FORMAT_VERSION},
        {6, 0x02, 0, CSD_E_MATH_VERSION},
        {8, 0x40, 0, CSD_E_HEADER_SIZE},
        {200, 0x00, 0, CSD_E_CRC},          /* inside the op table, CRC not recomputed */
        {24, 0x20, 1, CSD_E_OP_TABLE},      /* op_record_bytes = 32 */
        {100, 0x01, 1, CSD_E_RESERVED},
        {48, 0x00, 1, CSD_E_METADATA},      /* T = 0 */
        {128, 0x09, 1, CSD_E_OP_KIND},      /* first op's kind */
        {131, 0x02, 1, CSD_E_OP_FIELDS},    /* first op pools */
        {138, 0x05, 1, CSD_E_SHAPE},        /* first op's output channels */
        {172, 0x01, 1, CSD_E_TENSOR_BOUNDS},/* first op's weight offset, unaligned */
        {164, 0x10, 1, CSD_E_ARENA_PLAN},   /* first op's fused output offset */
        {54, 0x01, 1, CSD_E_ARENA_BYTES},   /* arena_bytes[0] + 64 KiB: larger than the plan needs */
        {60, 0x00, 1, CSD_E_MACS},          /* macs low byte */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *img = image_copy();
        if (img[cases[i].offset] == cases[i].value) img[cases[i].offset] ^= 0x11;
        else img[cases[i].offset] = cases[i].value;
        if (cases[i].reseal) reseal(img, g_image_size);
        int32_t got = csd_model_check(img, g_image_size, NULL);
        if (got != cases[i].status) fprintf(stderr, "case %zu (offset %zu): got %d\n", i, cases[i].offset, got);
        assert_int_equal(got, cases[i].status);
        free(img);
    }
    assert_int_equal(csd_model_check(g_image, 127, NULL), CSD_E_TOO_SMALL);
    assert_int_equal(csd_model_check(g_image, g_image_size - 1, NULL), CSD_E_TRUNCATED);
}

static void test_golden_logits_both_modes(void **state) {
    (void)state;
    csd_session_t fused, spiking;
    uint8_t *af = arena_alloc(g_info.arena_bytes_fused), *as = arena_alloc(g_info.arena_bytes_spiking);
    assert_int_equal(csd_session_init(&fused, g_image, g_image_size, af, g_info.arena_bytes_fused, CSD_MODE_FUSED), CSD_OK);
    assert_int_equal(csd_session_init(&spiking, g_image, g_image_size, as, g_info.arena_bytes_spiking, CSD_MODE_SPIKING), CSD_OK);
    assert_int_equal(csd_session_set_delay(&spiking, g_info.time_steps), CSD_OK);
    for (size_t i = 0; i < g_count; i++) {  /* two sessions side by side, interleaved */
        int32_t lf[10], ls[10];
        assert_int_equal(csd_session_run(&fused, g_inputs + i * pixels(), pixels(), lf, 10), CSD_OK);
        assert_int_equal(csd_session_run(&spiking, g_inputs + i * pixels(), pixels(), ls, 10), CSD_OK);
        assert_memory_equal(lf, g_expected + i * 10, sizeof lf);
        assert_memory_equal(ls, g_expected + i * 10, sizeof ls);
    }
    free(af);
    free(as);
}

static void test_stats_and_delay(void **state) {
    (void)state;
    csd_session_t s;
    csd_op_stats_t stats[64];
    int32_t logits[10];
    uint8_t *arena = arena_alloc(g_info.arena_bytes_spiking);
    assert_int_equal(csd_session_init(&s, g_image, g_image_size, arena, g_info.arena_bytes_fused, CSD_MODE_FUSED), CSD_OK);
    assert_int_equal(csd_session_set_stats(&s, stats, 64), CSD_OK);
    memset(stats, 0, sizeof stats);
    assert_int_equal(csd_session_run(&s, g_inputs, pixels(), logits, 10), CSD_OK);
    assert_memory_equal(logits, g_expected, sizeof logits);
    uint32_t macs = 0, spikes = 0;
    for (uint32_t i = 0; i < g_info.op_count; i++) { macs += stats[i].macs; spikes += stats[i].spikes; }
    assert_int_equal(stats[0].kind, 1);                       /* the encoding conv */
    assert_int_equal(stats[g_info.op_count - 1].kind, 7);     /* the classifier */
    assert_int_equal(macs, g_info.macs);
    assert_true(spikes > 0);
    /* Spiking: same spikes at D = T, synaptic operations instead of MACs after the encoding layer. */
    assert_int_equal(csd_session_init(&s, g_image, g_image_size, arena, g_info.arena_bytes_spiking, CSD_MODE_SPIKING), CSD_OK);
    assert_int_equal(csd_session_set_stats(&s, stats, 64), CSD_OK);
    assert_int_equal(csd_session_set_delay(&s, g_info.time_steps + 1), CSD_E_DELAY);
    assert_int_equal(csd_session_set_delay(&s, g_info.time_steps), CSD_OK);
    assert_int_equal(csd_session_run(&s, g_inputs, pixels(), logits, 10), CSD_OK);
    assert_memory_equal(logits, g_expected, sizeof logits);  /* D = T: the fused logits */
    uint32_t spikes2 = 0, synops = 0;
    for (uint32_t i = 0; i < g_info.op_count; i++) { spikes2 += stats[i].spikes; synops += stats[i].synaptic_ops; }
    assert_int_equal(spikes2, spikes);
    assert_true(synops > 0);
    free(arena);
    /* D = 0 against the NumPy reference: the committed fmnist_tiny case, every logit of every image. */
    csd_model_info_t info;
    assert_int_equal(csd_model_check(g_d0_image, g_d0_image_size, &info), CSD_OK);
    assert_int_equal(info.classes, 10);
    arena = arena_alloc(info.arena_bytes_spiking);
    assert_int_equal(csd_session_init(&s, g_d0_image, g_d0_image_size, arena, info.arena_bytes_spiking, CSD_MODE_SPIKING), CSD_OK);
    assert_int_equal(csd_session_set_stats(&s, stats, 64), CSD_OK);
    assert_int_equal(csd_session_set_delay(&s, 0), CSD_OK);
    size_t differs_from_full_delay = 0;
    for (size_t i = 0; i < g_d0_count; i++) {
        int32_t full[10];
        memset(logits, 0xA5, sizeof logits);
        assert_int_equal(csd_session_run(&s, g_d0_inputs + i * 784, 784, logits, 10), CSD_OK);
        for (int j = 0; j < 10; j++) {
            if (logits[j] != g_d0_logits[i * 10 + j])
                fprintf(stderr, "D = 0, image %zu, logit %d: runtime %d, reference %d\n", i, j, logits[j], g_d0_logits[i * 10 + j]);
            assert_int_equal(logits[j], g_d0_logits[i * 10 + j]);
        }
        assert_int_equal(csd_session_set_delay(&s, info.time_steps), CSD_OK);
        assert_int_equal(csd_session_run(&s, g_d0_inputs + i * 784, 784, full, 10), CSD_OK);
        assert_int_equal(csd_session_set_delay(&s, 0), CSD_OK);
        differs_from_full_delay += memcmp(full, logits, sizeof full) != 0;
    }
    assert_true(differs_from_full_delay > 0);  /* the delay mattered: D = 0 is not D = T in disguise */
    free(arena);
}

/* CSD_PATH_EVENT at D = T: the per-spike event path gives the count path's logits and every op's
 * statistics, on every golden image; the path is a session setting with its own status. */
static void test_event_path(void **state) {
    (void)state;
    csd_session_t count, event;
    csd_op_stats_t count_stats[64], event_stats[64];
    int32_t count_logits[10], event_logits[10];
    uint8_t *arena_count = arena_alloc(g_info.arena_bytes_spiking), *arena_event = arena_alloc(g_info.arena_bytes_spiking);
    assert_int_equal(csd_session_init(&count, g_image, g_image_size, arena_count, g_info.arena_bytes_spiking, CSD_MODE_SPIKING), CSD_OK);
    assert_int_equal(csd_session_init(&event, g_image, g_image_size, arena_event, g_info.arena_bytes_spiking, CSD_MODE_SPIKING), CSD_OK);
    assert_int_equal(csd_session_set_path(&event, 2), CSD_E_PATH);
    assert_int_equal(csd_session_set_path(&event, -1), CSD_E_PATH);
    assert_int_equal(csd_session_set_path(NULL, CSD_PATH_EVENT), CSD_E_NULL_ARGUMENT);
    assert_int_equal(csd_session_set_path(&count, CSD_PATH_AUTO), CSD_OK);
    assert_int_equal(csd_session_set_path(&event, CSD_PATH_EVENT), CSD_OK);
    assert_int_equal(csd_session_set_delay(&event, g_info.time_steps), CSD_OK);
    assert_int_equal(csd_session_set_stats(&count, count_stats, 64), CSD_OK);
    assert_int_equal(csd_session_set_stats(&event, event_stats, 64), CSD_OK);
    for (size_t i = 0; i < g_count; i++) {
        assert_int_equal(csd_session_run(&count, g_inputs + i * pixels(), pixels(), count_logits, 10), CSD_OK);
        assert_int_equal(csd_session_run(&event, g_inputs + i * pixels(), pixels(), event_logits, 10), CSD_OK);
        assert_memory_equal(event_logits, count_logits, sizeof count_logits);
        assert_memory_equal(event_logits, g_expected + i * 10, sizeof event_logits);  /* D = T: the fused logits */
        assert_memory_equal(event_stats, count_stats, g_info.op_count * sizeof(csd_op_stats_t));
    }
    free(arena_count);
    free(arena_event);
    csd_session_t never;
    memset(&never, 0, sizeof never);
    assert_int_equal(csd_session_set_path(&never, CSD_PATH_EVENT), CSD_E_SESSION);
}

/* The observer sees every op once, in order, with the statistics the stats array gets. */
typedef struct observed {
    uint32_t calls, next_index, in_order;
    csd_op_stats_t stats[64];
} observed_t;

static void record_op(void *user, uint32_t op_index, const csd_op_stats_t *stats) {
    observed_t *o = user;
    o->in_order &= op_index == o->next_index;
    o->next_index = op_index + 1;
    if (op_index < 64) o->stats[op_index] = *stats;
    o->calls++;
}

static void test_observer(void **state) {
    (void)state;
    csd_session_t s;
    csd_op_stats_t stats[64];
    int32_t logits[10];
    observed_t seen = {0, 0, 1, {{0}}};
    uint8_t *arena = arena_alloc(g_info.arena_bytes_spiking);
    int32_t modes[2] = {CSD_MODE_FUSED, CSD_MODE_SPIKING};
    assert_int_equal(csd_session_set_observer(NULL, record_op, &seen), CSD_E_NULL_ARGUMENT);
    for (int m = 0; m < 2; m++) {
        memset(&seen, 0, sizeof seen);
        seen.in_order = 1;
        memset(stats, 0, sizeof stats);
        assert_int_equal(csd_session_init(&s, g_image, g_image_size, arena, g_info.arena_bytes_spiking, modes[m]), CSD_OK);
        assert_int_equal(csd_session_set_stats(&s, stats, 64), CSD_OK);
        assert_int_equal(csd_session_set_observer(&s, record_op, &seen), CSD_OK);
        assert_int_equal(csd_session_run(&s, g_inputs, pixels(), logits, 10), CSD_OK);
        assert_memory_equal(logits, g_expected, sizeof logits);
        assert_int_equal(seen.calls, g_info.op_count);
        assert_true(seen.in_order);
        assert_memory_equal(seen.stats, stats, g_info.op_count * sizeof stats[0]);
        assert_int_equal(seen.stats[g_info.op_count - 1].kind, 7);
        /* off again: no more calls, and no stats array needed for it */
        assert_int_equal(csd_session_set_observer(&s, NULL, &seen), CSD_OK);
        memset(logits, 0, sizeof logits);
        assert_int_equal(csd_session_run(&s, g_inputs, pixels(), logits, 10), CSD_OK);
        assert_memory_equal(logits, g_expected, sizeof logits);
        assert_int_equal(seen.calls, g_info.op_count);
        /* observer without a stats array */
        assert_int_equal(csd_session_set_stats(&s, NULL, 0), CSD_OK);
        assert_int_equal(csd_session_set_observer(&s, record_op, &seen), CSD_OK);
        memset(logits, 0, sizeof logits);
        assert_int_equal(csd_session_run(&s, g_inputs, pixels(), logits, 10), CSD_OK);
        assert_memory_equal(logits, g_expected, sizeof logits);
        assert_int_equal(seen.calls, 2 * g_info.op_count);
        assert_memory_equal(seen.stats, stats, g_info.op_count * sizeof stats[0]);
    }
    free(arena);
}

static void test_image_and_memory_around_arena_untouched(void **state) {
    (void)state;
    int32_t modes[2] = {CSD_MODE_FUSED, CSD_MODE_SPIKING};
    for (int m = 0; m < 2; m++) {
        size_t need = m == 0 ? g_info.arena_bytes_fused : g_info.arena_bytes_spiking;
        uint8_t *block = arena_alloc(need + 64);
        memset(block, 0xC5, need + 64);
        uint8_t *arena = block + 32;
        uint8_t *before = image_copy();
        csd_session_t s;
        int32_t logits[10];
        assert_int_equal(csd_session_init(&s, g_image, g_image_size, arena, need, modes[m]), CSD_OK);
        for (size_t i = 0; i < 3 && i < g_count; i++) {  /* spiking at the image's default delay, T */
            assert_int_equal(csd_session_run(&s, g_inputs + i * pixels(), pixels(), logits, 10), CSD_OK);
            assert_memory_equal(logits, g_expected + i * 10, sizeof logits);
        }
        for (size_t i = 0; i < 32; i++) {
            assert_int_equal(block[i], 0xC5);
            assert_int_equal(block[32 + need + i], 0xC5);
        }
        assert_memory_equal(before, g_image, g_image_size);
        free(before);
        free(block);
    }
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4) { fprintf(stderr, "usage: %s MODEL.csd GOLDEN_DIR [TESTDATA_DIR]\n", argv[0]); return 2; }
    g_image = read_file(argv[1], &g_image_size);
    char path[4096];
    size_t n;
    snprintf(path, sizeof path, "%s/inputs.u8", argv[2]);
    g_inputs = read_file(path, &n);
    snprintf(path, sizeof path, "%s/logits_fused.i32", argv[2]);
    g_expected = read_file(path, &n);
    g_count = n / (10 * sizeof(int32_t));
    const char *testdata = argc == 4 ? argv[3] : "Tests/TestData";
    snprintf(path, sizeof path, "%s/fmnist_tiny/model.csd", testdata);
    g_d0_image = read_file(path, &g_d0_image_size);
    snprintf(path, sizeof path, "%s/fmnist_tiny/inputs.u8", testdata);
    g_d0_inputs = read_file(path, &n);
    g_d0_count = n / 784;
    snprintf(path, sizeof path, "%s/fmnist_tiny/spiking_D0.logits.i32", testdata);
    size_t logits_bytes;
    g_d0_logits = read_file(path, &logits_bytes);
    if (g_d0_count == 0 || n != g_d0_count * 784 || logits_bytes != g_d0_count * 10 * sizeof(int32_t)) {
        fprintf(stderr, "%s/fmnist_tiny: %zu input bytes and %zu logit bytes do not make whole images\n", testdata, n, logits_bytes);
        return 2;
    }
    if (csd_model_check(g_image, g_image_size, &g_info) != CSD_OK) { fprintf(stderr, "model invalid\n"); return 2; }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_check),
        cmocka_unit_test(test_arena_bytes),
        cmocka_unit_test(test_status_strings),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_alignment),
        cmocka_unit_test(test_arena_exact_size),
        cmocka_unit_test(test_lengths_and_mode),
        cmocka_unit_test(test_uninitialized_session),
        cmocka_unit_test(test_header_corruptions),
        cmocka_unit_test(test_golden_logits_both_modes),
        cmocka_unit_test(test_stats_and_delay),
        cmocka_unit_test(test_event_path),
        cmocka_unit_test(test_observer),
        cmocka_unit_test(test_image_and_memory_around_arena_untouched),
    };
    return cmocka_run_group_tests_name("csd C API", tests, NULL, NULL);
}

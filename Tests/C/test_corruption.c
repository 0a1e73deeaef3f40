/*
 * The corruption matrix (cmocka), through the C API:
 *  - every truncation of every image is refused;
 *  - every single-bit flip anywhere in a small image, CRC not recomputed, is refused (CSD_E_CRC
 *    or an earlier check);
 *  - every single-bit flip of the header and the op table with the CRC recomputed is either refused
 *    with a specific status, or (where the flip still describes a valid model: a threshold, a shift,
 *    a tensor moved inside the data section...) runs cleanly in both modes; a flip in a field that
 *    has one valid value (magic, versions, sizes, counts, data offset, dims, reserved bytes) must
 *    be refused;
 *  - every op's output buffer and every op's kernel scratch moved, in either mode, to the arena's
 *    last 16 bytes (so it starts inside the arena and ends past its end), CRC recomputed, is refused
 *    with CSD_E_ARENA_END.
 * Run natively, under AddressSanitizer (linked against an ASan build of the runtime) and under
 * valgrind (the Embedded build). argv[1]: the reference model, for the header/op-table flips and
 * the truncations (its every-byte flips are left to the small images: each costs a CRC). With
 * --sampled (the valgrind and ASan runs: each flip checks the CRC of 157 KB) one bit per byte of
 * its header and op table, the bit rotating with the byte, instead of all eight.
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
#include "golden_cases.h"

static const char *g_reference_path;

static int g_sampled;  /* one bit per byte of the reference image's header and op table */

/* CRC-32 (zlib) with the 4 CRC bytes read as zero, table-driven (the test's own, not the runtime's). */
static void reseal(uint8_t *img, size_t n) {
    static uint32_t table[256];
    if (!table[1])
        for (uint32_t v = 0; v < 256; v++) {
            uint32_t c = v;
            for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
            table[v] = c;
        }
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) crc = (crc >> 8) ^ table[(crc ^ ((i >= 16 && i < 20) ? 0u : img[i])) & 0xFFu];
    crc = ~crc;
    for (int i = 0; i < 4; i++) img[16 + i] = (uint8_t)(crc >> (8 * i));
}

/* Byte offsets (header, or within an op record) whose every flip must be refused. */
static int must_refuse(size_t offset) {
    if (offset < 128) {
        if (offset >= 16 && offset < 20) return 0;           /* the CRC itself: resealed */
        if (offset == 49 || offset == 50) return 0;          /* L and D: other values can be valid */
        return 1;                                            /* magic .. tensor_bytes, reserved */
    }
    size_t f = (offset - 128) % 64;
    if (f >= 4 && f < 16) return 1;                          /* in_dims, out_dims */
    /* Arena offsets (f 20..43), kernel scratch offsets (f 56..63) and a band producer's band (f 18..19,
     * docs/FORMAT.md "Bands") are not here: a flip can move a buffer or a scratch onto another valid plan
     * (e.g. an input re-chained to an earlier buffer of the same shape, a scratch into bytes no live
     * buffer holds, a smaller band), which runs safely. */
    return 0;
}

/* A valid image must run: sessions in both modes on exactly-sized arenas, one inference each. */
static void run_clean(const uint8_t *img, size_t size) {
    csd_model_info_t info;
    assert_int_equal(csd_model_check(img, size, &info), CSD_OK);
    size_t pixels = (size_t)info.input_channels * info.input_height * info.input_width;
    uint8_t *input = malloc(pixels);
    for (size_t i = 0; i < pixels; i++) input[i] = (uint8_t)(i * 37u);
    int32_t *logits = malloc(info.classes * sizeof(int32_t));
    for (int32_t mode = 0; mode < 2; mode++) {
        size_t need = mode == 0 ? info.arena_bytes_fused : info.arena_bytes_spiking;
        void *arena = aligned_alloc(16, (need + 15) / 16 * 16);
        csd_session_t s;
        assert_int_equal(csd_session_init(&s, img, size, arena, need, mode), CSD_OK);
        assert_int_equal(csd_session_run(&s, input, pixels, logits, info.classes), CSD_OK);
        free(arena);
    }
    free(input);
    free(logits);
}

static uint8_t *aligned_copy(const uint8_t *src, size_t n) {
    uint8_t *p = aligned_alloc(16, (n + 15) / 16 * 16);
    memcpy(p, src, n);
    return p;
}

static uint32_t u16_at(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t u32_at(const uint8_t *p) { return u16_at(p) | u16_at(p + 2) << 16; }

/* Bytes of op `op`'s output buffer in `mode` (docs/FORMAT.md, "Arena plan"); 0 for the classifier. A band
 * producer's, fused: its band ("Bands": a conv's [C][band][W], a linear's [band][D]); an attention unit's
 * ("Attention units"), fused: u a band of tokens [band][D] (the stream neuron's band), v, k and q one
 * head's channels ([D/heads][N], [N][D/heads], [band][D/heads]; the linears with heads). */
static size_t output_bytes(const uint8_t *img, const uint8_t *op, int mode) {
    uint32_t t = img[48], tokens = u16_at(img + 44), width = u16_at(img + 46), band = u16_at(op + 18);
    if (op[0] == 7) return 0;                                  /* CLASSIFIER: the caller's logits */
    if (op[0] == 5) return 0;                                  /* ATTN_SCORES: the kernel scratch */
    if (op[1] & 2) return (size_t)tokens * width * 2 * (mode ? t : 1);  /* STREAM_OUT: the int16 stream */
    if (!mode && op[0] == 2 && u16_at(op + 16))
        return (size_t)(band ? band : u16_at(op + 10)) * (u16_at(op + 12) / u16_at(op + 16));
    if (band && !mode) return op[0] == 1 ? (size_t)u16_at(op + 10) * band * u16_at(op + 14) : (size_t)band * u16_at(op + 12);
    size_t neurons = (size_t)u16_at(op + 10) * u16_at(op + 12) * u16_at(op + 14);
    return neurons * (mode ? (t <= 8 ? 1 : 2) : 1);            /* counts, or spike trains */
}

static size_t align16(size_t n) { return (n + 15) / 16 * 16; }

/* Bytes of op `op`'s kernel scratch in `mode` (docs/FORMAT.md, "Kernel scratch"), written from that
 * table (the test's own, not the runtime's). */
static size_t scratch_bytes(const uint8_t *img, const uint8_t *op, int mode) {
    size_t t = img[48], k, outputs;
    switch (op[0]) {
    case 1: k = (size_t)u16_at(op + 4) * 9; outputs = u16_at(op + 10); break;    /* CONV3X3 */
    case 2: k = u16_at(op + 6); outputs = u16_at(op + 12); break;                /* LINEAR */
    case 4: return mode ? align16(4 * t * u16_at(op + 6)) : 0;                   /* STREAM_NEURON */
    case 5: case 6: {                                                            /* the attention pair */
        const uint8_t *qkv = op[0] == 5 ? op + 4 : op + 10;
        size_t n = u16_at(qkv), hd = u16_at(qkv + 2) / u16_at(op + 16);
        size_t gq = (hd + 3) / 4, gn = (n + 3) / 4, g = gq > gn ? gq : gn;
        size_t fused = align16(4 * n) + 32 * g, spiking = 64 + 16 * g + align16(n * (t <= 8 ? 1 : 2));
        return mode && spiking > fused ? spiking : fused;
    }
    default: return 0;
    }
    size_t g = (k + 3) / 4, fused = 32 * g, spiking = 16 * g + align16(4 * t * outputs);
    return mode && spiking > fused ? spiking : fused;
}

/* Each op's output moved to the arena's last 16 bytes of one mode, and to the first 16-aligned
 * offset where it ends past the arena (by 1 to 16 bytes): a buffer that starts inside the arena
 * but ends past its end, with a valid CRC, is CSD_E_ARENA_END (checked where the buffer
 * is placed, before arena_bytes is compared with the plan). Returns the number of cases. */
static size_t arena_end_cases(const uint8_t *image, size_t size) {
    uint8_t *img = aligned_copy(image, size);
    uint32_t ops = u32_at(img + 20);
    size_t cases = 0;
    for (uint32_t i = 0; i < ops; i++) {
        uint8_t *op = img + 128 + 64 * (size_t)i;
        for (int mode = 0; mode < 2; mode++) {
            uint32_t arena = u32_at(img + 52 + 4 * mode);
            size_t bytes = output_bytes(img, op, mode);
            if (bytes <= 16 || arena < bytes) continue;       /* fits in the last 16 bytes */
            uint8_t saved[4];
            memcpy(saved, op + 36 + 4 * mode, 4);
            /* the arena's last 16 bytes (16-aligned: arena_bytes is), and the first aligned offset
             * that ends past the arena (by 1 to 16 bytes) */
            const uint32_t offsets[2] = {arena - 16, (uint32_t)((arena - bytes) / 16 + 1) * 16};
            for (int k = 0; k < 2; k++) {
                for (int b = 0; b < 4; b++) op[36 + 4 * mode + b] = (uint8_t)(offsets[k] >> (8 * b));
                reseal(img, size);
                int32_t s = csd_model_check(img, size, NULL);
                if (s != CSD_E_ARENA_END)
                    fprintf(stderr, "op %u mode %d at %u (%zu bytes): status %d\n", i, mode, offsets[k], bytes, s);
                assert_int_equal(s, CSD_E_ARENA_END);
                cases++;
            }
            memcpy(op + 36 + 4 * mode, saved, 4);
        }
    }
    /* each op's kernel scratch (both records of the attention pair) at the arena's last 16 bytes */
    for (uint32_t i = 0; i < ops; i++) {
        uint8_t *op = img + 128 + 64 * (size_t)i;
        if (op[0] == 6) continue;                             /* moved with its ATTN_SCORES */
        for (int mode = 0; mode < 2; mode++) {
            uint32_t arena = u32_at(img + 52 + 4 * mode), at = arena - 16;
            if (scratch_bytes(img, op, mode) <= 16) continue;
            uint8_t saved[4];
            memcpy(saved, op + 56 + 4 * mode, 4);
            for (int b = 0; b < 4; b++) op[56 + 4 * mode + b] = (uint8_t)(at >> (8 * b));
            if (op[0] == 5) memcpy(op + 64 + 56 + 4 * mode, op + 56 + 4 * mode, 4);
            reseal(img, size);
            int32_t s = csd_model_check(img, size, NULL);
            if (s != CSD_E_ARENA_END) fprintf(stderr, "op %u mode %d scratch at %u: status %d\n", i, mode, at, s);
            assert_int_equal(s, CSD_E_ARENA_END);
            cases++;
            memcpy(op + 56 + 4 * mode, saved, 4);
            if (op[0] == 5) memcpy(op + 64 + 56 + 4 * mode, saved, 4);
        }
    }
    reseal(img, size);
    assert_int_equal(csd_model_check(img, size, NULL), CSD_OK);
    free(img);
    return cases;
}

static void matrix(const uint8_t *image, size_t size, int every_byte, int sampled) {
    uint8_t *img = aligned_copy(image, size);
    assert_int_equal(csd_model_check(img, size, NULL), CSD_OK);
    for (size_t n = 0; n < size; n++) {
        int32_t s = csd_model_check(img, n, NULL);
        assert_true(s == CSD_E_TOO_SMALL || s == CSD_E_TRUNCATED);
    }
    size_t table_end = 128 + (size_t)(img[20] | img[21] << 8) * 64;
    size_t refused = 0, valid = 0;
    for (size_t byte = 0; byte < (every_byte ? size : table_end); byte++) {
        for (int bit = sampled ? (int)(byte % 8) : 0; bit < 8; bit += sampled ? 8 : 1) {
            img[byte] ^= (uint8_t)(1u << bit);
            if (every_byte) assert_int_not_equal(csd_model_check(img, size, NULL), CSD_OK);
            if (byte < table_end) {
                uint8_t crc[4];
                memcpy(crc, img + 16, 4);
                reseal(img, size);
                int32_t s = csd_model_check(img, size, NULL);
                if (s == CSD_OK) {
                    if (must_refuse(byte)) fprintf(stderr, "byte %zu bit %d accepted\n", byte, bit);
                    assert_false(must_refuse(byte));
                    run_clean(img, size);
                    valid++;
                } else {
                    assert_true((s <= CSD_E_TOO_SMALL && s >= CSD_E_THRESHOLD) || s == CSD_E_ARENA_END);
                    refused++;
                }
                memcpy(img + 16, crc, 4);
            }
            img[byte] ^= (uint8_t)(1u << bit);
        }
    }
    assert_int_equal(csd_model_check(img, size, NULL), CSD_OK);
    assert_true(refused > 0);
    size_t ends = arena_end_cases(img, size);
    assert_true(ends > 0);
    printf("    %zu bytes: %zu resealed flips refused, %zu still valid and ran cleanly, %zu buffers past the arena's end refused\n",
           size, refused, valid, ends);
    free(img);
}

static void test_small_images(void **state) {
    (void)state;
    for (size_t c = 0; c < sizeof golden_cases / sizeof golden_cases[0]; c++)
        matrix(golden_cases[c].image, golden_cases[c].image_size, 1, 0);
}

static void test_reference_image(void **state) {
    (void)state;
    FILE *f = fopen(g_reference_path, "rb");
    if (!f) fprintf(stderr, "cannot open the reference image %s\n", g_reference_path);
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    size_t n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n);
    assert_int_equal(fread(buf, 1, n, f), n);
    fclose(f);
    matrix(buf, n, 0, g_sampled);
    free(buf);
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "--sampled") != 0)) {
        fprintf(stderr, "usage: %s REFERENCE.csd [--sampled]\n  REFERENCE.csd: the reference model's image, "
                        "for its header and op table;\n  --sampled: flip one bit per byte of them (the bit "
                        "rotating with the byte) instead of all 8\n", argv[0]);
        return 2;
    }
    g_reference_path = argv[1];
    g_sampled = argc == 3;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_images),
        cmocka_unit_test(test_reference_image),
    };
    return cmocka_run_group_tests_name("csd corruption matrix", tests, NULL, NULL);
}

/*
 * Host demo: the Embedded Swift runtime (x86_64 static library, the same
 * sources as the microcontroller builds) driven through Include/csd.h by a
 * plain C program, as firmware would. Prints each image's prediction, the
 * accuracy, whether every logit equals the NumPy reference (both modes), the
 * per-inference work and the memory the model needs.
 *
 * Usage: demo MODEL.csd DATA_DIR   (DATA_DIR from `python -m csdformer.golden`)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csd.h"

static const char *kClasses[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

static void *load(const char *dir, const char *name, size_t *size) {
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", dir, name[0] ? "/" : "", name);
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "demo: cannot open %s\n", path); exit(1); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = aligned_alloc(16, ((size_t)n + 15) / 16 * 16);
    if (!p || fread(p, 1, (size_t)n, f) != (size_t)n) { fprintf(stderr, "demo: cannot read %s\n", path); exit(1); }
    fclose(f);
    *size = (size_t)n;
    return p;
}

static int argmax(const int32_t *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) if (v[i] > v[best]) best = i;
    return best;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s MODEL.csd DATA_DIR\n", argv[0]); return 2; }
    size_t image_size, n_inputs, n_labels, n_expected;
    const uint8_t *image = load(argv[1], "", &image_size);
    const uint8_t *inputs = load(argv[2], "inputs.u8", &n_inputs);
    const uint8_t *labels = load(argv[2], "labels.u8", &n_labels);
    const int32_t *expected = load(argv[2], "logits_fused.i32", &n_expected);

    csd_model_info_t info;
    int32_t status = csd_model_check(image, image_size, &info);
    if (status != CSD_OK) { fprintf(stderr, "demo: model refused: %s\n", csd_status_str(status)); return 1; }
    size_t pixels = (size_t)info.input_channels * info.input_height * info.input_width;
    size_t count = n_labels;
    printf("model: %u bytes, %u ops, input %ux%ux%u, %u classes, %u tokens x %u, T=%u L=%u\n",
           info.image_bytes, info.op_count, info.input_channels, info.input_height, info.input_width,
           info.classes, info.tokens, info.width, info.time_steps, info.levels);

    const int32_t modes[2] = {CSD_MODE_FUSED, CSD_MODE_SPIKING};
    const char *names[2] = {"fused", "spiking D=T"};
    size_t correct[2] = {0, 0}, exact[2] = {0, 0};
    uint64_t macs[2] = {0, 0}, synops[2] = {0, 0}, spikes[2] = {0, 0};
    csd_op_stats_t stats[256];
    for (int m = 0; m < 2; m++) {
        size_t arena_size = m == 0 ? info.arena_bytes_fused : info.arena_bytes_spiking;
        void *arena = aligned_alloc(16, arena_size);  /* a firmware would use a static array */
        csd_session_t session;
        status = csd_session_init(&session, image, image_size, arena, arena_size, modes[m]);
        if (status == CSD_OK) status = csd_session_set_stats(&session, stats, 256);
        if (status != CSD_OK) { fprintf(stderr, "demo: %s\n", csd_status_str(status)); return 1; }
        for (size_t i = 0; i < count; i++) {
            int32_t logits[16];
            status = csd_session_run(&session, inputs + i * pixels, pixels, logits, info.classes);
            if (status != CSD_OK) { fprintf(stderr, "demo: run: %s\n", csd_status_str(status)); return 1; }
            int predicted = argmax(logits, info.classes);
            correct[m] += predicted == labels[i];
            exact[m] += memcmp(logits, expected + i * info.classes, info.classes * sizeof(int32_t)) == 0;
            for (uint32_t k = 0; k < info.op_count; k++) {
                macs[m] += stats[k].macs; synops[m] += stats[k].synaptic_ops; spikes[m] += stats[k].spikes;
            }
            if (m == 0 && i < 10)
                printf("image %2zu: predicted %-11s label %-11s logits [%d %d %d ...]\n", i,
                       kClasses[predicted % 10], kClasses[labels[i] % 10], logits[0], logits[1], logits[2]);
        }
        free(arena);
    }
    for (int m = 0; m < 2; m++)
        printf("%-12s correct %zu/%zu, logits equal to the NumPy reference %zu/%zu, per inference: %.0f MACs, %.0f synaptic ops, %.0f spikes\n",
               names[m], correct[m], count, exact[m], count, (double)macs[m] / count, (double)synops[m] / count,
               (double)spikes[m] / count);
    printf("memory: image (flash) %u bytes, arena (RAM) fused %u / spiking %u bytes\n",
           info.image_bytes, info.arena_bytes_fused, info.arena_bytes_spiking);
    printf("demo: board=host-x86_64 images=%zu correct=%zu bit_exact=%zu/%zu arena_bytes=%u flash_bytes=%u\n",
           count, correct[0], exact[0] < exact[1] ? exact[0] : exact[1], count, info.arena_bytes_fused, info.image_bytes);
    printf("note: the Cortex-M4 firmware under QEMU (instruction counts) is not built yet; this runs the same runtime on the host.\n");
    return exact[0] == count && exact[1] == count ? 0 : 1;
}

/* Links every csd_* export with --gc-sections to measure the runtime's code size
 * (Toolchain/cross/size-report.sh). With CSD_SIZE_PROBE_ONLY it compiles just
 * this file's own code, which the report subtracts. */
#include "csd.h"

void *memset(void *d, int c, size_t n) { unsigned char *p = d; while (n--) *p++ = (unsigned char)c; return d; }
void *memcpy(void *d, const void *s, size_t n) { unsigned char *p = d; const unsigned char *q = s; while (n--) *p++ = *q++; return d; }
#if defined(__ARM_EABI__)
void __aeabi_memclr(void *d, size_t n) { memset(d, 0, n); }
void __aeabi_memclr4(void *d, size_t n) { memset(d, 0, n); }
void __aeabi_memclr8(void *d, size_t n) { memset(d, 0, n); }
void __aeabi_memcpy(void *d, const void *s, size_t n) { memcpy(d, s, n); }
void __aeabi_memcpy4(void *d, const void *s, size_t n) { memcpy(d, s, n); }
void __aeabi_memcpy8(void *d, const void *s, size_t n) { memcpy(d, s, n); }
#endif

#ifndef CSD_SIZE_PROBE_ONLY
static const unsigned char image[16] __attribute__((aligned(16)));
static unsigned char arena[64] __attribute__((aligned(16)));

int probe(void) {
    csd_session_t s;
    csd_model_info_t info;
    size_t bytes;
    int32_t logits[10];
    csd_op_stats_t stats[4];
    int32_t r = csd_model_check(image, sizeof image, &info) + csd_arena_bytes(image, sizeof image, 0, &bytes)
        + csd_session_init(&s, image, sizeof image, arena, sizeof arena, 0) + csd_session_set_delay(&s, 1)
        + csd_session_set_stats(&s, stats, 4) + csd_session_run(&s, arena, 1, logits, 10);
    return r + csd_status_str(r)[0];
}
#else
int probe(void) { return 0; }
#endif

void _start(void) { (void)probe(); for (;;) {} }

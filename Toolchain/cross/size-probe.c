/* Links every csd_* export with --gc-sections to measure the runtime's code size
 * (Toolchain/cross/size-report.sh). With CSD_SIZE_PROBE_ONLY it compiles just
 * this file's own code, which the report subtracts. */
#include "csd.h"

/* The firmware's own memset/memcpy (and ARM EABI aliases): the only C library the runtime needs. */
#include "../../Firmware/common/libc.c"

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
        + csd_session_set_path(&s, CSD_PATH_EVENT) + csd_session_set_stats(&s, stats, 4)
        + csd_session_set_observer(&s, 0, 0) + csd_session_run(&s, arena, 1, logits, 10);
    return r + csd_status_str(r)[0];
}
#else
int probe(void) { return 0; }
#endif

void _start(void) { (void)probe(); for (;;) {} }

/* The installed package's example (CMakeLists.txt): check the packed model, bind a session to a
 * static arena sized by the generated macro, classify one input (vertical bars: pixel 200 where the
 * column is 9..19) in fused mode and print `logits v0 v1 ...` and the class. Hosted, it prints with
 * stdio; bare metal, through the board port's board_putc. make test-install compares the logits
 * with the NumPy reference's (Tests/Firmware/check_cmake_example.py). */
#include <stdint.h>

#include "csd.h"
#include "csd_model.h"

#if CSD_EXAMPLE_HOSTED
#include <stdio.h>
#include <stdlib.h>
static void board_init(void) {}
static void board_putc(char c) { putchar(c); }
static void board_exit(int code) {
    fflush(stdout);
    exit(code);
}
#else
#include "board.h"
#endif

static void put_str(const char *s) {
    while (*s) board_putc(*s++);
}

static void put_i32(int32_t v) {
    char digits[12];
    unsigned n = 0;
    uint32_t u = v < 0 ? 0u - (uint32_t)v : (uint32_t)v;
    do {
        digits[n++] = (char)('0' + u % 10u);
        u /= 10u;
    } while (u);
    if (v < 0) board_putc('-');
    while (n) board_putc(digits[--n]);
}

CSD_ALIGN16 static uint8_t arena[csd_model_ARENA_BYTES_FUSED];
static uint8_t image[csd_model_INPUT_BYTES];

int main(void) {
    board_init();
    for (unsigned i = 0; i < sizeof image; i++) {
        unsigned column = i % csd_model_INPUT_WIDTH;
        image[i] = (uint8_t)((column > 8 && column < 20) ? 200 : 0);
    }
    csd_session_t session;
    int32_t logits[csd_model_CLASSES];
    int32_t status = csd_session_init(&session, csd_model, csd_model_size, arena, sizeof arena, CSD_MODE_FUSED);
    if (status == CSD_OK) status = csd_session_run(&session, image, sizeof image, logits, csd_model_CLASSES);
    if (status != CSD_OK) {
        put_str("error: ");
        put_str(csd_status_str(status));
        put_str("\n");
        board_exit(1);
    }
    unsigned best = 0;
    put_str("logits");
    for (unsigned i = 0; i < csd_model_CLASSES; i++) {
        put_str(" ");
        put_i32(logits[i]);
        if (logits[i] > logits[best]) best = i;
    }
    put_str("\nclass ");
    put_i32((int32_t)best);
    put_str("\n");
    board_exit(0);
    return 0;
}

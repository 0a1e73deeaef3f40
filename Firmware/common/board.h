/* What a board port supplies to the shared demo (common/main.c). */
#ifndef CSD_FW_BOARD_H
#define CSD_FW_BOARD_H

#include <stdint.h>

extern const char board_name[];   /* e.g. "mps2-an386" */
extern const char board_cpu[];    /* e.g. "cortex-m4 (armv7e-m, hard float)" */

void board_init(void);                                /* UART on */
void board_putc(char c);                              /* blocking, one byte */
__attribute__((noreturn)) void board_exit(int code);  /* leave QEMU with this status */

/* The stack region, from the linker script; startup paints it with
 * CSD_STACK_PAINT before any C code runs. */
extern uint32_t __stack_bottom[], __stack_top[];
#define CSD_STACK_PAINT 0xA5C3A5C3u

#endif

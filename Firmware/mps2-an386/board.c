/*
 * mps2-an386 (QEMU: Cortex-M4 with FPU; also used unchanged by the Cortex-M0+
 * build on mps2-an385, whose UART and memory map are the same): CMSDK UART0
 * at 0x40004000; the exit through Arm semihosting is common/arm_semihosting.c.
 */
#include <stdint.h>

#include "board.h"

#define UART0_BASE 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x04u))  /* bit 0: TX buffer full */
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x08u))   /* bit 0: TX enable */
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10u))

#ifndef BOARD_NAME
#define BOARD_NAME "mps2-an386"
#endif
const char board_name[] = BOARD_NAME;
#if defined(__ARM_ARCH_7EM__) && defined(__ARM_FP)
const char board_cpu[] = "cortex-m4 (armv7e-m, fpv4-sp-d16 hard float)";
#elif defined(__ARM_ARCH_7EM__)
const char board_cpu[] = "cortex-m4 (armv7e-m, soft float)";
#elif defined(__ARM_ARCH_6M__)
const char board_cpu[] = "cortex-m0plus code (armv6-m)";
#else
const char board_cpu[] = "cortex-m";
#endif

void board_init(void) {
    UART_BAUDDIV = 16u;
    UART_CTRL = 1u;
}

void board_putc(char c) {
    while (UART_STATE & 1u) {
    }
    UART_DATA = (uint32_t)(unsigned char)c;
}

/* board_exit and Fault_Handler: common/arm_semihosting.c */

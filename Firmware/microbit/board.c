/*
 * BBC micro:bit v1 (QEMU -M microbit: nRF51822, Cortex-M0, 16 KB RAM): the
 * nRF51 UART at 0x40002000 (QEMU connects it to -serial); the exit through
 * Arm semihosting is common/arm_semihosting.c.
 */
#include <stdint.h>

#include "board.h"

#define UART_BASE 0x40002000u
#define UART_REG(offset) (*(volatile uint32_t *)(UART_BASE + (offset)))
#define UART_TASKS_STARTTX UART_REG(0x008u)
#define UART_EVENTS_TXDRDY UART_REG(0x11Cu)
#define UART_ENABLE UART_REG(0x500u)  /* 4: enabled */
#define UART_TXD UART_REG(0x51Cu)

const char board_name[] = "microbit";
const char board_cpu[] = "cortex-m0 (armv6-m, nRF51822)";

void board_init(void) {
    UART_ENABLE = 4u;
    UART_TASKS_STARTTX = 1u;
}

void board_putc(char c) {
    UART_EVENTS_TXDRDY = 0u;
    UART_TXD = (uint32_t)(unsigned char)c;
    while (UART_EVENTS_TXDRDY == 0u) {
    }
}

/* board_exit and Fault_Handler: common/arm_semihosting.c */

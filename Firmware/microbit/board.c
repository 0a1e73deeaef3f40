/*
 * BBC micro:bit v1 (QEMU -M microbit: nRF51822, Cortex-M0, 16 KB RAM): the
 * nRF51 UART at 0x40002000 (QEMU connects it to -serial), exit through Arm
 * semihosting SYS_EXIT_EXTENDED (QEMU needs -semihosting-config
 * enable=on,target=native).
 */
#include <stdint.h>

#include "board.h"
#include "fmt.h"

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

/* SYS_EXIT_EXTENDED (0x20): r1 points to {reason, status}. */
void board_exit(int code) {
    volatile uint32_t block[2] = {0x20026u /* ADP_Stopped_ApplicationExit */, (uint32_t)code};
    register uint32_t r0 __asm__("r0") = 0x20u;
    register volatile uint32_t *r1 __asm__("r1") = block;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    for (;;) {
    }
}

/* Any exception: the firmware enables no interrupt, so this is a fault. */
void Fault_Handler(void) {
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    put_str("\nfault: exception ");
    put_u32(ipsr & 0x1FFu);
    put_nl();
    board_exit(3);
}

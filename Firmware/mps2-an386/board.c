/*
 * mps2-an386 (QEMU: Cortex-M4 with FPU; also used unchanged by the Cortex-M0+
 * build on mps2-an385, whose UART and memory map are the same): CMSDK UART0
 * at 0x40004000, exit through Arm semihosting SYS_EXIT_EXTENDED (QEMU needs
 * -semihosting-config enable=on,target=native).
 */
#include <stdint.h>

#include "board.h"
#include "fmt.h"

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

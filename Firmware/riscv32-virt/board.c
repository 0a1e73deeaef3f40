/*
 * QEMU riscv32 virt: ns16550a UART at 0x10000000 (THR at +0, LSR at +5 with
 * bit 5 = THR empty), SiFive test device at 0x100000 to exit (0x5555 = pass,
 * (code << 16) | 0x3333 = fail with that status).
 */
#include <stdint.h>

#include "board.h"
#include "fmt.h"

#define UART_BASE 0x10000000u
#define UART_THR (*(volatile uint8_t *)(UART_BASE + 0u))
#define UART_IER (*(volatile uint8_t *)(UART_BASE + 1u))
#define UART_LSR (*(volatile uint8_t *)(UART_BASE + 5u))
#define SIFIVE_TEST (*(volatile uint32_t *)0x00100000u)

const char board_name[] = "riscv32-virt";
const char board_cpu[] = "rv32imac (ilp32)";

void board_init(void) { UART_IER = 0u; /* polled: no interrupts */ }

void board_putc(char c) {
    while ((UART_LSR & 0x20u) == 0u) {
    }
    UART_THR = (uint8_t)c;
}

void board_exit(int code) {
    SIFIVE_TEST = code == 0 ? 0x5555u : (((uint32_t)code << 16) | 0x3333u);
    for (;;) {
    }
}

/* Any trap: the firmware enables no interrupt, so this is an exception. */
void trap_handler(void) {
    uint32_t cause, epc, tval;
    __asm__ volatile("csrr %0, mcause" : "=r"(cause));
    __asm__ volatile("csrr %0, mepc" : "=r"(epc));
    __asm__ volatile("csrr %0, mtval" : "=r"(tval));
    put_str("\ntrap: mcause=");
    put_hex32(cause);
    put_str(" mepc=");
    put_hex32(epc);
    put_str(" mtval=");
    put_hex32(tval);
    put_nl();
    board_exit(3);
}

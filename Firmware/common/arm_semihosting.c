/*
 * The Arm boards' exit and fault handler (mps2-an386 / mps2-an385, micro:bit):
 * exit through Arm semihosting SYS_EXIT_EXTENDED (QEMU needs
 * -semihosting-config enable=on,target=native); any exception is a fault,
 * since the firmware enables no interrupt. Uses only ARMv6-M instructions.
 */
#include <stdint.h>

#include "board.h"
#include "fmt.h"

/* SYS_EXIT_EXTENDED (0x20): r1 points to {reason, status}. */
void board_exit(int code) {
    volatile uint32_t block[2] = {0x20026u /* ADP_Stopped_ApplicationExit */, (uint32_t)code};
    register uint32_t r0 __asm__("r0") = 0x20u;
    register volatile uint32_t *r1 __asm__("r1") = block;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    for (;;) {
    }
}

void Fault_Handler(void) {
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    put_str("\nfault: exception ");
    put_u32(ipsr & 0x1FFu);
    put_nl();
    board_exit(3);
}

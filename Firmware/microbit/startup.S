/*
 * Reset for the micro:bit: the Cortex-M reset of mps2-an386 (vector table at
 * 0x0 with the core exceptions, stack painting, .data and .bss, then main),
 * which uses only ARMv6-M instructions; the nRF51's own interrupts are never
 * enabled.
 */
#include "../mps2-an386/startup.S"

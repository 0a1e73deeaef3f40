/*
 * Reset for Cortex-M (ARMv7E-M and, unchanged, ARMv6-M: only Thumb-1
 * instructions besides the FPU enable, which assembles only with an FPU).
 * Vector table at 0x0 (initial SP, reset, the core exceptions); the reset
 * handler paints the stack, copies .data from flash, zeroes .bss, enables
 * the FPU for hard-float builds and calls main. Uses no stack itself.
 */
    .syntax unified
    .thumb

    .section .vectors, "a"
    .align 2
    .globl __vectors
__vectors:
    .word __stack_top           /* initial SP */
    .word Reset_Handler
    .word Fault_Handler         /* NMI */
    .word Fault_Handler         /* HardFault */
    .word Fault_Handler         /* MemManage (v7-M) */
    .word Fault_Handler         /* BusFault (v7-M) */
    .word Fault_Handler         /* UsageFault (v7-M) */
    .word 0, 0, 0, 0
    .word Fault_Handler         /* SVCall */
    .word Fault_Handler         /* DebugMonitor (v7-M) */
    .word 0
    .word Fault_Handler         /* PendSV */
    .word Fault_Handler         /* SysTick */

    .text
    .thumb_func
    .globl Reset_Handler
    .type Reset_Handler, %function
Reset_Handler:
    /* paint [__stack_bottom, __stack_top) for the high-water mark */
    ldr r0, =__stack_bottom
    ldr r1, =__stack_top
    ldr r2, =0xA5C3A5C3         /* CSD_STACK_PAINT in board.h */
1:  cmp r0, r1
    bhs 2f
    str r2, [r0]
    adds r0, r0, #4
    b 1b
2:  /* .data: copy from its load address in flash */
    ldr r0, =__data_start
    ldr r1, =__data_end
    ldr r2, =__data_load
3:  cmp r0, r1
    bhs 4f
    ldr r3, [r2]
    str r3, [r0]
    adds r0, r0, #4
    adds r2, r2, #4
    b 3b
4:  /* .bss: zero */
    ldr r0, =__bss_start
    ldr r1, =__bss_end
    movs r2, #0
5:  cmp r0, r1
    bhs 6f
    str r2, [r0]
    adds r0, r0, #4
    b 5b
6:
#if defined(__ARM_FP)
    /* FPU: full access for CP10 and CP11 (CPACR bits 20..23) */
    ldr r0, =0xE000ED88
    ldr r1, [r0]
    ldr r2, =0x00F00000
    orrs r1, r1, r2
    str r1, [r0]
    dsb
    isb
#endif
    bl main
    movs r0, #1
    bl board_exit
    .size Reset_Handler, . - Reset_Handler
    .pool

    .section .note.GNU-stack, "", %progbits

/*
 * Reset for QEMU riscv32 virt with -bios none: QEMU's reset stub jumps to the
 * ELF entry in machine mode (a0 = hart id, a1 = device tree). Hart 0 paints
 * the stack, copies .data (a no-op when it is loaded in place), zeroes .bss,
 * installs a trap handler and calls main; other harts (none with -smp 1) park.
 */
    .section .text.start, "ax"
    .globl _start
    .type _start, @function
_start:
    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    csrr t0, mhartid
    bnez t0, park
    la sp, __stack_top
    /* paint [__stack_bottom, __stack_top) for the high-water mark */
    la t0, __stack_bottom
    la t1, __stack_top
    li t2, 0xA5C3A5C3           /* CSD_STACK_PAINT in board.h */
1:  bgeu t0, t1, 2f
    sw t2, 0(t0)
    addi t0, t0, 4
    j 1b
2:  la t0, __data_start
    la t1, __data_end
    la t2, __data_load
3:  bgeu t0, t1, 4f
    lw t3, 0(t2)
    sw t3, 0(t0)
    addi t0, t0, 4
    addi t2, t2, 4
    j 3b
4:  la t0, __bss_start
    la t1, __bss_end
5:  bgeu t0, t1, 6f
    sw zero, 0(t0)
    addi t0, t0, 4
    j 5b
6:  la t0, trap_entry
    csrw mtvec, t0
    call main
    li a0, 1
    call board_exit
park:
    wfi
    j park
    .size _start, . - _start

    /* mtvec must be 4-aligned (direct mode) */
    .align 2
trap_entry:
    la sp, __stack_top
    call trap_handler
    j park

    .section .note.GNU-stack, "", @progbits

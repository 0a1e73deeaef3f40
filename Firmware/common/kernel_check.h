/* The DSP kernels against their plain twins; see kernel_check.c. Returns the mismatches. */
#ifndef KERNEL_CHECK_H
#define KERNEL_CHECK_H
#include <stdint.h>
uint32_t kernel_check(void);
#endif

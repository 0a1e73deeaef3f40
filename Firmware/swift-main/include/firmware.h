/*
 * What the Swift main (Firmware/swift-main/Main.swift) takes from C, declarations only: the
 * board port of Firmware/common/board.h (UART, the semihosting exit, the stack region) and one
 * table of data that data.c fills: the packed model image, the arena, the golden data of the
 * NumPy reference (golden.h) and the board's names. Swift imports it as the module
 * SwiftMainSupport (module.modulemap beside this file).
 */
#ifndef CSD_SWIFT_MAIN_FIRMWARE_H
#define CSD_SWIFT_MAIN_FIRMWARE_H

#include <stdint.h>

#include "../../common/board.h"

typedef struct fw_data {
    const void *image;              /* the packed model image, 16-byte aligned (flash) */
    uint32_t image_size;
    void *arena;                    /* 16-byte aligned, the larger of the two modes' needs */
    uint32_t arena_size;
    const uint8_t *inputs;          /* [count][pixels] */
    const uint8_t *labels;          /* [count]; 255 when unlabelled */
    const int32_t *logits_fused;    /* [count][classes], fused */
    const int32_t *logits_spiking;  /* [count][classes], spiking at delay (the count path at D = T) */
    const int32_t *logits_event;    /* [count][classes], spiking at event_delay < T (the event path) */
    uint32_t count, pixels, classes, delay, event_delay, labelled;
    const char *board_name;         /* board.c's board_name and board_cpu */
    const char *board_cpu;
    const uint32_t *stack_bottom;   /* the stack region (link.ld), painted by startup.S */
    const uint32_t *stack_top;
} fw_data_t;

extern const fw_data_t fw_data;

#endif

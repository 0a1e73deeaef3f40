/*
 * Data, no code: the table the Swift main reads (include/firmware.h). The model image is the
 * C array of the generated model source, linked beside (FW_MODEL names its symbol, FW_MODEL_HEADER
 * its header, as for Firmware/common/main.c); the golden data is golden.h, from the NumPy
 * reference; the arena holds the larger of the two modes' needs (the generated macros).
 */
#include <stdint.h>

#include "csd.h"
#include "firmware.h"
#include "golden.h"

#ifndef FW_MODEL
#define FW_MODEL fmnist_tiny
#define FW_MODEL_HEADER "fmnist_tiny.h"
#endif
#include FW_MODEL_HEADER

#define FW_CAT_(a, b) a##b
#define FW_CAT(a, b) FW_CAT_(a, b)
#define MODEL_ARENA_FUSED FW_CAT(FW_MODEL, _ARENA_BYTES_FUSED)
#define MODEL_ARENA_SPIKING FW_CAT(FW_MODEL, _ARENA_BYTES_SPIKING)
#define ARENA_BYTES (MODEL_ARENA_FUSED > MODEL_ARENA_SPIKING ? MODEL_ARENA_FUSED : MODEL_ARENA_SPIKING)

CSD_ALIGN16 static uint8_t arena[ARENA_BYTES];

const fw_data_t fw_data = {
    .image = FW_MODEL,
    .image_size = FW_CAT(FW_MODEL, _size),
    .arena = arena,
    .arena_size = sizeof arena,
    .inputs = &golden_inputs[0][0],
    .labels = golden_labels,
    .logits_fused = &golden_logits[0][0],
    .logits_spiking = &golden_logits_spiking[0][0],
    .logits_event = &golden_logits_event[0][0],
    .count = GOLDEN_COUNT,
    .pixels = GOLDEN_PIXELS,
    .classes = GOLDEN_CLASSES,
    .delay = GOLDEN_DELAY,
    .event_delay = GOLDEN_EVENT_DELAY,
    .labelled = GOLDEN_LABELLED,
    .board_name = board_name,
    .board_cpu = board_cpu,
    .stack_bottom = __stack_bottom,
    .stack_top = __stack_top,
};

/* libFuzzer's mutator, for the custom mutator of FuzzImage.swift. */
#include <stddef.h>
#include <stdint.h>
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

#pragma once

#include <stddef.h>
#include <stdint.h>

#define FRAME_SIZE 4096

void frames_init(void);
uint64_t frame_alloc(void);
uint64_t frame_alloc_contiguous(size_t count);
void frame_free(uint64_t address);
void frame_free_contiguous(uint64_t address, size_t count);
size_t frames_free_count(void);

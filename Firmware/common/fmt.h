/* A tiny printf-free formatter over board_putc: strings and 32-bit integers only
 * (no 64-bit division, so no compiler helper beyond what the runtime needs). */
#ifndef CSD_FW_FMT_H
#define CSD_FW_FMT_H

#include <stdint.h>

void put_str(const char *s);
void put_u32(uint32_t v);
void put_i32(int32_t v);
void put_hex32(uint32_t v);  /* 0x%08x */
void put_nl(void);
/* "key=value" preceded by a space: the machine-readable fields the runner parses. */
void put_kv(const char *key, uint32_t v);

#endif

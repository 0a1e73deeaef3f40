#include "fmt.h"

#include "board.h"

void put_str(const char *s) {
    while (*s) board_putc(*s++);
}

void put_u32(uint32_t v) {
    char buf[10];
    int n = 0;
    do {
        buf[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    while (n) board_putc(buf[--n]);
}

void put_i32(int32_t v) {
    if (v < 0) {
        board_putc('-');
        put_u32(0u - (uint32_t)v);
    } else {
        put_u32((uint32_t)v);
    }
}

void put_hex32(uint32_t v) {
    static const char digits[] = "0123456789abcdef";
    put_str("0x");
    for (int shift = 28; shift >= 0; shift -= 4) board_putc(digits[(v >> shift) & 0xFu]);
}

void put_nl(void) { board_putc('\n'); }

void put_kv(const char *key, uint32_t v) {
    board_putc(' ');
    put_str(key);
    board_putc('=');
    put_u32(v);
}

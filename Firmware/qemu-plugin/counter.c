/*
 * QEMU TCG plugin (API v1, QEMU 7.2): counts executed guest instructions and
 * reports the count between two marker addresses, once per begin/end pair.
 *
 *   qemu-system-arm ... -plugin counter.so,begin=0xADDR,end=0xADDR[,mark=0xADDR][,out=FILE][,hot=FILE][,exact=on]
 *
 * begin / end: entry addresses of the firmware's csd_bench_begin and
 *   csd_bench_end (for Thumb, the symbol value without bit 0; the plugin
 *   clears bit 0 anyway). A snapshot is the number of guest instructions
 *   executed before the marker's first instruction, so a pair's count is
 *   everything from the start of csd_bench_begin to the start of
 *   csd_bench_end (the inference plus a constant call overhead, which the
 *   firmware's empty pair 0 measures).
 * mark: entry address of a per-op marker (the firmware's csd_bench_mark,
 *   called from its csd_session_set_observer callback); each execution
 *   reports the instructions since the previous mark (per-layer counts).
 * out: write the report to FILE (default: qemu_plugin_outs, which QEMU only
 *   prints with -d plugin, to stderr or the -D log file).
 * hot=FILE: also write, at exit, every translation block's address, size and
 *   execution count ("vaddr insns executions" per line; a block translated twice
 *   appears twice): a profile for finding hot loops. hotpairs=A-B limits it to
 *   the begin/end pairs A..B (default: the whole run; slower, a callback per block).
 * exact=on: count with an inline add on every instruction instead of one per
 *   translation block (slower; a self-check, the counts must be identical).
 *
 * Output, one line per pair as it completes and a summary at exit:
 *   counter: pair=K begin=B end=E insns=N
 *   counter: mark=K insns=N          (N: instructions since mark K-1)
 *   counter: total_insns=N pairs=K unmatched=U
 *
 * Counting: each translation block adds its instruction count to a 64-bit
 * counter when it starts executing (an inline op, no helper call). A marker
 * instruction at index i of a block of n instructions gets an execution
 * callback that reads counter - (n - i), i.e. the instructions retired
 * before it. The guest is single-core (one vCPU), so no atomics are needed.
 * A block cut short by an exception would overcount its tail; the firmware
 * takes no interrupts and faults only at exit, after the last pair.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu-plugin-api.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;

static uint64_t insns;          /* instructions executed so far (block granularity) */
static uint64_t begin_addr = UINT64_MAX, end_addr = UINT64_MAX, mark_addr = UINT64_MAX;
static uint64_t marks, last_mark;
static int exact;
static FILE *out;

/* hot-block profile (hot=FILE) */
typedef struct hot_block {
    uint64_t vaddr, insns, executions;
    struct hot_block *next;
} hot_block_t;
static hot_block_t *hot_blocks;
static const char *hot_path;
static uint64_t hot_first = 0, hot_last = UINT64_MAX;
static int hot_limited;

static uint64_t open_begin;     /* snapshot at the last begin */
static int begin_open;
static uint64_t pairs, unmatched;

static void on_hot_block(unsigned int vcpu_index, void *userdata) {
    (void)vcpu_index;
    if (begin_open && pairs >= hot_first && pairs <= hot_last) ((hot_block_t *)userdata)->executions++;
}

static void emit(const char *line) {
    if (out) {
        fputs(line, out);
        fflush(out);
    } else {
        qemu_plugin_outs(line);
    }
}

/* userdata: instructions of the block at and after the mark (as for on_marker). */
static void on_mark(unsigned int vcpu_index, void *userdata) {
    (void)vcpu_index;
    uint64_t now = insns - (uint64_t)(uintptr_t)userdata;
    char line[96];
    snprintf(line, sizeof line, "counter: mark=%llu insns=%llu\n", (unsigned long long)marks,
             (unsigned long long)(marks ? now - last_mark : 0));
    emit(line);
    marks++;
    last_mark = now;
}

/* userdata: bit 0 = 1 for the end marker; the rest = instructions of the block
 * at and after the marker (already added to insns by the block's inline op). */
static void on_marker(unsigned int vcpu_index, void *userdata) {
    (void)vcpu_index;
    uintptr_t u = (uintptr_t)userdata;
    uint64_t now = insns - (uint64_t)(u >> 1);
    if ((u & 1u) == 0) {
        if (begin_open) unmatched++;
        open_begin = now;
        begin_open = 1;
        return;
    }
    if (!begin_open) {
        unmatched++;
        return;
    }
    char line[160];
    snprintf(line, sizeof line, "counter: pair=%llu begin=%llu end=%llu insns=%llu\n", (unsigned long long)pairs,
             (unsigned long long)open_begin, (unsigned long long)now, (unsigned long long)(now - open_begin));
    emit(line);
    pairs++;
    begin_open = 0;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    if (hot_path && n > 0) {
        hot_block_t *b = calloc(1, sizeof *b);
        if (b) {
            b->vaddr = qemu_plugin_insn_vaddr(qemu_plugin_tb_get_insn(tb, 0));
            b->insns = n;
            b->next = hot_blocks;
            hot_blocks = b;
            if (hot_limited)
                qemu_plugin_register_vcpu_tb_exec_cb(tb, on_hot_block, QEMU_PLUGIN_CB_NO_REGS, b);
            else
                qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->executions, 1);
        }
    }
    if (!exact) qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &insns, n);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t vaddr = qemu_plugin_insn_vaddr(insn);
        if (vaddr == begin_addr || vaddr == end_addr) {
            /* exact mode: the callback is registered before this instruction's own
             * inline add, so no instruction of the block at or after it is counted yet */
            uintptr_t pending = exact ? 0 : (uintptr_t)(n - i);
            uintptr_t u = (pending << 1) | (vaddr == end_addr ? 1u : 0u);
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker, QEMU_PLUGIN_CB_NO_REGS, (void *)u);
        }
        if (vaddr == mark_addr) {
            uintptr_t pending = exact ? 0 : (uintptr_t)(n - i);
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS, (void *)pending);
        }
        if (exact) qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &insns, 1);
    }
}

static void on_qemu_exit(qemu_plugin_id_t id, void *userdata) {
    (void)id;
    (void)userdata;
    char line[160];
    snprintf(line, sizeof line, "counter: total_insns=%llu pairs=%llu unmatched=%llu\n", (unsigned long long)insns,
             (unsigned long long)pairs, (unsigned long long)(unmatched + (begin_open ? 1u : 0u)));
    emit(line);
    if (hot_path) {
        FILE *f = fopen(hot_path, "w");
        for (hot_block_t *b = hot_blocks; f && b; b = b->next)
            fprintf(f, "%#llx %llu %llu\n", (unsigned long long)b->vaddr, (unsigned long long)b->insns,
                    (unsigned long long)b->executions);
        if (f) fclose(f);
    }
    if (out) fclose(out);
    out = NULL;
}

static int parse_addr(const char *s, uint64_t *v) {
    char *end;
    unsigned long long x = strtoull(s, &end, 0);
    if (*s == '\0' || *end != '\0') return -1;
    *v = (uint64_t)x & ~(uint64_t)1;  /* Thumb symbols carry bit 0; instructions are 2-aligned everywhere here */
    return 0;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv) {
    (void)info;
    const char *out_path = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "begin=", 6) == 0) {
            if (parse_addr(a + 6, &begin_addr)) goto bad;
        } else if (strncmp(a, "end=", 4) == 0) {
            if (parse_addr(a + 4, &end_addr)) goto bad;
        } else if (strncmp(a, "mark=", 5) == 0) {
            if (parse_addr(a + 5, &mark_addr)) goto bad;
        } else if (strncmp(a, "hot=", 4) == 0) {
            hot_path = a + 4;
        } else if (strncmp(a, "hotpairs=", 9) == 0) {
            unsigned long long x, y;
            if (sscanf(a + 9, "%llu-%llu", &x, &y) != 2 || x > y) goto bad;
            hot_first = x;
            hot_last = y;
            hot_limited = 1;
        } else if (strncmp(a, "out=", 4) == 0) {
            out_path = a + 4;
        } else if (strcmp(a, "exact=on") == 0 || strcmp(a, "exact=true") == 0) {
            exact = 1;
        } else if (strcmp(a, "exact=off") == 0 || strcmp(a, "exact=false") == 0) {
            exact = 0;
        } else {
        bad:
            fprintf(stderr, "counter plugin: bad argument '%s' (begin=ADDR,end=ADDR[,mark=ADDR][,out=FILE][,hot=FILE[,hotpairs=A-B]][,exact=on])\n", a);
            return -1;
        }
    }
    if (begin_addr == UINT64_MAX || end_addr == UINT64_MAX || begin_addr == end_addr || mark_addr == begin_addr ||
        mark_addr == end_addr) {
        fprintf(stderr, "counter plugin: needs distinct begin=ADDR and end=ADDR\n");
        return -1;
    }
    if (out_path) {
        out = fopen(out_path, "w");
        if (!out) {
            fprintf(stderr, "counter plugin: cannot write %s\n", out_path);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_qemu_exit, NULL);
    return 0;
}

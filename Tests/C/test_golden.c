/*
 * cmocka: every synthetic golden case (Tests/TestData/golden_cases.h, generated
 * from Tests/TestPlan/plan.json by the NumPy reference) through the C API of the
 * Embedded runtime, in fused mode and in spiking mode at every planned delay.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "csd.h"
#include "golden_cases.h"

static void test_golden_cases(void **state) {
    (void)state;
    size_t runs = 0;
    for (size_t c = 0; c < sizeof golden_cases / sizeof golden_cases[0]; c++) {
        const struct golden_case *g = &golden_cases[c];
        csd_model_info_t info;
        assert_int_equal(csd_model_check(g->image, g->image_size, &info), CSD_OK);
        assert_int_equal(info.classes, g->classes);
        for (size_t r = 0; r < g->run_count; r++) {
            const struct golden_run *run = &g->runs[r];
            size_t need = run->mode == CSD_MODE_FUSED ? info.arena_bytes_fused : info.arena_bytes_spiking;
            void *arena = aligned_alloc(16, need + 16);
            csd_session_t s;
            int32_t logits[64];
            assert_int_equal(csd_session_init(&s, g->image, g->image_size, arena, need, run->mode), CSD_OK);
            assert_int_equal(csd_session_set_delay(&s, run->delay), CSD_OK);
            for (size_t i = 0; i < g->count; i++) {
                assert_int_equal(csd_session_run(&s, g->inputs + i * g->pixels, g->pixels, logits, g->classes), CSD_OK);
                assert_memory_equal(logits, run->logits + i * g->classes, g->classes * sizeof(int32_t));
            }
            free(arena);
            runs++;
        }
    }
    assert_true(runs >= 8);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_golden_cases)};
    return cmocka_run_group_tests_name("csd golden cases", tests, NULL, NULL);
}

/*  Tests of the id window: it remembers exactly the last N ids, with
    their marks, whatever the order of collisions and evictions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_window.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

//  An id from a number; low_bits of hash keep many ids on few home slots,
//  and a shared tag gives them all the same bits 8 to 11 (the window's
//  tag), so that only their last bytes tell them apart.
static zf_id_t
s_id_with (uint32_t n, uint32_t low_bits, bool shared_tag)
{
    zf_id_t id;
    memset (&id, 0, sizeof id);
    uint64_t hash = low_bits ? (n % low_bits) : (uint64_t) n * 0x9E3779B97F4A7C15ull;
    memcpy (id.bytes, &hash, sizeof hash);
    memcpy (id.bytes + (shared_tag ? 12 : 8), &n, sizeof n);
    return id;
}

static zf_id_t
s_id (uint32_t n, uint32_t low_bits)
{
    return s_id_with (n, low_bits, false);
}

static void
test_window (void **state)
{
    zf_window_t *dedup = zf_window_new (4);
    assert_non_null (dedup);
    uint8_t evicted = 9;
    for (uint32_t n = 0; n < 4; n++) {
        zf_id_t id = s_id (n, 0);
        assert_int_equal (zf_window_set (dedup, &id, 1, &evicted), 0);
        assert_int_equal (evicted, 0);
    }
    zf_id_t two = s_id (2, 0);
    assert_int_equal (zf_window_set (dedup, &two, 2, &evicted), 1); // known: outcome updated
    assert_int_equal (zf_window_get (dedup, &two), 2);
    zf_id_t four = s_id (4, 0), zero = s_id (0, 0);
    assert_int_equal (zf_window_set (dedup, &four, 3, &evicted), 0);
    assert_int_equal (evicted, 1);                      // id 0 left
    assert_int_equal (zf_window_get (dedup, &zero), 0); // and is forgotten
    assert_int_equal (zf_window_get (dedup, &four), 3);
    assert_int_equal (zf_window_get (dedup, &two), 2);
    zf_window_destroy (&dedup);
    assert_null (dedup);
    assert_null (zf_window_new (0));
}

//  Against a model: a window of W over a stream of ids drawn with repeats,
//  many sharing home slots, so that removals shift long clusters.
static void
s_model (uint32_t window, uint32_t low_bits, bool shared_tag)
{
    // Under the sanitizers (a debug build, every access checked) fewer
    // steps: still 8 windows' worth of evictions, in a few seconds on a
    // busy machine.
#if defined(__SANITIZE_ADDRESS__)
    enum { STEPS = 40000, RANGE = 5000 };
#else
    enum { STEPS = 200000, RANGE = 5000 };
#endif
    zf_window_t *dedup = zf_window_new (window);
    uint32_t *ring = (uint32_t *) calloc (window, sizeof (uint32_t)); // n + 1, 0 unused
    uint8_t *outcome = (uint8_t *) calloc (RANGE, 1);                 // 0 when not in window
    size_t head = 0;
    srand (7);
    for (int step = 0; step < STEPS; step++) {
        uint32_t n = (uint32_t) rand () % RANGE;
        uint8_t value = (uint8_t) (1 + rand () % 4);
        zf_id_t id = s_id_with (n, low_bits, shared_tag);
        assert_int_equal (zf_window_get (dedup, &id), outcome[n]);
        uint8_t evicted = 0, expect_evicted = 0;
        uint8_t old = zf_window_set (dedup, &id, value, &evicted);
        assert_int_equal (old, outcome[n]);
        if (!old) {
            if (ring[head]) {
                expect_evicted = outcome[ring[head] - 1];
                outcome[ring[head] - 1] = 0;
            }
            ring[head] = n + 1;
            head = (head + 1) % window;
            assert_int_equal (evicted, expect_evicted);
        }
        outcome[n] = value;
    }
    for (uint32_t n = 0; n < RANGE; n++) {
        zf_id_t id = s_id_with (n, low_bits, shared_tag);
        assert_int_equal (zf_window_get (dedup, &id), outcome[n]);
    }
    free (ring);
    free (outcome);
    zf_window_destroy (&dedup);
}

static void
test_model_spread (void **state)
{
    s_model (1000, 0, false);
}

static void
test_model_clustered (void **state)
{
    s_model (1000, 64, false); // ids fall on 64 home slots: long clusters
}

//  Ids that share home slots and tags: only the ring tells them apart.
static void
test_model_same_tags (void **state)
{
    s_model (1000, 64, true);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_window),
        cmocka_unit_test (test_model_spread),
        cmocka_unit_test (test_model_clustered),
        cmocka_unit_test (test_model_same_tags),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}

/*  Tests of the timer heap and the intrusive list, against simple models,
    from a fixed seed.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_heap.h"
#include "zf_list.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define N 2000

typedef struct {
    zf_heap_node_t timer;
    bool on;        // on the heap
    zf_link_t link; // on the list
    int value;
} s_item_t;

static void
test_heap_against_a_model (void **state)
{
    static s_item_t items[N];
    memset (items, 0, sizeof items);
    zf_heap_t heap = { 0 };
    assert_null (zf_heap_first (&heap));
    unsigned seed = 20261202;
    size_t on = 0;
    for (int step = 0; step < 20 * N; step++) {
        s_item_t *item = &items[rand_r (&seed) % N];
        if (!item->on) {
            zf_heap_push (&heap, &item->timer, rand_r (&seed) % 1000);
            item->on = true;
            on++;
        }
        else if (rand_r (&seed) % 3 == 0)
            zf_heap_move (&heap, &item->timer, rand_r (&seed) % 1000); // sooner or later
        else if (rand_r (&seed) % 2) {
            zf_heap_remove (&heap, &item->timer); // from anywhere, not only the first
            item->on = false;
            on--;
        }
        assert_int_equal (heap.size, on);
        // The first is due no later than any other on the heap.
        zf_heap_node_t *first = zf_heap_first (&heap);
        if (step % 97 == 0 && first)
            for (int i = 0; i < N; i++)
                if (items[i].on)
                    assert_true (first->due <= items[i].timer.due);
    }
    // Taken off in order of due time.
    int64_t last = -1;
    zf_heap_node_t *node;
    while ((node = zf_heap_first (&heap))) {
        assert_true (node->due >= last);
        last = node->due;
        zf_heap_remove (&heap, node);
        ZF_CONTAINER (node, s_item_t, timer)->on = false;
    }
    zf_heap_destroy (&heap);
    assert_null (heap.nodes);
}

static void
test_list (void **state)
{
    s_item_t items[5];
    zf_list_t list = { 0 };
    for (int i = 0; i < 5; i++) {
        items[i].value = i;
        if (i == 0)
            zf_list_push_front (&list, &items[i].link);
        else
            zf_list_push (&list, &items[i].link);
    }
    zf_list_remove (&list, &items[2].link); // the middle
    zf_list_remove (&list, &items[0].link); // the head
    zf_list_remove (&list, &items[4].link); // the tail
    zf_list_push_front (&list, &items[4].link);
    assert_int_equal (list.size, 3);
    int expect[] = { 4, 1, 3 }, n = 0;
    for (zf_link_t *link = list.head; link; link = link->next)
        assert_int_equal (ZF_CONTAINER (link, s_item_t, link)->value, expect[n++]);
    assert_int_equal (n, 3);
    assert_int_equal (ZF_CONTAINER (list.tail, s_item_t, link)->value, 3);
    assert_null (ZF_CONTAINER_OR_NULL (list.head->prev, s_item_t, link));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_heap_against_a_model),
        cmocka_unit_test (test_list),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}

/*  Tests of id derivation: SipHash-2-4-128 against its authors' vectors, and
    every derivation against schemas/vectors/ids.txt, written by an
    independent implementation (make_vectors.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "zf_id.h"

static void
test_siphash_reference (void **state)
{
    static const char *expected[] = { "a3817f04ba25a8e66df67214c7550293",
                                      "da87c1d86b99af44347659119b22fc45",
                                      "8177228da4a45dc7fca38bdef60affe4" };
    uint8_t key[16], message[16];
    for (int i = 0; i < 16; i++)
        key[i] = message[i] = (uint8_t) i;
    for (int len = 0; len < 3; len++) {
        zf_id_t out;
        char hex[ZF_ID_HEX];
        zf_siphash128 (key, message, (size_t) len, out.bytes);
        assert_string_equal (zf_id_format (&out, hex), expected[len]);
    }
}

static void
test_derivations_match_spec (void **state)
{
    char path[512];
    snprintf (path, sizeof path, "%s/schemas/vectors/ids.txt", ZFLOW_SOURCE_DIR);
    FILE *file = fopen (path, "r");
    assert_non_null (file);
    char line[512];
    int checked = 0;
    while (fgets (line, sizeof line, file)) {
        if (line[0] == '#')
            continue;
        char kind[16], input[256], expected[64];
        unsigned long long number;
        assert_int_equal (sscanf (line, "%15s %255s %llu %63s", kind, input, &number, expected), 4);
        zf_id_t id;
        if (strcmp (kind, "child") == 0) {
            zf_id_t parent;
            assert_int_equal (zf_id_parse (&parent, input), 0);
            id = zf_id_child (&parent, (uint32_t) number);
        }
        else if (strcmp (kind, "output") == 0) {
            // PARENT/GROUP
            char *slash = strchr (input, '/');
            assert_non_null (slash);
            *slash = 0;
            zf_id_t parent;
            assert_int_equal (zf_id_parse (&parent, input), 0);
            id = zf_id_output (&parent, slash + 1, (uint32_t) number);
        }
        else if (strcmp (kind, "firing") == 0)
            id = zf_id_firing (input, (int64_t) number);
        else {
            assert_string_equal (kind, "source");
            id = zf_id_source (input, number);
        }
        char hex[ZF_ID_HEX];
        if (strcmp (zf_id_format (&id, hex), expected) != 0)
            fail_msg ("%s %s %llu: got %s, spec says %s", kind, input, number, hex, expected);
        checked++;
    }
    fclose (file);
    assert_int_equal (checked, 12);
}

static void
test_derivation_properties (void **state)
{
    // The same inputs give the same id; any change gives another.
    zf_id_t parent = zf_id_source ("p/seeds", 7);
    zf_id_t a = zf_id_child (&parent, 0), b = zf_id_child (&parent, 0);
    zf_id_t c = zf_id_child (&parent, 1);
    assert_true (zf_id_eq (&a, &b));
    assert_false (zf_id_eq (&a, &c));
    // Two groups' outputs of one item differ; one group's are the same
    // on every attempt, and differ from the broker's copies.
    zf_id_t fetch = zf_id_output (&parent, "fetch", 0), audit = zf_id_output (&parent, "audit", 0);
    zf_id_t again = zf_id_output (&parent, "fetch", 0);
    assert_false (zf_id_eq (&fetch, &audit));
    assert_true (zf_id_eq (&fetch, &again));
    assert_false (zf_id_eq (&fetch, &a));
    zf_id_t f1 = zf_id_firing ("p/tick/job", 1000), f2 = zf_id_firing ("p/tick/job", 1001);
    assert_false (zf_id_eq (&f1, &f2));
    // a firing and a source item with the same name and number differ
    zf_id_t s1 = zf_id_source ("p/tick/job", 1000);
    assert_false (zf_id_eq (&f1, &s1));
    // long names work and stay distinct
    char long_name[2000];
    memset (long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    zf_id_t l1 = zf_id_source (long_name, 1), l2 = zf_id_source (long_name, 2);
    assert_false (zf_id_eq (&l1, &l2));
    assert_false (zf_id_is_zero (&l1));
}

static void
test_format_parse (void **state)
{
    zf_id_t id = zf_id_random (), back;
    char hex[ZF_ID_HEX];
    zf_id_format (&id, hex);
    assert_int_equal (strlen (hex), 32);
    assert_int_equal (zf_id_parse (&back, hex), 0);
    assert_true (zf_id_eq (&id, &back));
    assert_int_equal (zf_id_parse (&back, "000102030405060708090A0B0C0D0E0F"), 0);
    assert_int_equal (back.bytes[15], 0x0f);
    assert_int_equal (zf_id_parse (&back, "0001"), -1);
    assert_int_equal (zf_id_parse (&back, "zz0102030405060708090a0b0c0d0e0f"), -1);
    assert_int_equal (zf_id_parse (&back, NULL), -1);
    zf_id_t other = zf_id_random ();
    assert_false (zf_id_eq (&id, &other));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_siphash_reference),
        cmocka_unit_test (test_derivations_match_spec),
        cmocka_unit_test (test_derivation_properties),
        cmocka_unit_test (test_format_parse),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}

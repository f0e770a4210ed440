/*  Tests of the bounded msgpack reader: every encoding of every type it
    reads, and refusal of what does not fit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "zf_mp.h"

static void
test_integers (void **state)
{
    static const struct {
        uint8_t bytes[9]; // encoding
        size_t size;      // its length
        int64_t value;    // what it holds
    } cases[] = {
        { { 0x05 }, 1, 5 },
        { { 0x7f }, 1, 127 },
        { { 0xcc, 0xff }, 2, 255 },
        { { 0xcd, 0x01, 0x00 }, 3, 256 },
        { { 0xce, 0x00, 0x01, 0x00, 0x00 }, 5, 65536 },
        { { 0xcf, 0, 0, 0, 1, 0, 0, 0, 0 }, 9, 4294967296LL },
        { { 0xff }, 1, -1 },
        { { 0xe0 }, 1, -32 },
        { { 0xd0, 0x80 }, 2, -128 },
        { { 0xd1, 0xff, 0x00 }, 3, -256 },
        { { 0xd2, 0xff, 0xff, 0xff, 0xfe }, 5, -2 },
        { { 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0 }, 9, INT64_MIN },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        zf_mp_t mp;
        int64_t value;
        zf_mp_init (&mp, cases[i].bytes, cases[i].size);
        assert_int_equal (zf_mp_int (&mp, &value, NULL), 0);
        assert_true (value == cases[i].value);
        assert_int_equal (zf_mp_left (&mp), 0);
        // every shorter prefix is truncated
        for (size_t cut = 0; cut < cases[i].size; cut++) {
            zf_error_t err;
            zf_mp_init (&mp, cases[i].bytes, cut);
            assert_int_equal (zf_mp_int (&mp, &value, &err), -1);
            assert_int_equal (err.code, ZF_ETRUNC);
        }
    }
    // a negative number is no uint; a uint over INT64_MAX is no int64
    zf_mp_t mp;
    uint64_t u;
    int64_t s;
    zf_error_t err;
    zf_mp_init (&mp, "\xff", 1);
    assert_int_equal (zf_mp_uint (&mp, &u, &err), -1);
    assert_int_equal (err.code, ZF_ETYPE);
    zf_mp_init (&mp, "\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9);
    assert_int_equal (zf_mp_int (&mp, &s, &err), -1);
    assert_int_equal (err.code, ZF_EVALUE);
    zf_mp_init (&mp, "\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9);
    assert_int_equal (zf_mp_uint (&mp, &u, NULL), 0);
    assert_true (u == UINT64_MAX);
}

static void
test_strings_and_bins (void **state)
{
    zf_mp_t mp;
    const char *str;
    const uint8_t *bin;
    uint32_t len;
    zf_mp_init (&mp,
                "\xa3"
                "abc",
                4);
    assert_int_equal (zf_mp_str (&mp, &str, &len, NULL), 0);
    assert_int_equal (len, 3);
    assert_memory_equal (str, "abc", 3);
    zf_mp_init (&mp,
                "\xd9\x02"
                "hi",
                4);
    assert_int_equal (zf_mp_str (&mp, &str, &len, NULL), 0);
    assert_int_equal (len, 2);
    zf_mp_init (&mp,
                "\xda\x00\x01"
                "x",
                4);
    assert_int_equal (zf_mp_str (&mp, &str, &len, NULL), 0);
    zf_mp_init (&mp, "\xc4\x02\x01\x02", 4);
    assert_int_equal (zf_mp_bin (&mp, &bin, &len, NULL), 0);
    assert_int_equal (len, 2);
    assert_int_equal (bin[1], 2);
    // lengths past the end
    zf_error_t err;
    zf_mp_init (&mp,
                "\xa5"
                "abc",
                4);
    assert_int_equal (zf_mp_str (&mp, &str, &len, &err), -1);
    assert_int_equal (err.code, ZF_ETRUNC);
    assert_ptr_equal (mp.pos, (const uint8_t *) mp.end - 4); // not moved
    zf_mp_init (&mp, "\xc6\xff\xff\xff\xff", 5);
    assert_int_equal (zf_mp_bin (&mp, &bin, &len, &err), -1);
    assert_int_equal (err.code, ZF_ETRUNC);
    // a str is no bin
    zf_mp_init (&mp,
                "\xa1"
                "x",
                2);
    assert_int_equal (zf_mp_bin (&mp, &bin, &len, &err), -1);
    assert_int_equal (err.code, ZF_ETYPE);
    assert_string_equal (err.text, "expected bin, found str");
}

static void
test_containers (void **state)
{
    zf_mp_t mp;
    uint32_t count;
    zf_error_t err;
    zf_mp_init (&mp, "\x92\x01\x02", 3);
    assert_int_equal (zf_mp_array (&mp, &count, NULL), 0);
    assert_int_equal (count, 2);
    // a map of 2 entries needs at least 4 bytes
    zf_mp_init (&mp, "\x82\x01\x02", 3);
    assert_int_equal (zf_mp_map (&mp, &count, &err), -1);
    assert_int_equal (err.code, ZF_ETRUNC);
    zf_mp_init (&mp, "\xdf\x00\x00\x00\x01\xa1k\xc0", 8);
    assert_int_equal (zf_mp_map (&mp, &count, NULL), 0);
    assert_int_equal (count, 1);
    assert_true (zf_mp_key_is (&mp, "k"));
    assert_int_equal (zf_mp_nil (&mp, NULL), 0);
    assert_int_equal (zf_mp_peek (&mp), ZF_MP_END);
}

static void
test_skip (void **state)
{
    // every type, nested: {"a": [1, -1, 1.5, "s", bin, nil, true, ext, {}]}
    static const uint8_t doc[] = { 0x81, 0xa1, 'a',  0x99, 0x01, 0xff, 0xcb, 0x3f, 0xf8,
                                   0,    0,    0,    0,    0,    0,    0xa1, 's',  0xc4,
                                   0x01, 0x00, 0xc0, 0xc3, 0xd4, 0x01, 0x02, 0x80 };
    zf_mp_t mp;
    zf_mp_init (&mp, doc, sizeof doc);
    assert_int_equal (zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, NULL), 0);
    assert_int_equal (zf_mp_left (&mp), 0);
    // each cut fails and leaves the cursor where it was
    for (size_t cut = 0; cut < sizeof doc; cut++) {
        zf_error_t err;
        zf_mp_init (&mp, doc, cut);
        assert_int_equal (zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, &err), -1);
        assert_ptr_equal (mp.pos, doc);
    }
    // depth: two levels allowed, three refused
    zf_error_t err;
    zf_mp_init (&mp, "\x91\x91\x91\xc0", 4);
    assert_int_equal (zf_mp_skip (&mp, 2, &err), -1);
    assert_int_equal (err.code, ZF_EDEPTH);
    zf_mp_init (&mp, "\x91\x91\x91\xc0", 4);
    assert_int_equal (zf_mp_skip (&mp, 3, NULL), 0);
}

static void
test_header (void **state)
{
    (void) state;
    // {"tenant": "acme", "zflow-error": "boom"}
    const uint8_t map[] = { 0x82, 0xa6, 't', 'e',  'n', 'a',  'n', 't', 0xa4, 'a',
                            'c',  'm',  'e', 0xab, 'z', 'f',  'l', 'o', 'w',  '-',
                            'e',  'r',  'r', 'o',  'r', 0xa4, 'b', 'o', 'o',  'm' };
    uint32_t len = 0;
    const char *value = zf_mp_header (map, sizeof map, "zflow-error", &len);
    assert_non_null (value);
    assert_int_equal (len, 4);
    assert_memory_equal (value, "boom", 4);
    assert_null (zf_mp_header (map, sizeof map, "tenan", &len));
    assert_null (zf_mp_header (map, sizeof map - 3, "zflow-error", &len)); // cut short
    assert_null (zf_mp_header (map + 1, sizeof map - 1, "tenant", &len));  // not a map
    assert_null (zf_mp_header (NULL, 0, "tenant", &len));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_integers),   cmocka_unit_test (test_strings_and_bins),
        cmocka_unit_test (test_containers), cmocka_unit_test (test_skip),
        cmocka_unit_test (test_header),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}

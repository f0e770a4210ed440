/*  Tests of JSON <-> msgpack: what a user types arrives as the value meant,
    any msgpack renders, and bad JSON says where. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "zf_json.h"

//  JSON -> msgpack -> JSON.
static char *
s_round (const char *json, zf_error_t *err)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    char *out = NULL;
    if (zf_json_to_msgpack (json, strlen (json), &pk, err) == 0)
        out = zf_msgpack_to_json (buffer.data, buffer.size, err);
    msgpack_sbuffer_destroy (&buffer);
    return out;
}

static void
test_round_trips (void **state)
{
    static const struct {
        const char *in;  // typed
        const char *out; // rendered back
    } cases[] = {
        { "42", "42" },
        { "-7", "-7" },
        { "18446744073709551615", "18446744073709551615" },
        { "2.5", "2.5" },
        { "1e3", "1000" },
        { " true ", "true" },
        { "null", "null" },
        { "\"a\\\"b\\\\c\\n\"", "\"a\\\"b\\\\c\\n\"" },
        { "\"\\u00e9\\ud83d\\ude00\"", "\"é😀\"" },
        { "[]", "[]" },
        { "{}", "{}" },
        { "{\"url\": \"http://127.0.0.1/\", \"n\": [1, {\"x\": null}]}",
          "{\"url\":\"http://127.0.0.1/\",\"n\":[1,{\"x\":null}]}" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        zf_error_t err;
        char *out = s_round (cases[i].in, &err);
        if (!out)
            fail_msg ("%s: %s", cases[i].in, err.text);
        assert_string_equal (out, cases[i].out);
        free (out);
    }
}

static void
test_bad_json (void **state)
{
    static const struct {
        const char *in;      // typed
        const char *message; // the error
    } cases[] = {
        { "", "column 1: expected a value, found end of input" },
        { "{bad}", "column 2: expected '\"' to start a key, found 'b'" },
        { "[1,]", "column 4: expected a value, found ']'" },
        { "[1 2]", "column 4: expected ',' or ']', found '2'" },
        { "{\"a\" 1}", "column 6: expected ':', found '1'" },
        { "01", "column 2: expected no leading zero, found '1'" },
        { "1.", "column 3: expected a digit after '.', found end of input" },
        { "\"abc", "column 5: expected '\"' to close the string, found end of input" },
        { "\"\\x\"", "column 3: expected one of" },
        { "\"\\ud800\"", "column 8: expected a low surrogate" },
        { "tru", "column 1: expected a value, found 't'" },
        { "1 2", "column 3: expected end of input after the value, found '2'" },
        { "\"\xff\"", "column 2: expected UTF-8 text, found byte 0xff" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        zf_error_t err = { 0 };
        char *out = s_round (cases[i].in, &err);
        if (out)
            fail_msg ("'%s' parsed as %s", cases[i].in, out);
        if (strncmp (err.text, cases[i].message, strlen (cases[i].message)) != 0)
            fail_msg ("'%s': got '%s'", cases[i].in, err.text);
    }
    // 65 levels is too deep; 64 is fine
    char deep[200] = "";
    for (int i = 0; i < 65; i++)
        strcat (deep, "[");
    zf_error_t err;
    assert_null (s_round (deep, &err));
    assert_non_null (strstr (err.text, "nested deeper than 64"));
}

static void
test_any_msgpack_renders (void **state)
{
    // bin, ext, a non-string key, NaN, invalid UTF-8
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 5);
    msgpack_pack_str (&pk, 3);
    msgpack_pack_str_body (&pk, "bin", 3);
    msgpack_pack_bin (&pk, 3);
    msgpack_pack_bin_body (&pk, "\x00\x01\xff", 3);
    msgpack_pack_str (&pk, 3);
    msgpack_pack_str_body (&pk, "ext", 3);
    msgpack_pack_ext (&pk, 1, 5);
    msgpack_pack_ext_body (&pk, "z", 1);
    msgpack_pack_int (&pk, 7);
    msgpack_pack_true (&pk);
    msgpack_pack_str (&pk, 3);
    msgpack_pack_str_body (&pk, "nan", 3);
    msgpack_pack_double (&pk, 0.0 / 0.0);
    msgpack_pack_str (&pk, 3);
    msgpack_pack_str_body (&pk, "bad", 3);
    msgpack_pack_str (&pk, 2);
    msgpack_pack_str_body (&pk, "a\xc3", 2);
    zf_error_t err;
    char *json = zf_msgpack_to_json (buffer.data, buffer.size, &err);
    assert_non_null (json);
    assert_string_equal (json, "{\"bin\":{\"$base64\":\"AAH/\"},\"ext\":{\"$ext\":5,\"$base64\":"
                               "\"eg==\"},\"7\":true,\"nan\":null,\"bad\":\"a\\ufffd\"}");
    free (json);
    // truncated or trailing bytes are refused
    assert_null (zf_msgpack_to_json (buffer.data, buffer.size - 1, &err));
    assert_int_equal (err.code, ZF_ETRUNC);
    assert_null (zf_msgpack_to_json ("\x01\x02", 2, &err));
    assert_non_null (strstr (err.text, "1 bytes after the value"));
    // Doubles in the fewest digits that read back the same.
    msgpack_sbuffer_clear (&buffer);
    msgpack_pack_array (&pk, 4);
    msgpack_pack_double (&pk, 0.041);
    msgpack_pack_double (&pk, 0.1 + 0.2);
    msgpack_pack_double (&pk, 1e300);
    msgpack_pack_float (&pk, 0.5f);
    json = zf_msgpack_to_json (buffer.data, buffer.size, &err);
    assert_string_equal (json, "[0.041,0.30000000000000004,1e+300,0.5]");
    free (json);
    msgpack_sbuffer_destroy (&buffer);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_round_trips),
        cmocka_unit_test (test_bad_json),
        cmocka_unit_test (test_any_msgpack_renders),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}

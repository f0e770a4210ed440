/*  libFuzzer target: the ZFP/1 decoder on any bytes.

    The input is split into frames the way the test vectors are stored (a
    4-byte big-endian length, then that many bytes; a length past the end
    takes what is left), so the vectors in schemas/vectors are a seed corpus.
    Whatever the input, decode returns 0 or -1 with a reason; a message that
    decodes must encode again, and decode again to the same bytes.
*/
#include "zf_mp.h"
#include "zf_proto.h"

#include <stdio.h>
#include <stdlib.h>

//  The fuzzer's oracle: unlike assert, it stays in release builds.
#define CHECK(condition)                                                                           \
    do {                                                                                           \
        if (!(condition)) {                                                                        \
            fprintf (stderr, "fuzz_decode: check failed: %s\n", #condition);                       \
            abort ();                                                                              \
        }                                                                                          \
    } while (0)

static zmsg_t *
s_frames (const uint8_t *data, size_t size)
{
    zmsg_t *msg = zmsg_new ();
    while (size >= 4 && zmsg_size (msg) < 300) {
        size_t len =
            (size_t) data[0] << 24 | (size_t) data[1] << 16 | (size_t) data[2] << 8 | data[3];
        data += 4;
        size -= 4;
        if (len > size)
            len = size;
        zmsg_addmem (msg, data, len);
        data += len;
        size -= len;
    }
    return msg;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static zf_proto_t *proto;
    if (!proto) {
        zsys_init ();
        zsys_set_logstream (NULL);
        proto = zf_proto_new ();
    }
    // The reader alone, on the raw bytes.
    zf_mp_t mp;
    zf_mp_init (&mp, data, size);
    while (zf_mp_left (&mp) && zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, NULL) == 0)
        ;

    zmsg_t *msg = s_frames (data, size);
    zf_error_t err = { 0 };
    if (zf_proto_decode (proto, &msg, &err) != 0) {
        CHECK (err.text[0]); // every refusal says why
        return 0;
    }
    // What decodes, encodes; and the encoding is a fixed point.
    zmsg_t *once = zf_proto_encode (proto, &err);
    CHECK (once);
    zmsg_t *copy = zmsg_dup (once);
    zf_proto_t *again = zf_proto_new ();
    int rc = zf_proto_decode (again, &copy, &err);
    CHECK (rc == 0);
    zmsg_t *twice = zf_proto_encode (again, &err);
    CHECK (twice && zmsg_size (once) == zmsg_size (twice));
    zframe_t *a = zmsg_first (once), *b = zmsg_first (twice);
    for (; a && b; a = zmsg_next (once), b = zmsg_next (twice))
        CHECK (zframe_eq (a, b));
    zmsg_destroy (&once);
    zmsg_destroy (&twice);
    zf_proto_destroy (&again);
    return 0;
}

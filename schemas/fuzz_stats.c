/*  libFuzzer target: the stats event's decoder on any bytes.

    zflow top, zflow run's live view and the gateway's /metrics decode the
    broker's stats event from a SUB socket anyone on the events endpoint
    could publish to. Whatever the bytes, zf_stats_decode returns 0 or -1
    with a reason; an event that decodes must encode again, and decode
    again to the same bytes. Seeded with schemas/vectors/events/stats.msgpack.
*/
#include "zf_events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The fuzzer's oracle: unlike assert, it stays in release builds.
#define CHECK(condition)                                                                           \
    do {                                                                                           \
        if (!(condition)) {                                                                        \
            fprintf (stderr, "fuzz_stats: check failed: %s\n", #condition);                        \
            abort ();                                                                              \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static zf_stats_t *stats, *again;
    if (!stats) {
        stats = zf_stats_new ();
        again = zf_stats_new ();
    }
    zf_error_t err = { 0 };
    if (zf_stats_decode (stats, data, size, &err) != 0) {
        CHECK (err.text[0]); // every refusal says why
        return 0;
    }
    // What decodes, encodes; and the encoding is a fixed point.
    msgpack_sbuffer once, twice;
    msgpack_sbuffer_init (&once);
    msgpack_sbuffer_init (&twice);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &once, msgpack_sbuffer_write);
    zf_stats_encode (stats, &pk);
    CHECK (zf_stats_decode (again, (const uint8_t *) once.data, once.size, &err) == 0);
    msgpack_packer_init (&pk, &twice, msgpack_sbuffer_write);
    zf_stats_encode (again, &pk);
    CHECK (once.size == twice.size && memcmp (once.data, twice.data, once.size) == 0);
    msgpack_sbuffer_destroy (&once);
    msgpack_sbuffer_destroy (&twice);
    return 0;
}

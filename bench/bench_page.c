/*  bench_page: a processor plugin that answers a URL with the result the
    fetcher makes of bench/fetch's page (a 1 KiB text file from nginx),
    without any HTTP: the same fields, the same headers, the same sizes.

    bench/fetch runs its pipeline with this plugin in the fetcher's place.
    What zflow's processes then spend an item is what the pipeline itself
    costs (the producer, the broker's two hops, the sink, and an actor's
    taking of items and passing on of results), apart from HTTP: added to
    what the bare libcurl loop and nginx spend a request, it bounds the
    rate any fetcher in this pipeline can reach on the machine's cores.
*/
#include <zflow_plugin.h>

#include <msgpack.h>
#include <stdio.h>
#include <string.h>

int zflow_process (zflow_call_t *call);

static void
s_pack_str (msgpack_packer *pk, const char *text, size_t len)
{
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, text, len);
}

static void
s_pack_cstr (msgpack_packer *pk, const char *text)
{
    s_pack_str (pk, text, strlen (text));
}

int
zflow_process (zflow_call_t *call)
{
    msgpack_unpacked url;
    msgpack_unpacked_init (&url);
    if (msgpack_unpack_next (&url, (const char *) call->body, call->size, NULL) !=
            MSGPACK_UNPACK_SUCCESS ||
        url.data.type != MSGPACK_OBJECT_STR) {
        msgpack_unpacked_destroy (&url);
        snprintf (call->error, call->error_size, "an item must be a URL");
        return -1;
    }
    static const char *headers[][2] = {
        { "server", "nginx/1.22.1" },
        { "date", "Tue, 24 Nov 2026 16:25:10 GMT" },
        { "content-type", "text/plain" },
        { "content-length", "1024" },
        { "last-modified", "Tue, 24 Nov 2026 16:17:04 GMT" },
        { "connection", "keep-alive" },
        { "etag", "\"6b05b880-400\"" },
        { "accept-ranges", "bytes" },
    };
    char body[1024];
    memset (body, 'z', sizeof body);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 6);
    s_pack_cstr (&pk, "url");
    s_pack_str (&pk, url.data.via.str.ptr, url.data.via.str.size);
    s_pack_cstr (&pk, "status");
    msgpack_pack_int (&pk, 200);
    s_pack_cstr (&pk, "headers");
    size_t count = sizeof headers / sizeof headers[0];
    msgpack_pack_map (&pk, (uint32_t) count);
    for (size_t i = 0; i < count; i++) {
        s_pack_cstr (&pk, headers[i][0]);
        s_pack_cstr (&pk, headers[i][1]);
    }
    s_pack_cstr (&pk, "body");
    s_pack_str (&pk, body, sizeof body);
    s_pack_cstr (&pk, "elapsed_ms");
    msgpack_pack_int64 (&pk, 0);
    s_pack_cstr (&pk, "attempt");
    msgpack_pack_int (&pk, 1);
    int rc = call->emit (call, buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    msgpack_unpacked_destroy (&url);
    return rc;
}

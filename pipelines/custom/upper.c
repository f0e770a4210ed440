/*  upper: a complete custom actor on libzflow (kind = exec).

    It takes strings from its input queue and emits each one in upper case
    to its output queue. Anything else is dead-lettered at once: retrying
    would not turn it into a string.

    Its settings come from the environment, which `zflow run` sets for the
    actors it starts (and which you set by hand to run it alone):

        ZFLOW_ENDPOINT     the broker, e.g. tcp://127.0.0.1:5670
        ZFLOW_ACTOR        the actor's name (its consumer group)
        ZFLOW_INPUT        the queue it reads
        ZFLOW_OUTPUT       the queue it writes
        ZFLOW_WORKER       its worker number (optional, 0)
        ZFLOW_CONCURRENCY  items it holds at once (optional, 16)

    It stops on SIGINT or SIGTERM: the session says BYE and the broker
    gives the items still held to another worker.
*/
#include <zflow.h>
#include <czmq.h>
#include <ctype.h>

static const char *
s_env (const char *name, const char *fallback)
{
    const char *value = getenv (name);
    return value && *value ? value : fallback;
}

int
main (void)
{
    const char *endpoint = s_env ("ZFLOW_ENDPOINT", NULL);
    const char *actor = s_env ("ZFLOW_ACTOR", "upper");
    const char *input = s_env ("ZFLOW_INPUT", NULL);
    const char *output = s_env ("ZFLOW_OUTPUT", NULL);
    if (!endpoint || !input || !output) {
        fprintf (stderr, "upper: set ZFLOW_ENDPOINT, ZFLOW_INPUT and ZFLOW_OUTPUT\n");
        return 2;
    }
    zsys_init (); // installs the SIGINT/SIGTERM handler that sets zsys_interrupted
    zf_client_t *client =
        zf_client_new (endpoint, actor, input, atoi (s_env ("ZFLOW_CONCURRENCY", "16")));
    zf_client_set_worker (client, atoi (s_env ("ZFLOW_WORKER", "0")));

    zf_item_t *item;
    while ((item = zf_client_next (client, -1))) {
        size_t size;
        const uint8_t *body = (const uint8_t *) zf_item_body (item, &size);
        // A msgpack string: fixstr, str8, str16 or str32, then its bytes.
        size_t header = size == 0                  ? 0
                        : (body[0] & 0xe0) == 0xa0 ? 1
                        : body[0] == 0xd9          ? 2
                        : body[0] == 0xda          ? 3
                        : body[0] == 0xdb          ? 5
                                                   : 0;
        if (header == 0 || header > size) {
            zf_client_nack (client, &item, "not a string", true, 0);
            continue;
        }
        uint8_t *shouted = (uint8_t *) malloc (size);
        memcpy (shouted, body, size);
        for (size_t i = header; i < size; i++)
            shouted[i] = (uint8_t) toupper (shouted[i]);
        zf_client_emit (client, item, output, shouted, size);
        free (shouted);
        zf_client_ack (client, &item); // after the emit: its output goes first
    }
    zf_client_destroy (&client);
    return 0;
}

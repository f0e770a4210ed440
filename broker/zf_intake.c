/*  zf_intake: the broker's PULL socket. See zf_intake.h. */
#include "zf_intake.h"
#include "zf_json.h"
#include "zf_mp.h"
#include "zf_publish.h"

//  A PUSH has no way back: a refused message is counted, published as an
//  error.protocol event (zflow tap), and logged, at most once a second
//  with the count of those not logged since.
static void
s_refuse (zf_server_t *server, const char *reason)
{
    zf_publish_rejected (server, "intake", "", reason);
    int64_t now = zclock_mono ();
    if (now - server->intake_logged < 1000) {
        server->intake_unlogged++;
        return;
    }
    if (server->intake_unlogged)
        zsys_warning ("broker: intake refused a message: %s (and %llu more in the last second)",
                      reason, (unsigned long long) server->intake_unlogged);
    else
        zsys_warning ("broker: intake refused a message: %s", reason);
    server->intake_logged = now;
    server->intake_unlogged = 0;
}

void
zf_intake_message (zf_server_t *server, zmsg_t *msg)
{
    char reason[400] = "";
    zframe_t *name = zmsg_first (msg);
    zframe_t *body = zmsg_next (msg);
    if (zmsg_size (msg) != 2)
        snprintf (reason, sizeof reason, "%zu frames; intake takes [queue][msgpack body]",
                  zmsg_size (msg));
    else if (zframe_size (name) == 0 || zframe_size (name) > ZF_NAME_MAX ||
             memchr (zframe_data (name), 0, zframe_size (name)))
        snprintf (reason, sizeof reason, "frame 0 is not a queue name");
    else {
        char queue_name[ZF_NAME_MAX + 1];
        memcpy (queue_name, zframe_data (name), zframe_size (name));
        queue_name[zframe_size (name)] = 0;
        zf_mp_t mp;
        zf_mp_init (&mp, zframe_data (body), zframe_size (body));
        zf_error_t err;
        zf_queue_t *queue = zf_store_lookup (server->store, queue_name);
        if (!zf_json_name_ok (queue_name))
            snprintf (reason, sizeof reason, "frame 0 is not a queue name (not UTF-8 text)");
        else if (!queue)
            snprintf (reason, sizeof reason, "no queue '%s' in this pipeline", queue_name);
        else if (zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, &err) || zf_mp_left (&mp))
            snprintf (reason, sizeof reason, "body is not one msgpack value: %s",
                      zf_mp_left (&mp) ? "bytes after the value" : err.text);
        else {
            zf_env_t env = { .id = zf_id_random (), .ts = zclock_time () };
            zmsg_remove (msg, body);
            zf_store_put (server->store, queue, &env, &body);
        }
    }
    if (reason[0])
        s_refuse (server, reason);
    zmsg_destroy (&msg);
}

bool
zf_intake_open (zf_server_t *server)
{
    return zf_store_has_room (server->store);
}

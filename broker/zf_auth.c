/*  zf_auth: who gets into the broker. See zf_auth.h. */
#include "zf_auth.h"
#include "zf_curve.h"
#include "zf_publish.h"

#include <sys/stat.h>

#define ZAP_DOMAIN "zflow" // the one ZAP domain this broker lets in

int
zf_auth_open (zf_server_t *server, zf_error_t *err)
{
    const zf_broker_settings_t *set = &server->pipeline->broker_settings;
    const char *secret = set->curve_secret;
    if (!secret)
        return 0;
    char *path = zf_pipeline_path (server->pipeline, secret);
    server->curve = zf_curve_load (path, true, err);
    free (path);
    if (!server->curve)
        return -1;
    const char *clients = set->curve_clients;
    server->allowed_dir = clients ? zf_pipeline_path (server->pipeline, clients) : strdup ("");
    struct stat st;
    if (stat (server->allowed_dir, &st) != 0 || !S_ISDIR (st.st_mode))
        return zf_error_set (err, ZF_ECONFIG, "curve-clients: %s is not a folder",
                             server->allowed_dir);
    server->allowed = zcertstore_new (server->allowed_dir);
    server->zap = zsock_new (ZMQ_REP);
    if (zsock_bind (server->zap, "inproc://zeromq.zap.01") == -1)
        return zf_error_set (err, ZF_EIO,
                             "cannot answer ZAP requests: another broker in this process does");
    return 0;
}

void
zf_auth_request (zf_server_t *server)
{
    zmsg_t *request = zmsg_recv (server->zap);
    if (!request)
        return;
    char *version = zmsg_popstr (request);
    char *sequence = zmsg_popstr (request);
    char *domain = zmsg_popstr (request);
    char *address = zmsg_popstr (request);
    char *identity = zmsg_popstr (request);
    char *mechanism = zmsg_popstr (request);
    zframe_t *key = zmsg_pop (request);
    char key_txt[41] = "";
    if (key && zframe_size (key) == 32)
        zmq_z85_encode (key_txt, zframe_data (key), 32);
    char reason[600] = "";
    if (!domain || !streq (domain, ZAP_DOMAIN))
        snprintf (reason, sizeof reason, "ZAP domain '%s' is not %s", domain ? domain : "",
                  ZAP_DOMAIN);
    else if (!mechanism || !streq (mechanism, "CURVE"))
        snprintf (reason, sizeof reason, "mechanism %s: this broker takes CURVE only",
                  mechanism ? mechanism : "none");
    else if (!key_txt[0])
        snprintf (reason, sizeof reason, "no client key");
    else if (!zcertstore_lookup (server->allowed, key_txt))
        snprintf (reason, sizeof reason, "key %s is not among the certificates in %s", key_txt,
                  server->allowed_dir);
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "1.0");
    zmsg_addstr (reply, sequence ? sequence : "");
    zmsg_addstr (reply, reason[0] ? "400" : "200");
    zmsg_addstr (reply, reason[0] ? "not allowed" : "OK");
    zmsg_addstr (reply, reason[0] ? "" : key_txt); // the user id
    zmsg_addmem (reply, NULL, 0);                  // no metadata
    zmsg_send (&reply, server->zap);
    if (reason[0]) {
        zf_publish_auth (server, address ? address : "", key_txt, reason);
        zsys_warning ("broker: refused %s: %s", address ? address : "a client", reason);
    }
    zframe_destroy (&key);
    zstr_free (&version);
    zstr_free (&sequence);
    zstr_free (&domain);
    zstr_free (&address);
    zstr_free (&identity);
    zstr_free (&mechanism);
    zmsg_destroy (&request);
}

//  True if endpoint is reachable from other machines: tcp on an address
//  that is not loopback (a wildcard, an interface, a host name).
static bool
s_exposed (const char *endpoint)
{
    if (strncmp (endpoint, "tcp://", 6) != 0)
        return false; // ipc, inproc: this machine only
    const char *host = endpoint + 6;
    return !(strncmp (host, "127.", 4) == 0 || strncmp (host, "localhost:", 10) == 0 ||
             strncmp (host, "[::1]:", 6) == 0);
}

zsock_t *
zf_auth_bind (zf_server_t *server, int type, const char *endpoint, int listening, char *bound,
              size_t size, int64_t max_frame, bool insecure, zf_error_t *err)
{
    zcert_t *curve = server->curve;
    if (!curve && s_exposed (endpoint)) {
        if (!insecure) {
            zf_error_set (err, ZF_ECONFIG,
                          "%s is open to other machines without CURVE: anyone who reaches it "
                          "could put, take and read items; give the broker section curve-secret "
                          "and curve-clients (zflow keygen makes certificates), or pass "
                          "--insecure to run it open",
                          endpoint);
            return NULL;
        }
        zsys_warning ("broker: %s is open to other machines without CURVE (--insecure): anyone "
                      "who reaches it can put, take and read items",
                      endpoint);
    }
    zsock_t *sock = zsock_new (type);
    if (curve) {
        zcert_apply (curve, sock);
        zsock_set_curve_server (sock, 1);
        zsock_set_zap_domain (sock, ZAP_DOMAIN);
    }
    zsock_set_maxmsgsize (sock, (int) max_frame);
    zsock_set_linger (sock, 0);
    zsock_set_rcvtimeo (sock, 0); // reads take what has come
    zsock_set_sndhwm (sock, type == ZMQ_XPUB ? ZF_XPUB_HWM : 0);
    zsock_set_rcvhwm (sock, type == ZMQ_PULL ? 1000 : 0);
    // A slow subscriber loses events at its high-water mark (seq shows the
    // gap); the broker never waits for it.
    if (type == ZMQ_XPUB)
        zsock_set_sndtimeo (sock, 0);
    if (listening > 0)
        zsock_set_use_fd (sock, listening);
    if (zsock_bind (sock, "%s", endpoint) == -1) {
        zf_error_set (err, ZF_EIO, "cannot bind %s: %s", endpoint, zmq_strerror (zmq_errno ()));
        zsock_destroy (&sock);
        return NULL;
    }
    snprintf (bound, size, "%s", zsock_endpoint (sock));
    return sock;
}

/*  zf_curve: CURVE on the side that connects to a broker. See zf_curve.h. */
#include "zf_curve.h"

zcert_t *
zf_curve_load (const char *path, bool secret, zf_error_t *err)
{
    zcert_t *cert = zsys_file_exists (path) ? zcert_load (path) : NULL;
    if (!cert) {
        zf_error_set (err, ZF_ECONFIG,
                      "cannot read the certificate %s (zflow keygen NAME writes NAME and "
                      "NAME_secret)",
                      path);
        return NULL;
    }
    static const uint8_t none[32] = { 0 };
    if (secret && memcmp (zcert_secret_key (cert), none, 32) == 0) {
        zcert_destroy (&cert);
        zf_error_set (err, ZF_ECONFIG,
                      "the certificate %s holds no secret key: name the NAME_secret file", path);
        return NULL;
    }
    return cert;
}

int
zf_curve_from_env (zcert_t **cert_p, char server[41], zf_error_t *err)
{
    *cert_p = NULL;
    server[0] = 0;
    const char *cert_path = getenv (ZF_CURVE_CERT_ENV);
    const char *server_path = getenv (ZF_CURVE_SERVER_ENV);
    if (!cert_path || !*cert_path)
        return 0;
    if (!server_path || !*server_path)
        return zf_error_set (err, ZF_ECONFIG,
                             "%s is set but %s is not: name the broker's public "
                             "certificate",
                             ZF_CURVE_CERT_ENV, ZF_CURVE_SERVER_ENV);
    zcert_t *cert = zf_curve_load (cert_path, true, err);
    if (!cert)
        return -1;
    zcert_t *broker = zf_curve_load (server_path, false, err);
    if (!broker) {
        zcert_destroy (&cert);
        return -1;
    }
    snprintf (server, 41, "%s", zcert_public_txt (broker));
    zcert_destroy (&broker);
    *cert_p = cert;
    return 0;
}

void
zf_curve_apply (zsock_t *sock, zcert_t *cert, const char *server)
{
    if (!cert)
        return;
    zcert_apply (cert, sock);
    zsock_set_curve_serverkey (sock, server);
}

int
zf_curve_client (zsock_t *sock, zf_error_t *err)
{
    zcert_t *cert;
    char server[41];
    if (zf_curve_from_env (&cert, server, err))
        return -1;
    zf_curve_apply (sock, cert, server);
    zcert_destroy (&cert);
    return 0;
}

zsock_t *
zf_curve_sub (const char *endpoint, const char *topic, zf_error_t *err)
{
    zsock_t *sub = zsock_new (ZMQ_SUB);
    if (zf_curve_client (sub, err)) {
        zsock_destroy (&sub);
        return NULL;
    }
    zsock_set_subscribe (sub, topic);
    if (zsock_connect (sub, "%s", endpoint) == -1) {
        zf_error_set (err, ZF_EVALUE, "cannot connect to %s: %s", endpoint,
                      zmq_strerror (zmq_errno ()));
        zsock_destroy (&sub);
    }
    return sub;
}

char *
zf_curve_server_path (zf_pipeline_t *pipeline)
{
    const char *secret = pipeline->broker_settings.curve_secret;
    const char *public = pipeline->broker_settings.curve_public;
    if (!secret)
        return NULL;
    if (public)
        return zf_pipeline_path (pipeline, public);
    char *path = zf_pipeline_path (pipeline, secret);
    size_t len = strlen (path);
    if (len > 7 && streq (path + len - 7, "_secret"))
        path[len - 7] = 0;
    return path;
}

int
zf_curve_setenv (zf_pipeline_t *pipeline, zf_actor_conf_t *actor, zf_error_t *err)
{
    char *server = zf_curve_server_path (pipeline);
    if (!server)
        return 0;
    const char *own = actor && actor->settings
                          ? ((const zf_actor_settings_t *) actor->settings)->curve_secret
                          : NULL;
    const char *shared = pipeline->broker_settings.curve_client;
    char *cert = own || shared ? zf_pipeline_path (pipeline, own ? own : shared) : NULL;
    int rc = 0;
    if (cert) {
        setenv (ZF_CURVE_CERT_ENV, cert, 1);
        setenv (ZF_CURVE_SERVER_ENV, server, 1);
        zcert_t *check;
        char key[41];
        rc = zf_curve_from_env (&check, key, err);
        zcert_destroy (&check);
    }
    free (cert);
    free (server);
    return rc;
}

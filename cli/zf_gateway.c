/*  zf_gateway: the broker's HTTP gateway as its callers see it: what the
    broker section asks for, the secret files read and checked, and the
    server started from module "gateway" (zf_gateway_server.c, on
    libmicrohttpd), which only a process that serves HTTP loads
    (zf_module.h). See zf_gateway.h.
*/
#include "zf_gateway.h"
#include "zf_alloc.h"
#include "zf_module.h"

#include <ctype.h>
#include <sys/stat.h>

//  The contents of the file at path (relative to pipeline's folder), for
//  key, trailing white space cut; NULL with err if it cannot be read or is
//  empty. A secret others may read is said to be one.
static char *
s_read_secret (zf_pipeline_t *pipeline, const char *path, const char *key, zf_error_t *err)
{
    char *full = zf_pipeline_path (pipeline, path);
    struct stat info;
    char *text = NULL;
    FILE *file = fopen (full, "r");
    if (!file)
        zf_error_set (err, ZF_ECONFIG, "%s: cannot read %s: %s", key, full, strerror (errno));
    else if (fstat (fileno (file), &info) || info.st_size > (1 << 20))
        zf_error_set (err, ZF_ECONFIG, "%s: %s is not a file of at most 1 MiB", key, full);
    else {
        text = (char *) zf_alloc ((size_t) info.st_size + 1);
        size_t size = fread (text, 1, (size_t) info.st_size, file);
        text[size] = 0;
        while (size && isspace ((unsigned char) text[size - 1]))
            text[--size] = 0;
        if (!size) {
            zf_error_set (err, ZF_ECONFIG, "%s: %s is empty", key, full);
            zstr_free (&text);
        }
        else if (info.st_mode & (S_IRWXG | S_IRWXO))
            zsys_warning ("broker: %s: others may read %s (chmod 600 it)", key, full);
    }
    if (file)
        fclose (file);
    free (full);
    return text;
}

//  An API token is a long enough string of what a header may carry.
static int
s_check_token (const char *token, zf_error_t *err)
{
    if (strlen (token) < 16)
        return zf_error_set (err, ZF_ECONFIG,
                             "api-token-file: the token is %zu characters; give at least 16 "
                             "(e.g. openssl rand -hex 32 > token)",
                             strlen (token));
    for (const char *c = token; *c; c++)
        if (*c <= ' ' || *c == 127)
            return zf_error_set (err, ZF_ECONFIG,
                                 "api-token-file: the token has a space or control character "
                                 "at %zu; use letters, digits and punctuation",
                                 (size_t) (c - token));
    return 0;
}

int
zf_gateway_for (zf_pipeline_t *pipeline, const char *endpoint, const char *events, bool insecure,
                zf_gateway_t **gateway_p, zf_error_t *err)
{
    const zf_broker_settings_t *set = &pipeline->broker_settings;
    *gateway_p = NULL;
    if (!set->metrics)
        return 0;
    zf_gateway_args_t args = { .address = set->metrics,
                               .events = events,
                               .broker = endpoint,
                               .set = set,
                               .insecure = insecure };
    char *token = NULL, *cert = NULL, *key = NULL;
    bool failed =
        (set->api_token_file &&
         (!(token = s_read_secret (pipeline, set->api_token_file, "api-token-file", err)) ||
          s_check_token (token, err))) ||
        (set->https_cert &&
         !(cert = s_read_secret (pipeline, set->https_cert, "https-cert", err))) ||
        (set->https_key && !(key = s_read_secret (pipeline, set->https_key, "https-key", err)));
    if (!failed) {
        args.token = token;
        args.cert = cert;
        args.key = key;
        zf_gateway_t *(*server_new) (const zf_gateway_args_t *, zf_error_t *);
        *(void **) &server_new = zf_module_symbol ("gateway", "zf_gateway_server_new", err);
        *gateway_p = server_new ? server_new (&args, err) : NULL;
    }
    if (token)
        memset (token, 0, strlen (token));
    if (key)
        memset (key, 0, strlen (key));
    free (token);
    free (cert);
    free (key);
    return *gateway_p ? 0 : -1;
}

//  A gateway exists only once the module was loaded: these find it so.
void
zf_gateway_destroy (zf_gateway_t **self_p)
{
    if (!*self_p)
        return;
    void (*server_destroy) (zf_gateway_t **);
    *(void **) &server_destroy = zf_module_symbol ("gateway", "zf_gateway_server_destroy", NULL);
    server_destroy (self_p);
}

const char *
zf_gateway_address (zf_gateway_t *self)
{
    const char *(*server_address) (zf_gateway_t *);
    *(void **) &server_address = zf_module_symbol ("gateway", "zf_gateway_server_address", NULL);
    return server_address (self);
}

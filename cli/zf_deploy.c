/*  zf_deploy: zflow deploy, a pipeline as systemd units or Kubernetes
    manifests. See zf_deploy.h. */
#include "zf_deploy.h"
#include "zf_value.h"
#include "zf_error.h"
#include "zf_kinds.h"
#include "zf_tools.h"
#include "zf_zpl.h"

#include <czmq.h>
#include <errno.h>
#include <libgen.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_DIR "/etc/zflow" // where the pipeline file is, in a container

//  A name as DNS-1123 allows it in Kubernetes (lower case, digits, '-').
static void
s_dns_name (char *out, size_t size, const char *prefix, const char *name)
{
    size_t used = (size_t) snprintf (out, size, "%s", prefix);
    for (const char *p = name; *p && used + 1 < size; p++) {
        char c = (char) tolower ((unsigned char) *p);
        out[used++] = isalnum ((unsigned char) c) ? c : '-';
    }
    while (used > 0 && out[used - 1] == '-')
        used--;
    out[used] = 0;
}

//  The port of a tcp endpoint (tcp://HOST:PORT), or fallback.
static int
s_port (const char *endpoint, int fallback)
{
    const char *colon = endpoint ? strrchr (endpoint, ':') : NULL;
    int port = colon ? atoi (colon + 1) : 0;
    return port > 0 ? port : fallback;
}

//  Opens DIR/name for writing; NULL after saying why.
static FILE *
s_open (const char *dir, const char *name)
{
    char path[1024];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    FILE *file = fopen (path, "w");
    if (!file)
        fprintf (stderr, "zflow deploy: cannot write %s: %s\n", path, strerror (errno));
    return file;
}

//  A YAML string, double-quoted.
static void
s_yaml_string (FILE *out, const char *text)
{
    fputc ('"', out);
    for (const char *p = text; *p; p++)
        if (*p == '"' || *p == '\\')
            fprintf (out, "\\%c", *p);
        else if ((unsigned char) *p < 0x20)
            fprintf (out, "\\x%02x", (unsigned char) *p);
        else
            fputc (*p, out);
    fputc ('"', out);
}

//  The command of an exec actor, or NULL for a built-in one.
static const char *
s_exec_command (const zf_actor_conf_t *actor)
{
    if (!streq (actor->kind->name, "exec"))
        return NULL;
    return ((const zf_exec_settings_t *) actor->settings)->command;
}

//  --------------------------------------------------------------------------
//  systemd

//  The broker's unit, base-broker.service: its journal in the state folder
//  systemd makes. Returns 0, or -1 after saying why.
static int
s_systemd_broker (zf_pipeline_t *pipeline, const char *dir, const char *base, const char *zflow,
                  const char *file)
{
    char name[320];
    snprintf (name, sizeof name, "%s-broker.service", base);
    FILE *out = s_open (dir, name);
    if (!out)
        return -1;
    fprintf (out,
             "# The broker of pipeline %s, written by zflow deploy.\n"
             "[Unit]\n"
             "Description=zflow broker of pipeline %s\n"
             "After=network-online.target\n"
             "Wants=network-online.target\n"
             "PartOf=%s.target\n\n"
             "[Service]\n"
             "ExecStart=%s broker %s --journal /var/lib/%s/journal\n"
             "StateDirectory=%s\n"
             "WorkingDirectory=%s\n"
             "Restart=always\n"
             "RestartSec=1\n"
             "KillSignal=SIGTERM\n"
             "TimeoutStopSec=30\n\n"
             "[Install]\n"
             "WantedBy=%s.target\n",
             pipeline->name, pipeline->name, base, zflow, file, base, base, pipeline->dir, base);
    fclose (out);
    return 0;
}

//  The ExecStart of an exec actor's unit, with what zflow run gives it in
//  its environment: the broker (or every broker of the group), its names
//  and its own variables.
static void
s_systemd_exec (FILE *out, zf_pipeline_t *pipeline, zf_actor_conf_t *actor, const char *command)
{
    char *brokers = zf_pipeline_brokers (pipeline);
    fprintf (out,
             "Environment=ZFLOW_ENDPOINT=%s ZFLOW_ACTOR=%s ZFLOW_PIPELINE=%s "
             "ZFLOW_WORKER=%%i ZFLOW_INPUT=%s ZFLOW_OUTPUT=%s",
             brokers, actor->name, pipeline->name, actor->input ? actor->input : "",
             actor->output ? actor->output : "");
    free (brokers);
    zf_exec_env_t env[ZF_EXEC_ENV_MAX];
    zf_exec_environment ((const zf_exec_settings_t *) actor->settings, env);
    for (int i = 0; i < ZF_EXEC_ENV_MAX; i++)
        if (env[i].value[0])
            fprintf (out, " %s=%s", env[i].name, env[i].value);
    fputs ("\nExecStart=/bin/sh -c ", out);
    // systemd's quoting: the command as one argument of sh -c.
    fputc ('\'', out);
    for (const char *p = command; *p; p++)
        if (*p == '\'')
            fputs ("'\\''", out);
        else if (*p == '%')
            fputs ("%%", out); // systemd's specifiers
        else if (*p == '$')
            fputs ("$$", out); // and its variables: the shell's own
        else
            fputc (*p, out);
    fputs ("'\n", out);
}

//  An actor's templated unit, base-UNIT@.service, one instance a worker;
//  adds the instances to wants. Returns 0, or -1 after saying why.
static int
s_systemd_actor (zf_pipeline_t *pipeline, zf_actor_conf_t *actor, const char *dir, const char *base,
                 const char *zflow, const char *file, zlistx_t *wants)
{
    char unit[128], name[320];
    s_dns_name (unit, sizeof unit, "", actor->name);
    snprintf (name, sizeof name, "%s-%s@.service", base, unit);
    FILE *out = s_open (dir, name);
    if (!out)
        return -1;
    fprintf (out,
             "# Actor %s of pipeline %s (one instance a worker: %s-%s@0 ... @%d), written by "
             "zflow deploy.\n"
             "[Unit]\n"
             "Description=zflow actor %s of pipeline %s, worker %%i\n"
             "After=%s-broker.service network-online.target\n"
             "Wants=network-online.target\n"
             "PartOf=%s.target\n\n"
             "[Service]\n",
             actor->name, pipeline->name, base, unit, actor->workers - 1, actor->name,
             pipeline->name, base, base);
    const char *command = s_exec_command (actor);
    if (command)
        s_systemd_exec (out, pipeline, actor, command);
    else
        fprintf (out, "ExecStart=%s actor %s %s --worker %%i\n", zflow, actor->name, file);
    fprintf (out,
             "WorkingDirectory=%s\n"
             "Restart=always\n"
             "RestartSec=1\n"
             "KillMode=control-group\n"
             "TimeoutStopSec=30\n\n"
             "[Install]\n"
             "WantedBy=%s.target\n",
             pipeline->dir, base);
    fclose (out);
    for (int w = 0; w < actor->workers; w++)
        zlistx_add_end (wants, zsys_sprintf ("%s-%s@%d.service", base, unit, w));
    return 0;
}

//  The target that wants every unit of wants: systemctl start base.target.
//  Returns 0, or -1 after saying why.
static int
s_systemd_target (zf_pipeline_t *pipeline, const char *dir, const char *base, zlistx_t *wants)
{
    char name[320];
    snprintf (name, sizeof name, "%s.target", base);
    FILE *out = s_open (dir, name);
    if (!out)
        return -1;
    fprintf (out,
             "# Pipeline %s: its broker and every worker of its actors. systemctl start %s.target\n"
             "[Unit]\n"
             "Description=zflow pipeline %s\n"
             "Wants=",
             pipeline->name, base, pipeline->name);
    const char *space = "";
    for (char *unit = (char *) zlistx_first (wants); unit; unit = (char *) zlistx_next (wants)) {
        fprintf (out, "%s%s", space, unit);
        space = " ";
    }
    fprintf (out, "\n\n[Install]\nWantedBy=multi-user.target\n");
    fclose (out);
    return 0;
}

//  The units of a pipeline in dir, zflow and file (the pipeline's) named
//  by absolute paths. Returns 0, or -1 after saying why.
static int
s_systemd (zf_pipeline_t *pipeline, const char *dir, const char *zflow, const char *file)
{
    char base[128];
    s_dns_name (base, sizeof base, "zflow-", pipeline->name);
    zlistx_t *wants = zlistx_new ();
    zlistx_set_destructor (wants, (zlistx_destructor_fn *) zstr_free);
    zlistx_add_end (wants, zsys_sprintf ("%s-broker.service", base));
    int rc = s_systemd_broker (pipeline, dir, base, zflow, file);
    for (zf_actor_conf_t *actor = (zf_actor_conf_t *) zlistx_first (pipeline->actors);
         actor && rc == 0; actor = (zf_actor_conf_t *) zlistx_next (pipeline->actors))
        rc = s_systemd_actor (pipeline, actor, dir, base, zflow, file, wants);
    if (rc == 0)
        rc = s_systemd_target (pipeline, dir, base, wants);
    if (rc == 0)
        printf ("zflow deploy: %s: %s-broker.service, %zu actor templates and %s.target (%zu "
                "units)\n",
                dir, base, zlistx_size (pipeline->actors), base, zlistx_size (wants));
    zlistx_destroy (&wants);
    return rc;
}

//  --------------------------------------------------------------------------
//  Kubernetes (kustomize)

//  The certificates the pipeline names, relative to its folder: what goes
//  into the CURVE Secret (each file's key is its path with '/' as '.').
static zlistx_t *
s_certificates (zf_pipeline_t *pipeline)
{
    zlistx_t *files = zlistx_new ();
    zlistx_set_destructor (files, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_comparator (files, (zlistx_comparator_fn *) strcmp);
    const zf_broker_settings_t *b = &pipeline->broker_settings;
    const char *named[] = { b->curve_secret, b->curve_public, b->curve_client };
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        if (named[i] && !zlistx_find (files, (void *) named[i]))
            zlistx_add_end (files, strdup (named[i]));
    if (b->curve_secret && !b->curve_public) {
        // The broker's public certificate: its secret one without _secret.
        char *public = strdup (b->curve_secret);
        size_t len = strlen (public);
        if (len > 7 && streq (public + len - 7, "_secret"))
        public[len - 7] = 0;
        if (zlistx_find (files, public))
            free (public);
        else
            zlistx_add_end (files, public);
    }
    for (zf_actor_conf_t *actor = (zf_actor_conf_t *) zlistx_first (pipeline->actors); actor;
         actor = (zf_actor_conf_t *) zlistx_next (pipeline->actors)) {
        const char *own = ((const zf_actor_settings_t *) actor->settings)->curve_secret;
        if (own && !zlistx_find (files, (void *) own))
            zlistx_add_end (files, strdup (own));
    }
    if (b->curve_clients) {
        char *folder = zf_pipeline_path (pipeline, b->curve_clients);
        zdir_t *dir = zdir_new (folder, NULL);
        zlist_t *list = dir ? zdir_list (dir) : NULL;
        for (zfile_t *f = list ? (zfile_t *) zlist_first (list) : NULL; f;
             f = (zfile_t *) zlist_next (list))
            zlistx_add_end (files, zsys_sprintf ("%s/%s", b->curve_clients,
                                                 basename ((char *) zfile_filename (f, NULL))));
        zlist_destroy (&list);
        zdir_destroy (&dir);
        free (folder);
    }
    return files;
}

//  The Secret's key of a certificate's path.
static void
s_secret_key (char *out, size_t size, const char *path)
{
    snprintf (out, size, "%s", path);
    for (char *p = out; *p; p++)
        if (!isalnum ((unsigned char) *p) && *p != '-' && *p != '_' && *p != '.')
            *p = '.';
}

//  The pod's volume of the pipeline file and the certificates, at
//  CONFIG_DIR, and the container's mount of it.
static void
s_config_volume (FILE *out, const char *base, zlistx_t *certs)
{
    fprintf (out,
             "      volumes:\n"
             "        - name: config\n"
             "          projected:\n"
             "            sources:\n"
             "              - configMap:\n"
             "                  name: %s-pipeline\n",
             base);
    if (zlistx_size (certs)) {
        fprintf (out,
                 "              - secret:\n"
                 "                  name: %s-curve\n"
                 "                  items:\n",
                 base);
        for (char *path = (char *) zlistx_first (certs); path;
             path = (char *) zlistx_next (certs)) {
            char key[256];
            s_secret_key (key, sizeof key, path);
            fprintf (out, "                    - key: %s\n                      path: ", key);
            s_yaml_string (out, path);
            fputc ('\n', out);
        }
    }
}

//  Copies the file at from to DIR/to. Returns 0, or -1 after saying why.
static int
s_copy (const char *from, const char *dir, const char *to)
{
    FILE *in = fopen (from, "r");
    if (!in) {
        fprintf (stderr, "zflow deploy: cannot read %s: %s\n", from, strerror (errno));
        return -1;
    }
    FILE *out = s_open (dir, to);
    if (!out) {
        fclose (in);
        return -1;
    }
    char buffer[8192];
    size_t n;
    while ((n = fread (buffer, 1, sizeof buffer, in)) > 0)
        fwrite (buffer, 1, n, out);
    fclose (in);
    return fclose (out) == 0 ? 0 : -1;
}

//  The brokers of a pipeline with a cluster section on Kubernetes: as many
//  as its nodes, each a pod of the StatefulSet, found by its name through
//  the headless Service (not by the addresses in the file). nodes is
//  filled with their Raft addresses and endpoints with where clients
//  connect, both comma-separated, and raft with the nodes' Raft port (that
//  of the first in the file); returns how many (1 without a group).
static int
s_group (zf_pipeline_t *pipeline, const char *base, char *nodes, char *endpoints, size_t size,
         int *raft_p)
{
    char addresses[ZF_NODES_MAX][256];
    int count = 0;
    int port = s_port (pipeline->broker_settings.endpoint, 5670);
    const char *list = pipeline->cluster_settings.nodes;
    if (!list || zf_parse_nodes (list, addresses, &count, NULL) || count < 2)
        count = 1;
    int raft = count > 1 ? s_port (addresses[0], port + 10) : 0;
    *raft_p = raft;
    *nodes = 0;
    snprintf (endpoints, size, "tcp://%s-broker:%d", base, port);
    if (count > 1)
        *endpoints = 0;
    for (int i = 0; i < count && count > 1; i++) {
        size_t n = strlen (nodes), e = strlen (endpoints);
        snprintf (nodes + n, size - n, "%s%s-broker-%d.%s-broker:%d", i ? "," : "", base, i, base,
                  raft);
        snprintf (endpoints + e, size - e, "%stcp://%s-broker-%d.%s-broker:%d", i ? "," : "", base,
                  i, base, port);
    }
    return count;
}

//  The broker: a StatefulSet with a volume for its journal, and the
//  headless Service actors reach it by; with a cluster section, one pod a
//  node of the group, each with its own volume.
static void
s_broker_manifest (FILE *out, zf_pipeline_t *pipeline, const char *base, const char *image,
                   zlistx_t *certs)
{
    const zf_broker_settings_t *b = &pipeline->broker_settings;
    int port = s_port (b->endpoint, 5670), events = s_port (b->events, 5671);
    int metrics = b->metrics ? s_port (b->metrics, 0) : 0;
    char nodes[2048], endpoints[2048];
    int raft;
    int replicas = s_group (pipeline, base, nodes, endpoints, sizeof nodes, &raft);
    fprintf (out,
             "# The broker of pipeline %s, written by zflow deploy.\n"
             "apiVersion: v1\n"
             "kind: Service\n"
             "metadata:\n"
             "  name: %s-broker\n"
             "spec:\n"
             "  clusterIP: None\n"
             "  selector:\n"
             "    app: %s-broker\n"
             "  ports:\n"
             "    - name: zfp\n"
             "      port: %d\n"
             "    - name: events\n"
             "      port: %d\n",
             pipeline->name, base, base, port, events);
    if (metrics)
        fprintf (out, "    - name: metrics\n      port: %d\n", metrics);
    if (raft)
        fprintf (out,
                 "    - name: raft\n      port: %d\n"
                 "  # The nodes find each other before they are ready.\n"
                 "  publishNotReadyAddresses: true\n",
                 raft);
    fprintf (out,
             "---\n"
             "apiVersion: apps/v1\n"
             "kind: StatefulSet\n"
             "metadata:\n"
             "  name: %s-broker\n"
             "spec:\n"
             "  serviceName: %s-broker\n"
             "  replicas: %d\n"
             "%s"
             "  selector:\n"
             "    matchLabels:\n"
             "      app: %s-broker\n"
             "  template:\n"
             "    metadata:\n"
             "      labels:\n"
             "        app: %s-broker\n",
             base, base, replicas, replicas > 1 ? "  podManagementPolicy: Parallel\n" : "", base,
             base);
    if (metrics)
        fprintf (out,
                 "      annotations:\n"
                 "        prometheus.io/scrape: \"true\"\n"
                 "        prometheus.io/port: \"%d\"\n"
                 "        prometheus.io/path: /metrics\n",
                 metrics);
    fprintf (out,
             "    spec:\n"
             "      terminationGracePeriodSeconds: 30\n"
             "      containers:\n"
             "        - name: broker\n"
             "          image: %s\n"
             "          args: [\"broker\", \"" CONFIG_DIR "/pipeline.zpl\", \"--endpoint\", "
             "\"tcp://0.0.0.0:%d\", \"--events\", \"tcp://0.0.0.0:%d\", \"--journal\", "
             "\"/var/lib/zflow/journal\"%s%s%s%s]\n"
             "          ports:\n"
             "            - containerPort: %d\n"
             "            - containerPort: %d\n",
             image, port, events, b->curve_secret ? "" : ", \"--insecure\"",
             raft ? ", \"--cluster\", \"" : "", raft ? nodes : "", raft ? "\"" : "", port, events);
    if (metrics)
        fprintf (out, "            - containerPort: %d\n", metrics);
    if (raft)
        fprintf (out, "            - containerPort: %d\n", raft);
    fprintf (out, "          volumeMounts:\n"
                  "            - name: config\n"
                  "              mountPath: " CONFIG_DIR "\n"
                  "            - name: journal\n"
                  "              mountPath: /var/lib/zflow\n");
    s_config_volume (out, base, certs);
    fprintf (out, "  volumeClaimTemplates:\n"
                  "    - metadata:\n"
                  "        name: journal\n"
                  "      spec:\n"
                  "        accessModes: [\"ReadWriteOnce\"]\n"
                  "        resources:\n"
                  "          requests:\n"
                  "            storage: 1Gi\n");
}

//  An actor: a Deployment of workers replicas.
static void
s_actor_manifest (FILE *out, zf_pipeline_t *pipeline, zf_actor_conf_t *actor, const char *base,
                  const char *image, const char *endpoint, zlistx_t *certs)
{
    char name[256];
    s_dns_name (name, sizeof name, "", actor->name);
    fprintf (out,
             "---\n"
             "# Actor %s (%s), written by zflow deploy.\n"
             "apiVersion: apps/v1\n"
             "kind: Deployment\n"
             "metadata:\n"
             "  name: %s-%s\n"
             "spec:\n"
             "  replicas: %d\n"
             "  selector:\n"
             "    matchLabels:\n"
             "      app: %s-%s\n"
             "  template:\n"
             "    metadata:\n"
             "      labels:\n"
             "        app: %s-%s\n"
             "    spec:\n"
             "      terminationGracePeriodSeconds: 30\n"
             "      containers:\n"
             "        - name: %s\n"
             "          image: %s\n"
             "          workingDir: " CONFIG_DIR "\n",
             actor->name, actor->kind->name, base, name, actor->workers, base, name, base, name,
             name, image);
    const char *command = s_exec_command (actor);
    if (command) {
        const zf_broker_settings_t *b = &pipeline->broker_settings;
        const char *own = ((const zf_actor_settings_t *) actor->settings)->curve_secret;
        const char *cert = own ? own : b->curve_client;
        fprintf (out, "          command: [\"/bin/sh\", \"-c\"]\n          args: [");
        s_yaml_string (out, command);
        fprintf (out, "]\n          env:\n");
        const char *names[] = { "ZFLOW_ENDPOINT", "ZFLOW_ACTOR", "ZFLOW_PIPELINE", "ZFLOW_INPUT",
                                "ZFLOW_OUTPUT" };
        const char *values[] = { endpoint, actor->name, pipeline->name,
                                 actor->input ? actor->input : "",
                                 actor->output ? actor->output : "" };
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            fprintf (out, "            - name: %s\n              value: ", names[i]);
            s_yaml_string (out, values[i]);
            fputc ('\n', out);
        }
        zf_exec_env_t env[ZF_EXEC_ENV_MAX];
        zf_exec_environment ((const zf_exec_settings_t *) actor->settings, env);
        for (int i = 0; i < ZF_EXEC_ENV_MAX; i++)
            if (env[i].value[0])
                fprintf (out, "            - name: %s\n              value: \"%s\"\n", env[i].name,
                         env[i].value);
        if (b->curve_secret && cert) {
            // What zflow actor sets for a built-in one (docs/security.md).
            char *server = zsys_sprintf ("%s", b->curve_public ? b->curve_public : b->curve_secret);
            size_t len = strlen (server);
            if (!b->curve_public && len > 7 && streq (server + len - 7, "_secret"))
                server[len - 7] = 0;
            fprintf (out,
                     "            - name: ZFLOW_CURVE_CERT\n"
                     "              value: \"" CONFIG_DIR "/%s\"\n"
                     "            - name: ZFLOW_CURVE_SERVER\n"
                     "              value: \"" CONFIG_DIR "/%s\"\n",
                     cert, server);
            zstr_free (&server);
        }
    }
    else
        fprintf (out,
                 "          args: [\"actor\", \"%s\", \"" CONFIG_DIR "/pipeline.zpl\", "
                 "\"--broker\", \"%s\"]\n",
                 actor->name, endpoint);
    fprintf (out, "          volumeMounts:\n"
                  "            - name: config\n"
                  "              mountPath: " CONFIG_DIR "\n");
    s_config_volume (out, base, certs);
}

static int
s_kustomize (zf_pipeline_t *pipeline, const char *dir, const char *image)
{
    char base[128];
    s_dns_name (base, sizeof base, "zflow-", pipeline->name);
    char nodes[2048], endpoint[2048];
    int raft;
    s_group (pipeline, base, nodes, endpoint, sizeof endpoint, &raft);
    if (s_copy (pipeline->file, dir, "pipeline.zpl"))
        return -1;
    zlistx_t *certs = s_certificates (pipeline);
    int rc = 0;
    if (zlistx_size (certs)) {
        char folder[1024];
        snprintf (folder, sizeof folder, "%s/curve", dir);
        mkdir (folder, 0700);
        for (char *path = (char *) zlistx_first (certs); path && rc == 0;
             path = (char *) zlistx_next (certs)) {
            char key[256], *from = zf_pipeline_path (pipeline, path);
            s_secret_key (key, sizeof key, path);
            rc = s_copy (from, folder, key);
            free (from);
        }
    }
    FILE *out = rc ? NULL : s_open (dir, "pipeline.yaml");
    if (!out) {
        zlistx_destroy (&certs);
        return -1;
    }
    s_broker_manifest (out, pipeline, base, image, certs);
    for (zf_actor_conf_t *actor = (zf_actor_conf_t *) zlistx_first (pipeline->actors); actor;
         actor = (zf_actor_conf_t *) zlistx_next (pipeline->actors))
        s_actor_manifest (out, pipeline, actor, base, image, endpoint, certs);
    fclose (out);
    out = s_open (dir, "kustomization.yaml");
    if (!out) {
        zlistx_destroy (&certs);
        return -1;
    }
    fprintf (out,
             "# Pipeline %s on Kubernetes, written by zflow deploy: kubectl apply -k DIR\n"
             "apiVersion: kustomize.config.k8s.io/v1beta1\n"
             "kind: Kustomization\n"
             "resources:\n"
             "  - pipeline.yaml\n"
             "configMapGenerator:\n"
             "  - name: %s-pipeline\n"
             "    files:\n"
             "      - pipeline.zpl\n",
             pipeline->name, base);
    if (zlistx_size (certs)) {
        fprintf (out, "secretGenerator:\n  - name: %s-curve\n    files:\n", base);
        for (char *path = (char *) zlistx_first (certs); path;
             path = (char *) zlistx_next (certs)) {
            char key[256];
            s_secret_key (key, sizeof key, path);
            fprintf (out, "      - %s=curve/%s\n", key, key);
        }
    }
    fclose (out);
    printf ("zflow deploy: %s: kustomization.yaml, pipeline.yaml (the broker's StatefulSet and "
            "Service, %zu Deployments), pipeline.zpl%s\n",
            dir, zlistx_size (pipeline->actors), zlistx_size (certs) ? ", curve/" : "");
    zlistx_destroy (&certs);
    return 0;
}

typedef struct {
    const char *systemd;   // write systemd units in this folder, or NULL
    const char *kustomize; // write Kubernetes manifests in this folder, or NULL
    const char *image;     // the container image of the manifests
    const char *zflow;     // the zflow the units run, or NULL: this one
} s_deploy_options_t;

static const zf_key_t s_deploy_options[] = {
    { .name = "systemd",
      .shown = "DIR",
      .help = "write systemd units in DIR: the broker's, a template per actor, and a target",
      ZF_FIELD (ZF_KEY_STRING, s_deploy_options_t, systemd) },
    { .name = "kustomize",
      .shown = "DIR",
      .help = "write Kubernetes manifests and their kustomization in DIR (kubectl apply -k DIR)",
      ZF_FIELD (ZF_KEY_STRING, s_deploy_options_t, kustomize) },
    { .name = "image",
      .fallback = "zflow:latest",
      .shown = "IMAGE",
      .help = "the container image the manifests run (--kustomize)",
      ZF_FIELD (ZF_KEY_STRING, s_deploy_options_t, image) },
    { .name = "zflow",
      .shown = "PATH",
      .help = "the zflow the units run (--systemd), instead of this one",
      ZF_FIELD (ZF_KEY_STRING, s_deploy_options_t, zflow) },
    { NULL }
};

static int
s_deploy (const void *options, int argc, char **args)
{
    (void) argc;
    const s_deploy_options_t *o = (const s_deploy_options_t *) options;
    if (!o->systemd == !o->kustomize)
        return zf_cmd_usage (&zf_cmd_deploy, "give --systemd DIR or --kustomize DIR, one of them");
    zf_pipeline_t *pipeline = zf_tools_load (args[0]);
    if (!pipeline)
        return ZF_EXIT_USAGE;
    const char *dir = o->systemd ? o->systemd : o->kustomize;
    int rc = -1;
    if (mkdir (dir, 0755) && errno != EEXIST)
        fprintf (stderr, "zflow deploy: cannot make %s: %s\n", dir, strerror (errno));
    else if (o->systemd) {
        // Units name files by absolute paths: the ones given, made whole.
        char self[4096], file[4096];
        ssize_t len = readlink ("/proc/self/exe", self, sizeof self - 1);
        self[len > 0 ? len : 0] = 0;
        if (!realpath (args[0], file))
            snprintf (file, sizeof file, "%s", args[0]);
        rc = s_systemd (pipeline, dir, o->zflow ? o->zflow : self, file);
    }
    else
        rc = s_kustomize (pipeline, dir, o->image);
    zf_pipeline_destroy (&pipeline);
    return rc ? ZF_EXIT_FAILED : ZF_EXIT_OK;
}

const zf_cmd_t zf_cmd_deploy = {
    .name = "deploy",
    .args = "PIPELINE --systemd DIR | --kustomize DIR",
    .min_args = 1,
    .max_args = 1,
    .summary = "write systemd units, or Kubernetes manifests, for a pipeline",
    .help = "--systemd: the broker's unit (its journal under /var/lib/zflow-NAME), a\n"
            "templated unit per actor (one instance a worker) and a target wanting them\n"
            "all. --kustomize: the broker as a StatefulSet with a volume for its journal,\n"
            "each actor a Deployment, the file as a ConfigMap and its CURVE certificates\n"
            "as a Secret. docs/deploy.md.",
    .exits = "0 written\n"
             "1 a file or folder cannot be made, read or written\n"
             "2 a usage error, or a pipeline with mistakes",
    .options = s_deploy_options,
    .options_size = sizeof (s_deploy_options_t),
    .run = s_deploy,
};

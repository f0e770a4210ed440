/*  Tests of zflow deploy: the systemd units pass systemd-analyze verify,
    the Kubernetes manifests render with kubectl kustomize, with the kinds,
    replicas, volumes, Secret and annotations a user would look for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_testkit.h"

#include <sys/stat.h>
#include <unistd.h>

static char s_dir[256]; // the pipeline, its certificates, what deploy writes

//  A pipeline with CURVE, metrics, a built-in actor of 3 workers and an
//  exec actor that gives threads and timeout but not concurrency.
static const char *s_pipeline =
    "pipeline\n"
    "    name = Shop_Orders\n"
    "broker\n"
    "    endpoint = tcp://127.0.0.1:5680\n"
    "    events = tcp://127.0.0.1:5681\n"
    "    metrics = 127.0.0.1:9180\n"
    "    curve-secret = certs/broker_secret\n"
    "    curve-clients = certs/allowed\n"
    "    curve-client = certs/worker_secret\n"
    "queues\n"
    "    orders\n"
    "        external = true\n"
    "actors\n"
    "    fetch\n"
    "        kind = fetcher\n"
    "        input = orders\n"
    "        output = pages\n"
    "        workers = 3\n"
    "    score\n"
    "        kind = exec\n"
    "        command = \"python3 -m zflow worker jobs:score '100%' $HOME\"\n"
    "        input = pages\n"
    "        output = scores\n"
    "        workers = 2\n"
    "        threads = 4\n"
    "        timeout = 30s\n"
    "    store\n"
    "        kind = sink\n"
    "        input = scores\n"
    "        target = file:out.jsonl\n";

static int
s_setup (void **state)
{
    if (zf_test_dir_new (s_dir, sizeof s_dir, "deploy") ||
        zf_test_write (s_dir, "p.zpl", s_pipeline))
        return -1;
    char certs[512];
    snprintf (certs, sizeof certs, "%s/certs", s_dir);
    const char *names[] = { "broker", "worker" };
    for (int i = 0; i < 2; i++) {
        zf_test_result_t r = zf_test_zflow (NULL, "keygen", names[i], "--dir", certs, NULL);
        int status = r.status;
        zf_test_result_free (&r);
        if (status)
            return -1;
    }
    char allowed[600];
    snprintf (allowed, sizeof allowed, "%s/allowed", certs);
    mkdir (allowed, 0755);
    char *worker = zf_test_slurp (certs, "worker");
    int rc = worker ? zf_test_write (allowed, "worker", worker) : -1;
    free (worker);
    return rc;
}

static int
s_teardown (void **state)
{
    return zf_test_dir_remove (s_dir);
}

//  Runs a shell line in s_dir; its result.
static zf_test_result_t
s_shell (const char *line)
{
    char command[2048];
    snprintf (command, sizeof command, "cd '%s' && %s", s_dir, line);
    return zf_test_run ((char *[]){ "/bin/sh", "-c", command, NULL }, NULL);
}

static void
test_systemd_units_verify (void **state)
{
    char path[512], dir[512];
    snprintf (path, sizeof path, "%s/p.zpl", s_dir);
    snprintf (dir, sizeof dir, "%s/units", s_dir);
    zf_test_result_t r = zf_test_zflow (NULL, "deploy", path, "--systemd", dir, NULL);
    assert_int_equal (r.status, 0);
    assert_non_null (strstr (r.out, "zflow-shop-orders-broker.service, 3 actor templates"));
    zf_test_result_free (&r);
    r = s_shell ("systemd-analyze verify units/*.service units/*.target");
    if (r.status != 0)
        fail_msg ("systemd-analyze verify: %s %s", r.out, r.err);
    zf_test_result_free (&r);
    char *target = zf_test_slurp (dir, "zflow-shop-orders.target");
    assert_non_null (strstr (target, "Wants=zflow-shop-orders-broker.service "
                                     "zflow-shop-orders-fetch@0.service "
                                     "zflow-shop-orders-fetch@1.service "
                                     "zflow-shop-orders-fetch@2.service "
                                     "zflow-shop-orders-score@0.service "
                                     "zflow-shop-orders-score@1.service "
                                     "zflow-shop-orders-store@0.service\n"));
    free (target);
    char *exec = zf_test_slurp (dir, "zflow-shop-orders-score@.service");
    // The exec actor's command runs through sh with what zflow run would give it.
    assert_non_null (strstr (exec, "ZFLOW_ACTOR=score"));
    assert_non_null (strstr (exec, "ZFLOW_WORKER=%i"));
    // The keys it gives, and only those: the program's defaults hold for the rest.
    assert_non_null (strstr (exec, " ZFLOW_OUTPUT=scores ZFLOW_THREADS=4 ZFLOW_TIMEOUT=30000\n"));
    assert_null (strstr (exec, "ZFLOW_CONCURRENCY"));
    assert_null (strstr (exec, "ZFLOW_HARD_TIMEOUT"));
    assert_non_null (strstr (exec, "ExecStart=/bin/sh -c 'python3 -m zflow worker jobs:score "
                                   "'\\''100%%'\\'' $$HOME'"));
    free (exec);
    char *broker = zf_test_slurp (dir, "zflow-shop-orders-broker.service");
    assert_non_null (strstr (broker, " --journal /var/lib/zflow-shop-orders/journal\n"));
    free (broker);
}

//  How many times needle is in text.
static int
s_count (const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr (p, needle)); p += strlen (needle))
        n++;
    return n;
}

static void
test_kustomize_renders (void **state)
{
    char path[512], dir[512];
    snprintf (path, sizeof path, "%s/p.zpl", s_dir);
    snprintf (dir, sizeof dir, "%s/k8s", s_dir);
    zf_test_result_t r =
        zf_test_zflow (NULL, "deploy", path, "--kustomize", dir, "--image", "zflow:1", NULL);
    assert_int_equal (r.status, 0);
    zf_test_result_free (&r);
    r = s_shell ("kubectl kustomize k8s");
    if (r.status != 0)
        fail_msg ("kubectl kustomize: %s %s", r.out, r.err);
    const char *yaml = r.out;
    assert_int_equal (s_count (yaml, "\nkind: StatefulSet\n"), 1);
    assert_int_equal (s_count (yaml, "\nkind: Deployment\n"), 3);
    assert_int_equal (s_count (yaml, "\nkind: Service\n"), 1);
    assert_int_equal (s_count (yaml, "\nkind: ConfigMap\n"), 1);
    assert_int_equal (s_count (yaml, "\nkind: Secret\n"), 1);
    // Replicas: the broker 1, each actor its workers.
    assert_non_null (strstr (yaml, "  name: zflow-shop-orders-fetch\nspec:\n  replicas: 3\n"));
    assert_non_null (strstr (yaml, "  name: zflow-shop-orders-score\nspec:\n  replicas: 2\n"));
    assert_non_null (strstr (yaml, "  name: zflow-shop-orders-broker\nspec:\n  replicas: 1\n"));
    // The journal's volume, the metrics annotated, CURVE's files mounted.
    assert_non_null (strstr (yaml, "volumeClaimTemplates:"));
    assert_non_null (strstr (yaml, "mountPath: /var/lib/zflow"));
    assert_non_null (strstr (yaml, "prometheus.io/port: \"9180\""));
    assert_non_null (strstr (yaml, "path: certs/broker_secret"));
    assert_non_null (strstr (yaml, "path: certs/allowed/worker"));
    assert_non_null (strstr (yaml, "value: /etc/zflow/certs/worker_secret"));
    assert_null (strstr (yaml, "--insecure"));
    assert_non_null (strstr (yaml, "image: zflow:1"));
    // The exec actor's settings that the pipeline gives, and no others.
    assert_non_null (strstr (yaml, "- name: ZFLOW_THREADS\n          value: \"4\"\n"));
    assert_non_null (strstr (yaml, "- name: ZFLOW_TIMEOUT\n          value: \"30000\"\n"));
    assert_null (strstr (yaml, "ZFLOW_CONCURRENCY"));
    assert_null (strstr (yaml, "ZFLOW_HARD_TIMEOUT"));
    zf_test_result_free (&r);
}

static void
test_a_group_of_brokers (void **state)
{
    // With a cluster section: three broker pods of one StatefulSet, each
    // with its volume, joined by their names; the actors given all three.
    char *text = zsys_sprintf ("%scluster\n"
                               "    nodes = 10.0.0.1:5690,10.0.0.2:5690,10.0.0.3:5690\n",
                               s_pipeline);
    assert_int_equal (zf_test_write (s_dir, "group.zpl", text), 0);
    zstr_free (&text);
    char path[512], dir[512];
    snprintf (path, sizeof path, "%s/group.zpl", s_dir);
    snprintf (dir, sizeof dir, "%s/k8s-group", s_dir);
    zf_test_result_t r = zf_test_zflow (NULL, "deploy", path, "--kustomize", dir, NULL);
    assert_int_equal (r.status, 0);
    zf_test_result_free (&r);
    r = s_shell ("kubectl kustomize k8s-group");
    if (r.status != 0)
        fail_msg ("kubectl kustomize: %s %s", r.out, r.err);
    const char *yaml = r.out;
    assert_int_equal (s_count (yaml, "\nkind: StatefulSet\n"), 1);
    assert_non_null (strstr (yaml, "  name: zflow-shop-orders-broker\nspec:\n"
                                   "  podManagementPolicy: Parallel\n  replicas: 3\n"));
    assert_non_null (strstr (yaml, "volumeClaimTemplates:"));
    assert_non_null (strstr (yaml, "- --cluster\n        - zflow-shop-orders-broker-0.zflow-shop-"
                                   "orders-broker:5690,zflow-shop-orders-broker-1.zflow-shop-"
                                   "orders-broker:5690,zflow-shop-orders-broker-2.zflow-shop-"
                                   "orders-broker:5690\n"));
    assert_non_null (strstr (yaml, "publishNotReadyAddresses: true"));
    assert_non_null (strstr (yaml, "- containerPort: 5690"));
    assert_non_null (strstr (yaml, "- --broker\n        - tcp://zflow-shop-orders-broker-0.zflow-"
                                   "shop-orders-broker:5680,tcp://zflow-shop-orders-broker-1."));
    zf_test_result_free (&r);
    // On systemd the group's hosts are those of the file: each runs the
    // same broker unit (it finds its node by its address), the actors go
    // to all three.
    snprintf (dir, sizeof dir, "%s/units-group", s_dir);
    r = zf_test_zflow (NULL, "deploy", path, "--systemd", dir, NULL);
    assert_int_equal (r.status, 0);
    zf_test_result_free (&r);
    r = s_shell ("systemd-analyze verify units-group/*.service units-group/*.target");
    if (r.status != 0)
        fail_msg ("systemd-analyze verify: %s %s", r.out, r.err);
    zf_test_result_free (&r);
    char *exec = zf_test_slurp (dir, "zflow-shop-orders-score@.service");
    assert_non_null (strstr (exec, "ZFLOW_ENDPOINT=tcp://10.0.0.1:5680,tcp://10.0.0.2:5680,"
                                   "tcp://10.0.0.3:5680 "));
    free (exec);
}

static void
test_keygen_never_writes_through_a_link (void **state)
{
    // A symbolic link at the secret's path (dangling, or to a file) is not
    // written through: keygen refuses and says so; with none, the secret
    // is its owner's only.
    char dir[512], secret[600], target[600];
    snprintf (dir, sizeof dir, "%s/keys", s_dir);
    assert_int_equal (mkdir (dir, 0700), 0);
    snprintf (secret, sizeof secret, "%s/web_secret", dir);
    snprintf (target, sizeof target, "%s/stolen", s_dir);
    assert_int_equal (symlink (target, secret), 0);
    zf_test_result_t r = zf_test_zflow (NULL, "keygen", "web", "--dir", dir, NULL);
    assert_int_equal (r.status, 1);
    assert_non_null (strstr (r.err, "web_secret exists already (a file, or a symbolic link): "
                                    "not overwritten, nor written through"));
    zf_test_result_free (&r);
    struct stat st;
    assert_int_equal (lstat (target, &st), -1); // nothing was written there
    assert_int_equal (lstat (secret, &st), 0);
    assert_true (S_ISLNK (st.st_mode));
    char public[600];
    snprintf (public, sizeof public, "%s/web", dir);
    assert_int_equal (lstat (public, &st), -1);

    r = zf_test_zflow (NULL, "keygen", "api", "--dir", dir, NULL);
    assert_int_equal (r.status, 0);
    zf_test_result_free (&r);
    snprintf (secret, sizeof secret, "%s/api_secret", dir);
    assert_int_equal (stat (secret, &st), 0);
    assert_int_equal (st.st_mode & 0777, 0600);
    char *text = zf_test_slurp (dir, "api_secret");
    assert_non_null (text);
    assert_non_null (strstr (text, "secret-key"));
    free (text);
}

static void
test_deploy_usage (void **state)
{
    zf_test_result_t r = zf_test_zflow (NULL, "deploy", "nosuch.zpl", "--systemd", "x", NULL);
    assert_int_equal (r.status, 2);
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "deploy", "p.zpl", NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (
        strstr (r.err, "usage: zflow deploy PIPELINE --systemd DIR | --kustomize DIR"));
    zf_test_result_free (&r);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_systemd_units_verify),
        cmocka_unit_test (test_kustomize_renders),
        cmocka_unit_test (test_a_group_of_brokers),
        cmocka_unit_test (test_keygen_never_writes_through_a_link),
        cmocka_unit_test (test_deploy_usage),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}

/*  Tests of the pipeline loader: a good file gives the model a user wrote;
    each kind of mistake gives exactly its message, with file and line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_testkit.h"

#include "zf_kinds.h"
#include "zf_pipeline.h"
#include "zf_zpl.h"

static char s_dir[256]; // a temporary folder for the files of one test

static int
s_setup (void **state)
{
    return zf_test_dir_new (s_dir, sizeof s_dir, "pipeline");
}

static int
s_teardown (void **state)
{
    return zf_test_dir_remove (s_dir);
}

//  Writes text to s_dir/name; returns the path (static buffer).
static const char *
s_write (const char *name, const char *text)
{
    static char path[512];
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
    return path;
}

static const char *s_good = "pipeline\n"
                            "    name = crawl\n"
                            "broker\n"
                            "    endpoint = tcp://127.0.0.1:6000\n"
                            "    heartbeat = 500ms\n"
                            "queues\n"
                            "    pages\n"
                            "        max-depth = 100\n"
                            "        max-attempts = 3\n"
                            "actors\n"
                            "    seeds\n"
                            "        kind = producer\n"
                            "        source = file:urls.txt\n"
                            "        output = urls\n"
                            "    tick\n"
                            "        kind = scheduler\n"
                            "        output = urls\n"
                            "        hourly\n"
                            "            cron = \"0 * * * *\"\n"
                            "            payload = \"http://127.0.0.1/feed\"\n"
                            "        fast\n"
                            "            every = 10s\n"
                            "    fetch\n"
                            "        kind = fetcher\n"
                            "        input = urls\n"
                            "        output = pages\n"
                            "        workers = 2\n"
                            "        headers\n"
                            "            Accept = text/html\n"
                            "    store\n"
                            "        kind = sink\n"
                            "        input = pages\n"
                            "        target = file:out/pages.jsonl\n"
                            "    audit\n"
                            "        kind = sink\n"
                            "        input = pages\n"
                            "        target = null\n";

static void
test_good_file (void **state)
{
    s_write ("urls.txt", "http://127.0.0.1/\n");
    const char *path = s_write ("good.zpl", s_good);
    zlistx_t *errors = zf_errors_new ();
    zf_pipeline_t *p = zf_pipeline_load (path, zf_kinds (), errors);
    for (char *e = (char *) zlistx_first (errors); e; e = (char *) zlistx_next (errors))
        print_error ("%s\n", e);
    assert_non_null (p);
    assert_int_equal (zlistx_size (errors), 0);
    assert_string_equal (p->name, "crawl");
    assert_int_equal (zlistx_size (p->actors), 5);
    assert_int_equal (zlistx_size (p->queues), 2);

    zf_actor_conf_t *fetch = zf_pipeline_actor (p, "fetch");
    assert_non_null (fetch);
    assert_ptr_equal (fetch->kind, &zf_fetcher_kind);
    assert_string_equal (fetch->input, "urls");
    assert_string_equal (fetch->output, "pages");
    assert_int_equal (fetch->workers, 2);
    assert_int_equal (fetch->line, 23);
    // given values, and the table's defaults for the rest, bound to its settings
    const zf_fetcher_settings_t *set = (const zf_fetcher_settings_t *) fetch->settings;
    assert_int_equal (set->actor.workers, 2);
    assert_string_equal (set->actor.input, "urls");
    assert_int_equal (set->concurrency, 64);
    assert_int_equal (set->timeout, 30000);
    assert_int_equal (set->max_body, 10 * 1024 * 1024);
    assert_true (set->tls_verify);
    assert_true (set->rate_per_host == 0.0);
    assert_int_equal (set->on_error, ZF_FETCHER_EMIT);
    assert_string_equal (zconfig_get (set->headers, "Accept", NULL), "text/html");
    assert_int_equal (p->broker_settings.heartbeat, 500);
    assert_int_equal (p->broker_settings.liveness, 3);
    assert_string_equal (p->broker_settings.endpoint, "tcp://127.0.0.1:6000");
    assert_null (p->broker_settings.intake);

    zf_queue_conf_t *urls = zf_pipeline_queue (p, "urls");
    assert_non_null (urls);
    assert_null (urls->node); // named by actors only: defaults apply
    assert_int_equal (zlistx_size (urls->writers), 2);
    assert_int_equal (zlistx_size (urls->readers), 1);
    zf_queue_conf_t *pages = zf_pipeline_queue (p, "pages");
    assert_int_equal (pages->settings.max_depth, 100);
    assert_int_equal (urls->settings.max_depth, 2000); // the default
    assert_int_equal (zf_pipeline_queue_settings (p, "nowhere")->max_attempts, 5);
    assert_int_equal (zlistx_size (pages->readers), 2); // fan-out to store and audit

    assert_false (zf_pipeline_finite (p)); // a scheduler runs until stopped
    char *source = zf_pipeline_path (p, "file:urls.txt");
    char expected[600];
    snprintf (expected, sizeof expected, "%s/urls.txt", s_dir);
    char *real = realpath (s_dir, NULL);
    snprintf (expected, sizeof expected, "%s/urls.txt", real);
    assert_string_equal (source, expected);
    free (real);
    free (source);
    zf_pipeline_destroy (&p);
    assert_null (p);
    zlistx_destroy (&errors);
}

//  A minimal valid body, to which each case adds one mistake.
#define HEAD                                                                                       \
    "actors\n"                                                                                     \
    "    seeds\n"                                                                                  \
    "        kind = producer\n"                                                                    \
    "        source = seq:10\n"                                                                    \
    "        output = items\n"                                                                     \
    "    store\n"                                                                                  \
    "        kind = sink\n"                                                                        \
    "        input = items\n"                                                                      \
    "        target = null\n"

//  An exec actor reading the queue of HEAD, to which a case adds keys.
#define EXEC                                                                                       \
    "    w\n"                                                                                      \
    "        kind = exec\n"                                                                        \
    "        command = true\n"                                                                     \
    "        input = items\n"

static void
test_exec_settings (void **state)
{
    // The keys a pipeline gives an exec actor become its variables; the
    // ones it leaves out none, so that the program keeps its own defaults.
    // Limits below a queue timeout of 0 (never) are any length.
    zlistx_t *errors = zf_errors_new ();
    zf_pipeline_t *p = zf_pipeline_load (s_write ("exec.zpl", HEAD EXEC), zf_kinds (), errors);
    assert_non_null (p);
    zf_exec_env_t env[ZF_EXEC_ENV_MAX];
    zf_exec_environment ((zf_exec_settings_t *) zf_pipeline_actor (p, "w")->settings, env);
    for (int i = 0; i < ZF_EXEC_ENV_MAX; i++)
        assert_string_equal (env[i].value, "");
    zf_pipeline_destroy (&p);

    p = zf_pipeline_load (s_write ("exec.zpl", HEAD EXEC "        concurrency = 8\n"
                                                         "        threads = 4\n"
                                                         "        timeout = 1h\n"
                                                         "        hard-timeout = 1h30s\n"
                                                         "queues\n"
                                                         "    items\n"
                                                         "        timeout = 0\n"),
                          zf_kinds (), errors);
    for (char *e = (char *) zlistx_first (errors); e; e = (char *) zlistx_next (errors))
        print_error ("%s\n", e);
    assert_non_null (p);
    zf_exec_environment ((zf_exec_settings_t *) zf_pipeline_actor (p, "w")->settings, env);
    const char *expected[][2] = { { "ZFLOW_CONCURRENCY", "8" },
                                  { "ZFLOW_THREADS", "4" },
                                  { "ZFLOW_TIMEOUT", "3600000" },
                                  { "ZFLOW_HARD_TIMEOUT", "3630000" } };
    for (int i = 0; i < ZF_EXEC_ENV_MAX; i++) {
        assert_string_equal (env[i].name, expected[i][0]);
        assert_string_equal (env[i].value, expected[i][1]);
    }
    zf_pipeline_destroy (&p);
    assert_int_equal (zlistx_size (errors), 0);
    zlistx_destroy (&errors);
}

//  A queue that actors write and none reads holds results: it loads, with a
//  warning unless the pipeline's results key names it.
static void
test_a_queue_nobody_reads_holds_results (void **state)
{
    const char *more =
        "    more\n        kind = producer\n        source = seq:1\n        output = "
        "answers\n";
    char text[2048];
    snprintf (text, sizeof text, "%s%s", HEAD, more);
    zlistx_t *errors = zf_errors_new ();
    zf_pipeline_t *p = zf_pipeline_load (s_write ("results.zpl", text), zf_kinds (), errors);
    assert_non_null (p);
    assert_true (zf_pipeline_queue (p, "answers")->results);
    assert_false (zf_pipeline_queue (p, "items")->results);
    assert_int_equal (zlistx_size (p->warnings), 1);
    assert_non_null (strstr ((const char *) zlistx_first (p->warnings),
                             "queue 'answers' is written by 'more' but no actor reads it: its "
                             "items are kept as results"));
    assert_true (zf_pipeline_declares (p, "answers"));
    assert_true (zf_pipeline_declares (p, "items.dead"));
    assert_false (zf_pipeline_declares (p, "itemz"));
    zf_pipeline_destroy (&p);

    // Named as the results queue: no warning.
    snprintf (text, sizeof text, "pipeline\n    results = answers\n%s%s", HEAD, more);
    p = zf_pipeline_load (s_write ("results.zpl", text), zf_kinds (), errors);
    assert_non_null (p);
    assert_true (zf_pipeline_queue (p, "answers")->results);
    assert_int_equal (zlistx_size (p->warnings), 0);
    zf_pipeline_destroy (&p);

    // Several, read by actors or not.
    snprintf (text, sizeof text, "pipeline\n    results = \"answers, items\"\n%s%s", HEAD, more);
    p = zf_pipeline_load (s_write ("results.zpl", text), zf_kinds (), errors);
    assert_non_null (p);
    assert_true (zf_pipeline_queue (p, "answers")->results);
    assert_true (zf_pipeline_queue (p, "items")->results);
    assert_int_equal (zlistx_size (p->warnings), 0);
    zf_pipeline_destroy (&p);
    zlistx_destroy (&errors);
}

static void
test_one_mistake_each (void **state)
{
    static const struct {
        const char *text;     // the file
        const char *expected; // its one message, after "FILE:"
    } cases[] = {
        { HEAD "        concurency = 4\n",
          "10: actor 'store' (sink): unknown key 'concurency' (did you mean 'concurrency'?)" },
        { HEAD "        flow\n            rtae = 5/s\n",
          "11: actor 'store' (sink), flow: unknown key 'rtae' (did you mean 'rate'?)" },
        { HEAD "        flow\n            fair = true\n",
          "11: actor 'store' (sink), flow: fair needs key (key = header:NAME, or url-host): it "
          "says what an item's key is" },
        { HEAD "queues\n    items\n        rate = 5/fortnight\n",
          "12: queue 'items': rate: '5/fortnight' is not a rate (100/s, 5/min, 2000/h, 50/d): "
          "per what?" },
        { HEAD "queues\n    items\n        key = tenant\n",
          "12: queue 'items': key: 'tenant' is not a key: header:NAME (a header of the item) or "
          "url-host" },
        { HEAD "        colour = red\n",
          "10: actor 'store' (sink): unknown key 'colour' (zflow help sink lists the keys)" },
        { HEAD "    x\n        kind = fetchr\n",
          "11: actor 'x': unknown kind 'fetchr' (did you mean 'fetcher'?)" },
        { HEAD "    x\n        kind = teleporter\n",
          "11: actor 'x': unknown kind 'teleporter' (expected producer, fetcher, processor, "
          "scheduler, gather, sink or exec)" },
        { HEAD "    x\n        kind = sink\n        target = null\n",
          "10: actor 'x' (sink): missing required key 'input' (the queue it reads)" },
        { HEAD "    x\n        input = items\n",
          "10: actor 'x': missing required key 'kind' (one of producer, fetcher, processor, "
          "scheduler, gather, sink, exec)" },
        { HEAD "    seeds\n        kind = sink\n        input = items\n        target = null\n",
          "10: duplicate actor name 'seeds' (first at line 2)" },
        { HEAD "        sync = sometimes\n",
          "10: actor 'store' (sink): sync: 'sometimes' is not one of always|interval|never" },
        { HEAD "        sync-interval = soon\n",
          "10: actor 'store' (sink): sync-interval: 'soon' is not a duration: expected e.g. "
          "250ms, 30s, 5m, 1h" },
        { HEAD "        workers = 0\n",
          "10: actor 'store' (sink): workers: 0 is out of range 1..1024" },
        { HEAD "broker\n    endpoint = 127.0.0.1:5670\n",
          "11: broker: endpoint: '127.0.0.1:5670' is not an endpoint: expected tcp://HOST:PORT, "
          "ipc://PATH or inproc://NAME" },
        { HEAD "broker\n    max-frame = \"10 MB\"\n",
          "11: broker: max-frame: '10 MB' is not a size: expected e.g. 512, 64KiB, 10MB, 1GiB" },
        { HEAD "broker\n    max-frame = 10 MB\n",
          "11: value '10' is followed by 'MB': quote a value that holds spaces (max-frame = \"10 "
          "MB\")" },
        { HEAD "broker\n    hearbeat = 2s\n",
          "11: broker: unknown key 'hearbeat' (did you mean 'heartbeat'?)" },
        { HEAD "queue\n    items\n", "10: unknown section 'queue' (did you mean 'queues'?)" },
        { HEAD "queues\n    items\n        max-depth = lots\n",
          "12: queue 'items': max-depth: 'lots' is not a whole number" },
        { HEAD "queues\n    spare\n",
          "11: queue 'spare' is declared but no actor reads or writes it" },
        { HEAD "pipeline\n    results = \"items, b@d\"\n",
          "11: pipeline: results: 'b@d' is not a queue name (letters, digits, '-', '_', '.')" },
        { HEAD "pipeline\n    results = itemz\n",
          "11: pipeline: results: 'itemz' is no queue of the pipeline" },
        { HEAD "    late\n        kind = sink\n        input = itemz\n        target = null\n",
          "12: queue 'itemz' is read by 'late' but nothing writes it (did you mean 'items'?)" },
        { HEAD "    late\n        kind = sink\n        input = jobs\n        target = null\n",
          "12: queue 'jobs' is read by 'late' but nothing writes it (add a producer, or declare "
          "it under queues with external = true)" },
        { HEAD "    seeds2\n        kind = producer\n        source = file:missing.txt\n        "
               "output = items\n",
          "12: actor 'seeds2' (producer): source 'file:missing.txt' does not exist" },
        { HEAD "    p\n        kind = processor\n        input = items\n        output = items\n",
          "10: actor 'p' (processor): needs one of command or plugin" },
        { HEAD "    t\n        kind = scheduler\n        output = items\n        cron = \"0 * "
               "*\"\n",
          "13: actor 't' (scheduler): cron: '0 * *' has 3 fields; expected 5 (minute hour day "
          "month weekday) or 6 (with seconds first)" },
        { HEAD "    t\n        kind = scheduler\n        output = items\n        job\n         "
               "   every = \"5 seconds\"\n",
          "14: actor 't' (scheduler), job 'job': every: '5 seconds' is not a duration: each "
          "number needs a unit of ms, s, m, h or d (e.g. 250ms, 30s, 1h30m)" },
        { HEAD "    t\n        kind = scheduler\n        output = items\n        job\n         "
               "   every = 5 seconds\n",
          "14: value '5' is followed by 'seconds': quote a value that holds spaces (every = \"5 "
          "seconds\")" },
        // The hint leaves a comment out, and quotes JSON as ZPL reads it.
        { HEAD "    t\n        kind = scheduler\n        output = items\n        every = 5 "
               "seconds   # often\n",
          "13: value '5' is followed by 'seconds': quote a value that holds spaces (every = \"5 "
          "seconds\")" },
        { HEAD "    t\n        kind = scheduler\n        output = items\n        every = 1s\n"
               "        payload = {\"a\": 1}\n",
          "14: value '{\"a\":' is followed by '1}': quote a value that holds spaces (payload = "
          "'{\"a\": 1}')" },
        { HEAD "    t\n        kind = scheduler\n        output = items\n        at = tomorrow\n",
          "13: actor 't' (scheduler): at: 'tomorrow' is not an ISO 8601 time (e.g. "
          "2026-03-08T03:00:00-05:00)" },
        { HEAD "        target = stdout\n",
          "10: actor 'store' (sink): 'target' is given twice (first at line 9)" },
        { HEAD "    y = 3\n", "10: actor 'y': an actor is a section; put its keys on indented "
                              "lines" },
        { "pipeline\n    name = x\n", "0: the pipeline has no actors (add an actors section)" },
        { HEAD "  bad indent\n", "10: indented by 2 spaces; ZPL indents by 4 per level" },
        { HEAD EXEC "        timeout = 10m\n",
          "14: actor 'w' (exec): timeout = 10m must be less than the timeout of its input queue "
          "'items' (timeout 10m, the default): past that the broker hands the item to another "
          "worker while this one still runs it; lower timeout, or raise the queue's timeout (0 "
          "for never)" },
        { HEAD EXEC "        hard-timeout = 2m\nqueues\n    items\n        timeout = 1m\n",
          "14: actor 'w' (exec): hard-timeout = 2m must be less than the timeout of its input "
          "queue 'items' (timeout = 1m at line 17): past that the broker hands the item to "
          "another worker while this one still runs it; lower hard-timeout, or raise the queue's "
          "timeout (0 for never)" },
        { HEAD EXEC "        timeout = 30s\n        hard-timeout = 30000ms\n",
          "15: actor 'w' (exec): hard-timeout = 30000ms must be greater than timeout = 30s" },
        { HEAD EXEC "        hard-timeout = 10s\n        timeout = 1m\n",
          "14: actor 'w' (exec): hard-timeout = 10s must be greater than timeout = 1m" },
        { HEAD EXEC "        timeout = 0\n",
          "14: actor 'w' (exec): timeout: 0 is not a time limit (leave the key out for none)" },
        { HEAD EXEC "        threads = 1025\n",
          "14: actor 'w' (exec): threads: 1025 is out of range 1..1024" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = s_write ("case.zpl", cases[i].text);
        zlistx_t *errors = zf_errors_new ();
        zf_pipeline_t *p = zf_pipeline_load (path, zf_kinds (), errors);
        char expected[1024];
        if (strncmp (cases[i].expected, "0: ", 3) == 0)
            snprintf (expected, sizeof expected, "%s: %s", path, cases[i].expected + 3);
        else
            snprintf (expected, sizeof expected, "%s:%s", path, cases[i].expected);
        if (p || zlistx_size (errors) != 1) {
            for (char *e = (char *) zlistx_first (errors); e; e = (char *) zlistx_next (errors))
                print_error ("  got: %s\n", e);
            fail_msg ("case %zu: expected one error: %s", i, expected);
        }
        const char *got = (const char *) zlistx_first (errors);
        // paths in messages end with what the user wrote; compare the start
        if (strncmp (got, expected, strlen (expected)) != 0)
            fail_msg ("case %zu:\n  got      %s\n  expected %s", i, got, expected);
        zlistx_destroy (&errors);
    }
}

static void
test_every_mistake_reported (void **state)
{
    const char *path = s_write ("many.zpl", HEAD "        concurency = 4\n"
                                                 "        sync = sometimes\n"
                                                 "broker\n"
                                                 "    hearbeat = 1s\n");
    zlistx_t *errors = zf_errors_new ();
    assert_null (zf_pipeline_load (path, zf_kinds (), errors));
    assert_int_equal (zlistx_size (errors), 3);
    // in line order
    assert_non_null (strstr ((char *) zlistx_first (errors), ":10: "));
    assert_non_null (strstr ((char *) zlistx_next (errors), ":11: "));
    assert_non_null (strstr ((char *) zlistx_next (errors), ":13: "));
    zlistx_destroy (&errors);
}

static void
test_environment (void **state)
{
    setenv ("ZFLOW_TEST_ENDPOINT", "tcp://127.0.0.1:6123", 1);
    const char *path =
        s_write ("env.zpl", HEAD "broker\n"
                                 "    endpoint = ${ZFLOW_TEST_ENDPOINT}\n"
                                 "    events = ${ZFLOW_TEST_NONE:-tcp://127.0.0.1:6124}\n");
    zlistx_t *errors = zf_errors_new ();
    zf_pipeline_t *p = zf_pipeline_load (path, zf_kinds (), errors);
    assert_non_null (p);
    assert_string_equal (p->broker_settings.endpoint, "tcp://127.0.0.1:6123");
    assert_string_equal (p->broker_settings.events, "tcp://127.0.0.1:6124");
    assert_string_equal (p->name, "env"); // no name given: the file's
    assert_true (zf_pipeline_finite (p));
    zf_pipeline_destroy (&p);
    zlistx_destroy (&errors);
}

static void
test_examples_validate (void **state)
{
    // Every example pipeline shipped in pipelines/ is valid.
    char pattern[512];
    snprintf (pattern, sizeof pattern, "%s/pipelines", ZFLOW_SOURCE_DIR);
    zdir_t *dir = zdir_new (pattern, NULL);
    assert_non_null (dir);
    zlist_t *files = zdir_list (dir);
    int checked = 0;
    for (zfile_t *file = (zfile_t *) zlist_first (files); file;
         file = (zfile_t *) zlist_next (files)) {
        const char *name = zfile_filename (file, NULL);
        size_t len = strlen (name);
        if (len < 4 || strcmp (name + len - 4, ".zpl") != 0)
            continue;
        zlistx_t *errors = zf_errors_new ();
        zf_pipeline_t *p = zf_pipeline_load (name, zf_kinds (), errors);
        for (char *e = (char *) zlistx_first (errors); e; e = (char *) zlistx_next (errors))
            print_error ("%s\n", e);
        assert_non_null (p);
        zf_pipeline_destroy (&p);
        zlistx_destroy (&errors);
        checked++;
    }
    zlist_destroy (&files);
    zdir_destroy (&dir);
    assert_true (checked >= 1);
}

//  Bytes of the field a key of type is bound to.
static size_t
s_field_size (zf_key_type_t type)
{
    switch (type) {
        case ZF_KEY_INT:
        case ZF_KEY_DURATION:
        case ZF_KEY_SIZE:
            return sizeof (int64_t);
        case ZF_KEY_NUMBER:
        case ZF_KEY_RATE:
            return sizeof (double);
        case ZF_KEY_BOOL:
            return sizeof (bool);
        case ZF_KEY_ENUM:
            return sizeof (int);
        case ZF_KEY_SECTION:
            return sizeof (zconfig_t *);
        default:
            return sizeof (const char *);
    }
}

//  Every key of a table is bound, within its struct, to a field of its own.
static void
s_check_table (const char *what, const zf_key_t *keys, size_t settings_size)
{
    for (const zf_key_t *key = keys; key->name; key++) {
        if (!key->field)
            fail_msg ("%s: key '%s' is not bound to a settings field", what, key->name);
        if (key->field - 1 + s_field_size (key->type) > settings_size)
            fail_msg ("%s: key '%s' is bound past the end of its settings", what, key->name);
        for (const zf_key_t *other = keys; other != key; other++)
            if (other->field == key->field)
                fail_msg ("%s: keys '%s' and '%s' share a field", what, other->name, key->name);
    }
}

//  The place key (of keys) binds value to: a choice's index, or -1.
static int
s_choice (const zf_key_t *keys, const char *key, const char *value)
{
    const zf_key_t *found = zf_keys_find (keys, key);
    assert_non_null (found);
    assert_int_equal (found->type, ZF_KEY_ENUM);
    typedef struct {
        char pad[8];
        int value;
    } s_settings_t;
    s_settings_t settings;
    zf_key_t at = *found;
    at.field = offsetof (s_settings_t, value) + 1;
    zf_key_bind (&at, value, &settings);
    return settings.value;
}

//  Each choice key binds to the enum the code compares it with: each
//  choice to the value of its name, in the order of the key's choices.
static void
test_choice_keys_bind_to_their_enums (void **state)
{
    assert_int_equal (s_choice (zf_broker_keys, "sync", "always"), ZF_SYNC_ALWAYS);
    assert_int_equal (s_choice (zf_broker_keys, "sync", "batch"), ZF_SYNC_BATCH);
    assert_int_equal (s_choice (zf_broker_keys, "sync", "never"), ZF_SYNC_NEVER);
    assert_int_equal (s_choice (zf_broker_keys, "sync", NULL), -1);
    const zf_key_t *producer = zf_producer_kind.keys, *processor = zf_processor_kind.keys;
    const zf_key_t *fetcher = zf_fetcher_kind.keys, *gather = zf_gather_kind.keys;
    const zf_key_t *sink = zf_sink_kind.keys;
    assert_int_equal (s_choice (producer, "format", "lines"), ZF_FORMAT_LINES);
    assert_int_equal (s_choice (producer, "format", "jsonl"), ZF_FORMAT_JSONL);
    assert_int_equal (s_choice (producer, "format", "msgpack"), ZF_FORMAT_MSGPACK);
    assert_int_equal (s_choice (producer, "on-bad-line", "skip"), ZF_BAD_LINE_SKIP);
    assert_int_equal (s_choice (producer, "on-bad-line", "dead"), ZF_BAD_LINE_DEAD);
    assert_int_equal (s_choice (producer, "on-bad-line", "stop"), ZF_BAD_LINE_STOP);
    assert_int_equal (s_choice (processor, "on-error", "retry"), ZF_PROCESSOR_RETRY);
    assert_int_equal (s_choice (processor, "on-error", "emit"), ZF_PROCESSOR_EMIT);
    assert_int_equal (s_choice (processor, "protocol", "lines"), ZF_PROTOCOL_LINES);
    assert_int_equal (s_choice (processor, "protocol", "envelope"), ZF_PROTOCOL_ENVELOPE);
    assert_int_equal (s_choice (processor, "protocol", "batch"), ZF_PROTOCOL_BATCH);
    assert_int_equal (s_choice (fetcher, "on-error", "emit"), ZF_FETCHER_EMIT);
    assert_int_equal (s_choice (fetcher, "on-error", "retry"), ZF_FETCHER_RETRY);
    assert_int_equal (s_choice (fetcher, "on-error", "drop"), ZF_FETCHER_DROP);
    assert_int_equal (s_choice (gather, "mode", "collect"), ZF_GATHER_COLLECT);
    assert_int_equal (s_choice (gather, "mode", "all"), ZF_GATHER_ALL);
    assert_int_equal (s_choice (gather, "on-timeout", "emit"), ZF_ON_TIMEOUT_EMIT);
    assert_int_equal (s_choice (gather, "on-timeout", "fail"), ZF_ON_TIMEOUT_FAIL);
    assert_int_equal (s_choice (gather, "on-failure", "emit"), ZF_ON_FAILURE_EMIT);
    assert_int_equal (s_choice (gather, "on-failure", "dead"), ZF_ON_FAILURE_DEAD);
    assert_int_equal (s_choice (sink, "format", "body"), ZF_SINK_BODY);
    assert_int_equal (s_choice (sink, "format", "envelope"), ZF_SINK_ENVELOPE);
    assert_int_equal (s_choice (sink, "format", "msgpack"), ZF_SINK_MSGPACK);
    assert_int_equal (s_choice (sink, "sync", "always"), ZF_SINK_SYNC_ALWAYS);
    assert_int_equal (s_choice (sink, "sync", "interval"), ZF_SINK_SYNC_INTERVAL);
    assert_int_equal (s_choice (sink, "sync", "never"), ZF_SINK_SYNC_NEVER);
    // Every choice key of every table is one of those above.
    int choices = 0;
    for (const zf_kind_t *const *k = zf_kinds (); *k; k++)
        for (const zf_key_t *key = (*k)->keys; key->name; key++)
            choices += key->type == ZF_KEY_ENUM;
    for (const zf_key_t *key = zf_broker_keys; key->name; key++)
        choices += key->type == ZF_KEY_ENUM;
    assert_int_equal (choices, 11);
}

static void
test_every_key_is_bound (void **state)
{
    s_check_table ("broker", zf_broker_keys, sizeof (zf_broker_settings_t));
    s_check_table ("queues", zf_queue_keys, sizeof (zf_queue_settings_t));
    for (const zf_kind_t *const *k = zf_kinds (); *k; k++) {
        s_check_table ((*k)->name, (*k)->keys, (*k)->settings_size);
        if ((*k)->job_keys)
            s_check_table ((*k)->job, (*k)->job_keys, (*k)->job_settings_size);
    }
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_every_key_is_bound),
        cmocka_unit_test (test_choice_keys_bind_to_their_enums),
        cmocka_unit_test_setup_teardown (test_good_file, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_one_mistake_each, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_exec_settings, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_queue_nobody_reads_holds_results, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_every_mistake_reported, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_environment, s_setup, s_teardown),
        cmocka_unit_test (test_examples_validate),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}

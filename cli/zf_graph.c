/*  zf_graph: pipeline drawings. See zf_graph.h. */
#include "zf_graph.h"
#include "zf_kinds.h"

//  "fetch (fetcher ×2)" for an actor name.
static void
s_actor_label (zf_pipeline_t *pipeline, const char *name, char *out, size_t size)
{
    zf_actor_conf_t *actor = zf_pipeline_actor (pipeline, name);
    if (!actor || !actor->kind)
        snprintf (out, size, "%s", name);
    else if (actor->workers > 1)
        snprintf (out, size, "%s (%s ×%d)", name, actor->kind->name, actor->workers);
    else
        snprintf (out, size, "%s (%s)", name, actor->kind->name);
}

static void
s_join (zf_pipeline_t *pipeline, zlistx_t *names, char *out, size_t size)
{
    out[0] = 0;
    for (const char *name = (const char *) zlistx_first (names); name;
         name = (const char *) zlistx_next (names)) {
        char label[200];
        s_actor_label (pipeline, name, label, sizeof label);
        size_t used = strlen (out);
        snprintf (out + used, size - used, "%s%s", used ? ", " : "", label);
    }
}

void
zf_graph_text (zf_pipeline_t *pipeline, FILE *out)
{
    fprintf (out, "pipeline %s: %zu actors, %zu queues\n", pipeline->name,
             zlistx_size (pipeline->actors), zlistx_size (pipeline->queues));
    for (zf_queue_conf_t *queue = (zf_queue_conf_t *) zlistx_first (pipeline->queues); queue;
         queue = (zf_queue_conf_t *) zlistx_next (pipeline->queues)) {
        char writers[1024], readers[1024];
        s_join (pipeline, queue->writers, writers, sizeof writers);
        s_join (pipeline, queue->readers, readers, sizeof readers);
        if (!writers[0])
            snprintf (writers, sizeof writers, "%s", queue->external ? "(outside)" : "(broker)");
        size_t groups = zlistx_size (queue->readers);
        fprintf (out, "  %s ──▶ [%s] ──▶ %s%s\n", writers, queue->name,
                 readers[0] ? readers : "(nobody)",
                 groups > 1 ? "   (fan-out: each gets every item)" : "");
    }
}

void
zf_graph_dot (zf_pipeline_t *pipeline, FILE *out)
{
    fprintf (out, "digraph \"%s\" {\n", pipeline->name);
    fprintf (out, "    rankdir=LR;\n");
    fprintf (out, "    node [fontname=\"Helvetica\"];\n");
    for (zf_actor_conf_t *actor = (zf_actor_conf_t *) zlistx_first (pipeline->actors); actor;
         actor = (zf_actor_conf_t *) zlistx_next (pipeline->actors)) {
        char workers[32] = "";
        if (actor->workers > 1)
            snprintf (workers, sizeof workers, " ×%d", actor->workers);
        fprintf (out, "    \"actor:%s\" [shape=box, label=\"%s\\n%s%s\"];\n", actor->name,
                 actor->name, actor->kind ? actor->kind->name : "?", workers);
    }
    for (zf_queue_conf_t *queue = (zf_queue_conf_t *) zlistx_first (pipeline->queues); queue;
         queue = (zf_queue_conf_t *) zlistx_next (pipeline->queues)) {
        fprintf (out, "    \"queue:%s\" [shape=cylinder, label=\"%s\"];\n", queue->name,
                 queue->name);
        for (const char *name = (const char *) zlistx_first (queue->writers); name;
             name = (const char *) zlistx_next (queue->writers))
            fprintf (out, "    \"actor:%s\" -> \"queue:%s\";\n", name, queue->name);
        for (const char *name = (const char *) zlistx_first (queue->readers); name;
             name = (const char *) zlistx_next (queue->readers))
            fprintf (out, "    \"queue:%s\" -> \"actor:%s\";\n", queue->name, name);
    }
    fprintf (out, "}\n");
}

/*  zf_graph: draws a pipeline: as text for a terminal, or as Graphviz dot. */
#ifndef ZF_GRAPH_H_INCLUDED
#define ZF_GRAPH_H_INCLUDED

#include <stdio.h>

#include "zf_pipeline.h"

#ifdef __cplusplus
extern "C" {
#endif

//  One line per queue: its writers, the queue, its readers (each reader is a
//  consumer group that gets every item: fan-out when there are several).
void zf_graph_text (zf_pipeline_t *pipeline, FILE *out);

//  A Graphviz digraph: actors as boxes, queues as cylinders.
void zf_graph_dot (zf_pipeline_t *pipeline, FILE *out);

#ifdef __cplusplus
}
#endif
#endif

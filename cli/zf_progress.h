/*  zf_progress: zflow run's live view on a terminal, one line per actor:
    items done, the total where it is known (a seq:N or list source), the
    rate, items in flight and errors, with a bar and an ETA for sources of
    known size. It reads the broker's `stats` events (schemas/zfp.md), as
    any monitor could, and redraws in place at most four times a second.
*/
#ifndef ZF_PROGRESS_H_INCLUDED
#define ZF_PROGRESS_H_INCLUDED

#include <stdio.h>

#include "zf_pipeline.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zf_progress_t zf_progress_t;

//  A view of pipeline's actors, fed by the events at endpoint, drawn on
//  out (a terminal). NULL if the events cannot be subscribed to.
zf_progress_t *zf_progress_new (zf_pipeline_t *pipeline, const char *events, FILE *out);

void zf_progress_destroy (zf_progress_t **self_p);

//  Takes the events that came, and redraws if it is time.
void zf_progress_update (zf_progress_t *self);

//  Erases the view, so that other lines can be printed; the next update
//  draws it again below them. Safe on NULL.
void zf_progress_clear (zf_progress_t *self);

#ifdef __cplusplus
}
#endif
#endif

/*  zf_kinds: the list of built-in actor kinds. See zf_kinds.h. */
#include "zf_kinds.h"

static const zf_kind_t *const s_kinds[] = {
    &zf_producer_kind, &zf_fetcher_kind, &zf_processor_kind, &zf_scheduler_kind,
    &zf_gather_kind,   &zf_sink_kind,    &zf_exec_kind,      NULL,
};

const zf_kind_t *const *
zf_kinds (void)
{
    return s_kinds;
}

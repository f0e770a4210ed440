/*  zf_gather: fan-in. Collects the members of a group and emits them as one
    list in index order (asyncio.gather), or fails the group at the first
    error and cancels the rest (TaskGroup).
*/
#include "zf_kinds.h"

static const zf_key_t s_keys[] = {
    ZF_KEY_KIND,
    ZF_KEY_INPUT,
    ZF_KEY_OUTPUT,
    { .name = "concurrency",
      .type = ZF_KEY_INT,
      .fallback = "10000",
      .help = "members held unacked while their groups fill",
      .min = 1,
      .max = 10000000 },
    { .name = "mode",
      .type = ZF_KEY_ENUM,
      .fallback = "collect",
      .help = "collect keeps errors in place; all fails at the first",
      .choices = "collect|all" },
    { .name = "timeout",
      .type = ZF_KEY_DURATION,
      .fallback = "0",
      .help = "an incomplete group is closed after this; 0 waits for ever" },
    { .name = "on-timeout",
      .type = ZF_KEY_ENUM,
      .fallback = "emit",
      .help = "an incomplete group is emitted with gaps, or failed",
      .choices = "emit|fail" },
    { NULL },
};

const zf_kind_t zf_gather_kind = {
    .name = "gather",
    .summary = "collects the members of each group into one list, in order",
    .keys = s_keys,
    .flags = ZF_KIND_INPUT | ZF_KIND_OUTPUT,
};

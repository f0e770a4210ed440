/*  libFuzzer target: the ZPL reader on any text. Every input gives a tree
    and a list of errors; nothing crashes or leaks. */
#include "zf_zpl.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *text = strndup ((const char *) data, size);
    zlistx_t *errors = zf_errors_new ();
    zf_zpl_t *zpl = zf_zpl_load_text (text, "fuzz.zpl", errors);
    zf_zpl_destroy (&zpl);
    zlistx_destroy (&errors);
    free (text);
    return 0;
}

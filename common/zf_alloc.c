/*  zf_alloc: memory that is there or a stop. See zf_alloc.h. */
#include "zf_alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
s_out_of_memory (size_t size)
{
    // No allocation here: stderr is unbuffered.
    fprintf (stderr, "zflow: out of memory (%zu bytes asked for): stopping\n", size);
    abort ();
}

void *
zf_alloc (size_t size)
{
    void *ptr = calloc (1, size ? size : 1);
    if (!ptr)
        s_out_of_memory (size);
    return ptr;
}

void *
zf_realloc (void *ptr, size_t size)
{
    void *grown = realloc (ptr, size ? size : 1);
    if (!grown)
        s_out_of_memory (size);
    return grown;
}

char *
zf_strdup (const char *text)
{
    size_t size = strlen (text) + 1;
    char *copy = (char *) malloc (size);
    if (!copy)
        s_out_of_memory (size);
    memcpy (copy, text, size);
    return copy;
}

/*  wrap: a processor command in C, speaking the JSON-lines protocol.

    For each item it reads one line (the item as JSON) and answers with one
    output line, {"item": ITEM, "bytes": N} where N is the length of the
    item's JSON text, then the empty line that ends the item. An item that
    is the string "fail" is refused with a '!' line instead, to show how a
    failure is reported. The protocol is in docs/processor.md.

    It needs no JSON library: a JSON value can be copied into another as
    text. Run it in a pipeline with `command = PATH/zflow-wrap`.
*/
#include <stdio.h>
#include <string.h>

int
main (void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline (&line, &cap, stdin)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = 0;
        if (strcmp (line, "\"fail\"") == 0)
            printf ("!asked to fail\n\n");
        else
            printf ("{\"item\":%s,\"bytes\":%zd}\n\n", line, len);
        fflush (stdout); // the answer must not wait in a buffer
    }
    return 0;
}

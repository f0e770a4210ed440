#   hello: zflow end to end in a few seconds, offline. A small site (site/)
#   is served by an actor of the pipeline itself; its pages are fetched many
#   at once over pooled connections, a processor in Python finds each page's
#   title and links, and the results fan out to two sinks and to a gather
#   that collects each batch of pages into one list.
#
#   ./scripts/run pipelines/hello.zpl      (results in pipelines/out/hello/)
pipeline
    name = hello                        #   Used in logs and in derived ids
broker
    endpoint = ${ZFLOW_ENDPOINT:-tcp://127.0.0.1:5670}  #   Actors connect here
    events = ${ZFLOW_EVENTS:-tcp://127.0.0.1:5671}      #   zflow tap / top subscribe here
queues
    pages
        max-attempts = 3                #   Then a page goes to pages.dead
actors
    origin                              #   The site, served while the pipeline runs
        kind = exec                     #   A program of its own: here, a web server
        command = "exec python3 -m http.server ${HELLO_PORT:-8765} --bind 127.0.0.1 --directory site >/dev/null 2>&1"  #   Serves site/ while the pipeline runs
    urls                                #   The pages to fetch, in batches of 3
        kind = producer                 #   Puts items from a source into a queue
        output = urls                   #   The queue it writes
        group-size = 3                  #   Each batch is one group for the gather
        items
            item = http://127.0.0.1:${HELLO_PORT:-8765}/index.html  #   A page of the example site
            item = http://127.0.0.1:${HELLO_PORT:-8765}/about.html  #   A page of the example site
            item = http://127.0.0.1:${HELLO_PORT:-8765}/news.html  #   A page of the example site
            item = http://127.0.0.1:${HELLO_PORT:-8765}/contact.html  #   A page of the example site
            item = http://127.0.0.1:${HELLO_PORT:-8765}/docs/pipelines.html  #   A page of the example site
            item = http://127.0.0.1:${HELLO_PORT:-8765}/missing.html  #   A page of the example site
    fetch                               #   Concurrent HTTP, keep-alive connections
        kind = fetcher                  #   Fetches each URL over HTTP
        input = urls                    #   The queue it reads
        output = pages                  #   The queue it writes
        concurrency = 16                #   Requests in flight
        max-per-host = 4                #   Connections to the one host
        timeout = 5s                    #   Whole request
        retry-base = 100ms              #   The origin may still be starting
        max-retries = 10                #   Then the failure becomes an item
    titles                              #   User logic in any language
        kind = processor                #   Runs user logic on each item
        input = pages                   #   The queue it reads
        output = titles                 #   The queue it writes
        command = "python3 custom/title.py"  #   Finds the title and links of each page
        on-error = emit                 #   A failed page goes on as {error, item}
    store                               #   Fan-out: every title to this sink...
        kind = sink                     #   Writes each item out
        input = titles                  #   The queue it reads
        target = file:out/hello/titles.jsonl  #   One JSON value per line, beside this file
    audit                               #   ...and to this one, with envelopes
        kind = sink                     #   Writes each item out
        input = titles                  #   The queue it reads
        target = file:out/hello/audit.jsonl  #   One JSON value per line, beside this file
        format = envelope               #   Each line with its id, queue and attempt
    batches                             #   ...and to a gather: one list per batch
        kind = gather                   #   Collects each group into one list
        input = titles                  #   The queue it reads
        output = batches                #   The queue it writes
        mode = collect                  #   Errors stay in their places
        timeout = 1m                    #   A group still missing a member after this comes out with the gap marked
    lists
        kind = sink                     #   Writes each item out
        input = batches                 #   The queue it reads
        target = file:out/hello/batches.jsonl  #   One JSON value per line, beside this file

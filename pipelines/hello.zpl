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
        kind = exec
        command = "exec python3 -m http.server ${HELLO_PORT:-8765} --bind 127.0.0.1 --directory site >/dev/null 2>&1"
    urls                                #   The pages to fetch, in batches of 3
        kind = producer
        output = urls
        group-size = 3                  #   Each batch is one group for the gather
        items
            item = http://127.0.0.1:${HELLO_PORT:-8765}/index.html
            item = http://127.0.0.1:${HELLO_PORT:-8765}/about.html
            item = http://127.0.0.1:${HELLO_PORT:-8765}/news.html
            item = http://127.0.0.1:${HELLO_PORT:-8765}/contact.html
            item = http://127.0.0.1:${HELLO_PORT:-8765}/docs/pipelines.html
            item = http://127.0.0.1:${HELLO_PORT:-8765}/missing.html
    fetch                               #   Concurrent HTTP, keep-alive connections
        kind = fetcher
        input = urls
        output = pages
        concurrency = 16                #   Requests in flight
        max-per-host = 4                #   Connections to the one host
        timeout = 5s                    #   Whole request
        retry-base = 100ms              #   The origin may still be starting
        max-retries = 6                 #   Then the failure becomes an item
    titles                              #   User logic in any language
        kind = processor
        input = pages
        output = titles
        command = "python3 custom/title.py"
        on-error = emit                 #   A failed page goes on as {error, item}
    store                               #   Fan-out: every title to this sink...
        kind = sink
        input = titles
        target = file:out/hello/titles.jsonl
    audit                               #   ...and to this one, with envelopes
        kind = sink
        input = titles
        target = file:out/hello/audit.jsonl
        format = envelope
    batches                             #   ...and to a gather: one list per batch
        kind = gather
        input = titles
        output = batches
        mode = collect                  #   Errors stay in their places
    lists
        kind = sink
        input = batches
        target = file:out/hello/batches.jsonl

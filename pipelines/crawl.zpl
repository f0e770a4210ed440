#   crawl: URLs from a file, fetched many at once, each page's title and
#   links found by a processor, the results written to a file. Aimed here at
#   the example site, served by an actor of the pipeline (port 8765), so it
#   runs offline; point data/urls.txt elsewhere and drop `origin` to crawl
#   for real. `zflow graph pipelines/crawl.zpl` draws it; `zflow help KIND`
#   lists the keys of each kind of actor.
pipeline
    name = crawl                        #   Used in logs and in derived ids
broker
    endpoint = ${ZFLOW_ENDPOINT:-tcp://127.0.0.1:5670}  #   Actors connect here
    events = ${ZFLOW_EVENTS:-tcp://127.0.0.1:5671}      #   zflow tap / top subscribe here
    heartbeat = 1s                      #   Heartbeat interval, both ways
    liveness = 3                        #   Missed heartbeats before a worker is dead
queues
    urls
        max-depth = 2000                #   Writers get no credit beyond this
    pages
        max-depth = 1000                #   Pages are large: keep fewer waiting
        max-attempts = 5                #   Then an item goes to pages.dead
        timeout = 2m                    #   Redeliver an item held longer than this
actors
    origin                              #   The example site (drop it to crawl the web)
        kind = exec                     #   A program of its own: here, a web server
        command = "exec python3 -m http.server 8765 --bind 127.0.0.1 --directory site >/dev/null 2>&1"  #   Serves site/ while the pipeline runs
    seeds
        kind = producer                 #   Puts items from a source into a queue
        source = file:data/urls.txt     #   One URL per line, relative to this file
        output = urls                   #   The queue it writes
    fetch
        kind = fetcher                  #   Fetches each URL over HTTP
        input = urls                    #   The queue it reads
        output = pages                  #   The queue it writes
        workers = 2                     #   Processes
        concurrency = 64                #   Requests in flight per process
        max-connections = 128           #   Open connections per process, all hosts
        max-per-host = 8                #   Connections per host, per process
        timeout = 30s                   #   Whole request
        connect-timeout = 5s            #   Connecting alone
        read-timeout = 10s              #   Longest wait without a byte
        max-body = 5MiB                 #   Larger pages fail with kind too-large
        follow-redirects = 5            #   Redirects followed
        retry-on = "connect,network,timeout,429,5xx"  #   Failures worth another try
        max-retries = 4                 #   Tries again, at most
        retry-base = 200ms              #   First backoff; doubles, with full jitter
        retry-max = 10s                 #   Longest backoff (Retry-After is honoured)
        rate-per-host = 50              #   Requests per second to one host, at most
        on-error = emit                 #   Final failures become {url, error, kind} items
    titles
        kind = processor                #   Runs user logic on each item
        input = pages                   #   The queue it reads
        output = found                  #   The queue it writes
        command = "python3 custom/title.py"  #   Title and links of each page
        concurrency = 2                 #   Copies of the command per worker
        timeout = 10s                   #   Per page
        on-error = emit                 #   A failed fetch goes on as {error, item}
    store
        kind = sink                     #   Writes each item out
        input = found                   #   The queue it reads
        target = file:out/crawl/pages.jsonl  #   JSON lines, one per page
        sync = interval                 #   fsync every sync-interval; acks wait for it

#   crawl: URLs from a file, fetched many at once, pages written to a file.
#   `zflow graph pipelines/crawl.zpl` draws it; `zflow help KIND` lists the
#   keys of each kind of actor.
pipeline
    name = crawl                        #   Used in logs and in derived ids
broker
    endpoint = ${ZFLOW_ENDPOINT:-tcp://127.0.0.1:5670}  #   Actors connect here
    events = tcp://127.0.0.1:5671       #   zflow tap / top subscribe here
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
    seeds
        kind = producer
        source = file:data/urls.txt     #   One URL per line, relative to this file
        output = urls
    fetch
        kind = fetcher
        input = urls
        output = pages
        workers = 2                     #   Processes
        concurrency = 64                #   Requests in flight per process
        max-per-host = 8                #   Connections per host, per process
        timeout = 30s                   #   Whole request
        connect-timeout = 5s            #   Connecting alone
        retry-on = "connect,network,timeout,429,5xx"  #   Failures worth another try
        on-error = emit                 #   Final failures become {url, error, kind} items
    store
        kind = sink
        input = pages
        target = file:out/pages.jsonl   #   JSON lines, one per page

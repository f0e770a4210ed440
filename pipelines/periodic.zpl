#   periodic: a scheduler with an interval job and a cron job feeding a
#   fetcher; runs until stopped (Ctrl-C). The example site is served by an
#   actor of the pipeline, so it runs offline.
pipeline
    name = periodic                     #   Used in logs and in derived ids
broker
    endpoint = ${ZFLOW_ENDPOINT:-tcp://127.0.0.1:5670}  #   Actors connect here
    events = ${ZFLOW_EVENTS:-tcp://127.0.0.1:5671}      #   zflow tap / top subscribe here
actors
    origin                              #   The example site
        kind = exec
        command = "exec python3 -m http.server 8765 --bind 127.0.0.1 --directory site >/dev/null 2>&1"
    clock
        kind = scheduler
        output = urls
        poll                            #   A job: every 5 seconds
            every = 5s
            payload = {"url":"http://127.0.0.1:8765/news.html"}
            misfire-grace = 1s          #   A firing later than this is skipped
            coalesce = true             #   After a stall, fire once, not for each missed time
            max-instances = 1           #   Not while the last fetch is still going on
        minutely                        #   A job: at second 30 of every minute, in a zone
            cron = "30 * * * * *"       #   Seconds first: six fields
            timezone = Europe/London
            payload = {"url":"http://127.0.0.1:8765/index.html"}
    fetch
        kind = fetcher
        input = urls
        output = pages
        concurrency = 4                 #   Requests in flight
        timeout = 5s                    #   Whole request
        on-error = emit                 #   Failures become {url, error, kind} items
    store
        kind = sink
        input = pages
        target = file:out/periodic/pages.jsonl

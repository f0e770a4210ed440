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
        kind = exec                     #   A program of its own: here, a web server
        command = "exec python3 -m http.server 8765 --bind 127.0.0.1 --directory site >/dev/null 2>&1"  #   Serves site/ while the pipeline runs
    clock
        kind = scheduler                #   Puts an item at each firing of its jobs
        output = urls                   #   The queue it writes
        poll                            #   A job: every 5 seconds
            every = 5s                  #   Fire every 5 seconds, on whole intervals
            payload = {"url":"http://127.0.0.1:8765/news.html"}  #   The item put: a request for the fetcher
            misfire-grace = 1s          #   A firing later than this is skipped
            coalesce = true             #   After a stall, fire once, not for each missed time
            max-instances = 1           #   Not while the last fetch is still going on
        minutely                        #   A job: at second 30 of every minute, in a zone
            cron = "30 * * * * *"       #   Seconds first: six fields
            timezone = Europe/London    #   Cron times are wall-clock times there
            payload = {"url":"http://127.0.0.1:8765/index.html"}  #   The item put: a request for the fetcher
    fetch
        kind = fetcher                  #   Fetches each URL over HTTP
        input = urls                    #   The queue it reads
        output = pages                  #   The queue it writes
        concurrency = 4                 #   Requests in flight
        timeout = 5s                    #   Whole request
        on-error = emit                 #   Failures become {url, error, kind} items
    store
        kind = sink                     #   Writes each item out
        input = pages                   #   The queue it reads
        target = file:out/periodic/pages.jsonl  #   One JSON value per line, beside this file

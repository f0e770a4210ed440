#   numbers: a producer counting to 100,000 into a sink file. The smallest
#   pipeline with a source and a sink; `zflow graph` draws it.
pipeline
    name = numbers                      #   Used in logs and in derived ids
broker
    endpoint = ${ZFLOW_ENDPOINT:-tcp://127.0.0.1:5670}  #   Actors connect here
    events = ${ZFLOW_EVENTS:-tcp://127.0.0.1:5671}      #   zflow tap / top subscribe here
queues
    numbers
        max-depth = 2000                #   The producer waits beyond this
actors
    numbers
        kind = producer                 #   Puts items from a source into a queue
        source = seq:100000             #   The integers 0..99999
        output = numbers                #   The queue it writes
    store
        kind = sink                     #   Writes each item out
        input = numbers                 #   The queue it reads
        target = file:out/numbers.jsonl #   One JSON value per line, beside this file
        sync = interval                 #   fsync every 100 ms; acks wait for it

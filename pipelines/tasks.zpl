#   tasks: zflow as a task queue. Tasks are put from outside (zflow put,
#   HTTP, a client), a pool of Python workers runs them, and each task's
#   result is kept for `zflow result`.
#
#   build/zflow run pipelines/tasks.zpl           (serves until stopped)
#   build/zflow put tcp://127.0.0.1:5670 tasks '{"n": 7}'
pipeline
    name = tasks                        #   Used in logs and in derived ids
    results = answers                   #   What a task's lineage puts here is its result
broker
    endpoint = ${ZFLOW_ENDPOINT:-tcp://127.0.0.1:5670}  #   Clients and actors connect here
    events = ${ZFLOW_EVENTS:-tcp://127.0.0.1:5671}      #   zflow tap / top subscribe here
queues
    tasks
        external = true                 #   Fed from outside: the run serves until stopped
        max-attempts = 3                #   Then a task goes to tasks.dead
actors
    square                              #   The workers
        kind = processor                #   Runs a program on each item
        command = "python3 custom/square.py"  #   JSON lines in and out (docs/processor.md)
        input = tasks                   #   The queue it reads
        output = answers                #   The queue it writes
        workers = 2                     #   Processes
        concurrency = 4                 #   Copies of the program in each

#!/usr/bin/python3
"""The next fire times of cron expressions by croniter, an established
implementation, for the cron engine's tests to agree with.

Reads lines "EXPR|FROM|COUNT" (FROM an ISO 8601 time in UTC) on stdin and
prints, for each, COUNT times in UTC as ISO 8601, one line each.
"""
import datetime
import sys

from croniter import croniter

for line in sys.stdin:
    expr, start, count = line.rstrip("\n").split("|")
    at = datetime.datetime.fromisoformat(start.replace("Z", "+00:00"))
    times = croniter(expr, at)
    for _ in range(int(count)):
        print(times.get_next(datetime.datetime).isoformat())

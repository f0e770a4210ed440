#!/usr/bin/python3
"""APScheduler's lateness, as bench/sched compares it: an AsyncIOScheduler
with one IntervalTrigger job every PERIOD ms, N firings; the lateness of a
firing is when the scheduler submitted it minus its scheduled run time
(EVENT_JOB_SUBMITTED). Prints p50, p99 and max in ms.

    apscheduler_interval.py N PERIOD_MS
"""
import asyncio
import datetime
import sys
import time

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_SUBMITTED
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

N, PERIOD = int(sys.argv[1]), float(sys.argv[2]) / 1000.0
late = []
ran = [0]


def job():
    pass


def submitted(event):
    now = time.time()
    for when in event.scheduled_run_times:
        late.append(now - when.timestamp())


def finished(event):
    ran[0] += 1


async def main():
    scheduler = AsyncIOScheduler()
    scheduler.add_listener(submitted, EVENT_JOB_SUBMITTED)
    scheduler.add_listener(finished, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    start = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=0.5)
    scheduler.add_job(job, IntervalTrigger(seconds=PERIOD, start_date=start),
                      misfire_grace_time=None, coalesce=False, max_instances=10)
    scheduler.start()
    while len(late) < N:
        await asyncio.sleep(0.05)
    # No more firings; those in flight end (within 2 s) before the
    # scheduler and its loop close, or shutdown cancels them, noisily.
    scheduler.remove_all_jobs()
    deadline = time.monotonic() + 2
    while ran[0] < len(late) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    scheduler.shutdown(wait=False)


asyncio.run(main())
values = sorted(late[:N])
print("apscheduler: p50 %.3f ms, p99 %.3f ms, max %.3f ms (%d firings)"
      % (values[len(values) // 2] * 1000, values[len(values) * 99 // 100] * 1000,
         values[-1] * 1000, len(values)))

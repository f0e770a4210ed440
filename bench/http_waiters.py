"""bench/http_waiters.py ADDRESS PID [COUNT]: COUNT tasks put in one NDJSON
request, due one after another over 5 s starting a few seconds ahead;
then one GET /results/ID?wait=60s for each, all parked in the gateway at
once. Prints the RSS growth of the zflow process (PID) while they wait,
and how long after its task was due each answer came (p50, p99, max: the
task's own run, a few ms, included). Each answer must say done."""
import asyncio
import json
import resource
import sys
import time
import urllib.request

SPREAD_MS = 5000  # the tasks are due over this long

def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def waiting(address):
    text = urllib.request.urlopen("http://%s/metrics" % address, timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith("zflow_api_waiting "):
            return int(line.split()[1])
    return 0


async def main(address, pid, count):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    host, port = address.split(":")
    start = int(time.time() * 1000) + 4000 + count  # a millisecond per waiter to park it
    due = [start + n * SPREAD_MS // count for n in range(count)]
    body = "\n".join(json.dumps({"body": {"n": n}, "not_before": due[n]})
                     for n in range(count)).encode()
    request = urllib.request.Request(
        "http://%s/queues/tasks" % address, data=body,
        headers={"Content-Type": "application/x-ndjson", "Zflow-Envelope": "1"})
    ids = json.loads(urllib.request.urlopen(request, timeout=60).read())["ids"]
    before = rss_mb(pid)

    async def wait(n, id):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /results/%s?wait=60s HTTP/1.0\r\nHost: x\r\n\r\n" % id.encode())
        await writer.drain()
        answer = await reader.read()
        at = time.time() * 1000
        writer.close()
        return at - due[n], answer

    waiters = []
    for n, id in enumerate(ids):  # a few at a time: the listen backlog is finite
        waiters.append(asyncio.ensure_future(wait(n, id)))
        if len(waiters) % 200 == 0:
            await asyncio.sleep(0.01)
    parked = 0
    while parked < count and time.time() * 1000 < start:
        parked = await asyncio.to_thread(waiting, address)
        await asyncio.sleep(0.05)
    held = rss_mb(pid)
    answers = await asyncio.gather(*waiters)
    late = sorted(after for after, answer in answers)
    done = sum(1 for _, answer in answers if b'"state":"done"' in answer)
    print("%d GET /results?wait parked at once (%d seen waiting before the tasks were due)"
          % (count, parked))
    print("gateway RSS: %.1f MB before, %.1f MB while they waited: +%.1f MB   (target <= 64 MB)"
          % (before, held, held - before))
    print("answered after their tasks were due: p50 %.0f ms, p99 %.0f ms, max %.0f ms   "
          "(target <= 100 ms after the task's end); %d of %d done"
          % (late[len(late) // 2], late[int(len(late) * 0.99)], late[-1], done, count))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 10000))

#!/usr/bin/python3
"""The aiohttp gather pattern bench/fetch compares with: one ClientSession
with TCPConnector(limit=100, limit_per_host=20), N GETs of one URL gathered
with asyncio.gather, each body read in full.

    aiohttp_gather.py URL N       prints "aiohttp gather: R requests/s"
"""
import asyncio
import sys
import time

import aiohttp


async def fetch(session, url):
    async with session.get(url) as response:
        await response.read()
        return response.status


async def main(url, n):
    connector = aiohttp.TCPConnector(limit=100, limit_per_host=20)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.monotonic()
        statuses = await asyncio.gather(*(fetch(session, url) for _ in range(n)))
        elapsed = time.monotonic() - start
    failed = sum(1 for s in statuses if s != 200)
    print("aiohttp gather: %.0f requests/s (%d requests, %d failed)" % (n / elapsed, n, failed))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))

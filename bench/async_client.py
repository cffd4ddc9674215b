#!/usr/bin/env python3
"""Async-execution benchmark client (127.0.0.1 only, bounded in count and time).

Phase 1 submits N jobs (`POST /processes/{id}/execution` with
`Prefer: respond-async`) from C concurrent connections and collects each
job's `Location`. Phase 2 polls every job's status (`GET /jobs/{id}`, C at a
time, round-robin over the jobs not yet finished) until all are finished.

Prints one JSON object:
- submissions_per_s: N / (last 201 received - first request sent)
- completed_per_s:   N / (last job's server-side `finished` - first request
                     sent): the server's own completion timestamps, so the
                     polling speed of this client does not limit it
- drain_s:           last `finished` - last 201 received (0 when every job
                     was done before the last submission was answered)
- *_observed:        the same as seen by this client's polling
- stalled:           a request went unanswered for --stall seconds (the
                     server hung); the client stopped there
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import ipaddress
import json
import sys
import time
import urllib.parse

import aiohttp

FINISHED = {"successful", "failed", "dismissed"}


def parse_time(text: str) -> float:
    """RFC 3339 UTC timestamp to epoch seconds (any number of fraction digits)."""
    text = text.strip().replace("Z", "+00:00")
    main, _, rest = text.partition(".")
    frac, tz = "", ""
    if rest:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        frac, tz = rest[:digits], rest[digits:]
    else:
        for sign in "+-":
            idx = main.rfind(sign)
            if idx > 10:
                main, tz = main[:idx], main[idx:]
                break
    stamp = dt.datetime.fromisoformat(main + (tz or "+00:00"))
    return stamp.timestamp() + (float("0." + frac) if frac else 0.0)


def check_loopback(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        sys.exit(f"refusing to load a non-loopback address: {url}")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, action="append",
                    help="base URL, e.g. http://127.0.0.1:5000; repeat it for several "
                         "nodes of a cluster: submissions go round-robin")
    ap.add_argument("--process", default="hello-world")
    ap.add_argument("--body", default='{"inputs":{"name":"Joe"}}')
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--deadline", type=float, default=300.0, help="give up after this many seconds")
    ap.add_argument("--stall", type=float, default=15.0,
                    help="a request unanswered this long means the server stalled: stop")
    args = ap.parse_args()
    for url in args.url:
        check_loopback(url)
    bases = [url.rstrip("/") for url in args.url]
    body = args.body.encode()
    deadline = time.monotonic() + args.deadline
    submit_errors: collections.Counter[str] = collections.Counter()
    locations: list[str] = []
    next_index = 0
    last_201 = 0.0
    stalled = False

    connector = aiohttp.TCPConnector(limit=args.concurrency)
    timeout = aiohttp.ClientTimeout(total=args.stall)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        post_headers = {"Content-Type": "application/json", "Prefer": "respond-async"}
        urls = [f"{base}/processes/{args.process}/execution" for base in bases]

        async def submitter() -> None:
            nonlocal next_index, last_201, stalled
            while next_index < args.jobs and time.monotonic() < deadline and not stalled:
                url = urls[next_index % len(urls)]
                next_index += 1
                try:
                    async with session.post(url, data=body, headers=post_headers) as resp:
                        await resp.read()
                        if resp.status == 201 and "Location" in resp.headers:
                            locations.append(resp.headers["Location"])
                            last_201 = time.time()
                        else:
                            submit_errors[str(resp.status)] += 1
                except asyncio.TimeoutError:
                    submit_errors["timeout"] += 1
                    stalled = True
                except aiohttp.ClientError as e:
                    submit_errors[type(e).__name__] += 1

        t0 = time.time()
        await asyncio.gather(*(submitter() for _ in range(args.concurrency)))
        t_submitted = time.time()

        pending = collections.deque(locations)
        finished_at: dict[str, float] = {}
        statuses: collections.Counter[str] = collections.Counter()
        poll_errors: collections.Counter[str] = collections.Counter()
        polls = 0
        seen_all = 0.0
        get_headers = {"Accept": "application/json"}

        async def poller() -> None:
            nonlocal polls, stalled
            while pending and time.monotonic() < deadline and not stalled:
                loc = pending.popleft()
                polls += 1
                try:
                    async with session.get(loc, headers=get_headers) as resp:
                        raw = await resp.read()
                    if resp.status != 200:
                        poll_errors[str(resp.status)] += 1
                        pending.append(loc)
                        await asyncio.sleep(0.01)
                        continue
                    doc = json.loads(raw)
                except asyncio.TimeoutError:
                    poll_errors["timeout"] += 1
                    stalled = True
                    continue
                except (aiohttp.ClientError, ValueError) as e:
                    poll_errors[type(e).__name__] += 1
                    pending.append(loc)
                    await asyncio.sleep(0.01)
                    continue
                status = doc.get("status")
                if status in FINISHED:
                    statuses[status] += 1
                    stamp = doc.get("finished") or doc.get("updated")
                    finished_at[loc] = parse_time(stamp) if stamp else time.time()
                else:
                    pending.append(loc)
                    # Every pending job was just looked at: let them run.
                    if len(pending) <= args.concurrency:
                        await asyncio.sleep(0.005)

        await asyncio.gather(*(poller() for _ in range(args.concurrency)))
        seen_all = time.time()

    n_ok = len(locations)
    done = len(finished_at)
    last_finished = max(finished_at.values(), default=float("nan"))
    submit_s = (last_201 or t_submitted) - t0
    out = {
        "jobs": args.jobs,
        "concurrency": args.concurrency,
        "accepted": n_ok,
        "submit_errors": dict(submit_errors),
        "finished": done,
        "statuses": dict(statuses),
        "unfinished_at_deadline": len(pending),
        "stalled": stalled,
        "polls": polls,
        "poll_errors": dict(poll_errors),
        "submit_s": round(submit_s, 4),
        "submissions_per_s": round(n_ok / submit_s, 1) if submit_s > 0 else None,
        "completed_per_s": round(done / (last_finished - t0), 1) if done else None,
        "drain_s": round(max(0.0, last_finished - (last_201 or t_submitted)), 4) if done else None,
        "completed_per_s_observed": round(done / (seen_all - t0), 1) if done else None,
        "drain_s_observed": round(seen_all - t_submitted, 4),
        "total_s": round(seen_all - t0, 4),
    }
    print("ASYNCJSON " + json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())

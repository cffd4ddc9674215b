#!/usr/bin/env python3
"""Memory per queued job: the server's RSS with nothing queued, then with
about --jobs async hello-world jobs queued behind a long job that holds the
node's only worker (`--workers 1`, an `echo` pausing for 60 s), on sled
and on PostgreSQL.

For each store: a fresh data directory (or database), the release binary
with `max_queued_jobs = 1000000`, the idle RSS (after a warm-up of 200
submissions, so the HTTP stack, the store and the allocator have their
steady-state buffers), then wrk submitting async jobs until the node's
`wasmproc_jobs_submitted_total` reaches --jobs (bounded by --deadline),
then the RSS again after 2 s of quiet. Per queued job = (RSS after - RSS
idle) / jobs submitted. The inputs of a job are 25 bytes here
(`{"inputs":{"name":"Joe"}}`), so the figure is what a queued job costs
beyond its inputs.

Everything on 127.0.0.1; every wait bounded.

    bench/queued_memory.py --jobs 100000 --out bench/results/queued-memory
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from bench import (WASMPROC, free_port, metric_sum, process_tree, serve_wasmproc,  # noqa: E402
                   status_kb, stop_group, wait_up, write_report)
from cluster import pg, scratch  # noqa: E402


def log(msg: str) -> None:
    print(f"[queued-memory] {msg}", file=sys.stderr, flush=True)


def rss_kb(pid: int) -> int:
    total = 0
    for p in process_tree(pid):
        try:
            total += status_kb(p, "VmRSS")
        except OSError:
            pass
    return total


def submit(base: str, jobs: int) -> None:
    """POST `jobs` async jobs one after the other (the warm-up)."""
    body = b'{"inputs":{"name":"Joe"}}'
    url = base + "/processes/hello-world/execution"
    headers = {"Content-Type": "application/json", "Prefer": "respond-async"}
    for _ in range(jobs):
        req = urllib.request.Request(url, data=body, headers=headers, method="POST")
        urllib.request.urlopen(req, timeout=10).read()


def measure(store: str, args: argparse.Namespace, admin_url: str | None) -> dict:
    with scratch(store, admin_url, "queued-memory") as (workdir, env):
        return measure_in(workdir, env, store, args)


def measure_in(workdir: Path, env: dict, store: str, args: argparse.Namespace) -> dict:
    config = workdir / "config.toml"
    config.write_text('[execution]\nmax_queued_jobs = 1000000\n\n'
                      '[processes.echo]\nlimits = { timeout = "20m" }\n')
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = serve_wasmproc(port, workdir / "data", workdir / "server.log",
                          "--config", str(config), "--workers", "1", env=env)
    try:
        wait_up(proc, base + "/processes/hello-world", 60, workdir / "server.log")
        # The only worker: busy for 60 s (echo's longest pause), longer than the run.
        hold = urllib.request.Request(
            base + "/processes/echo/execution", method="POST",
            data=b'{"inputs":{"stringInput":"hold","pause":60}}',
            headers={"Content-Type": "application/json", "Prefer": "respond-async"})
        urllib.request.urlopen(hold, timeout=10).read()
        time.sleep(1)
        submit(base, 200)
        time.sleep(2)
        idle = rss_kb(proc.pid)
        before = int(metric_sum(base, "wasmproc_jobs_submitted_total"))
        env_wrk = dict(os.environ, WRK_REPORT_LUA=str(BENCH / "wrk/report.lua"))
        wrk = subprocess.Popen(
            ["wrk", "-t1", "-c8", f"-d{args.deadline}s", "--timeout", "10s",
             "-s", str(BENCH / "wrk/post-async.lua"), base + "/processes/hello-world/execution"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env_wrk,
            start_new_session=True)
        stop_at = time.monotonic() + args.deadline
        while time.monotonic() < stop_at and wrk.poll() is None:
            if int(metric_sum(base, "wasmproc_jobs_submitted_total")) - before >= args.jobs:
                break
            time.sleep(0.2)
        os.killpg(wrk.pid, signal.SIGTERM)
        wrk.wait(timeout=30)
        time.sleep(2)
        queued = int(metric_sum(base, "wasmproc_jobs_submitted_total")) - before
        after = rss_kb(proc.pid)
        row = {
            "store": store, "jobs_queued": queued,
            "idle_rss_mib": round(idle / 1024, 1), "queued_rss_mib": round(after / 1024, 1),
            "bytes_per_queued_job": round((after - idle) * 1024 / max(queued, 1), 1),
        }
        log(json.dumps(row))
        return row
    finally:
        stop_group(proc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--deadline", type=int, default=45,
                    help="most seconds of submissions (the held worker frees after 60 s)")
    ap.add_argument("--stores", default="sled,postgres")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if not WASMPROC.exists():
        sys.exit("build it first: cargo build --release -p wasmproc")
    stores = args.stores.split(",")
    admin_url = pg() if "postgres" in stores else None
    rows = [measure(s, args, admin_url) for s in stores]
    write_report(args, rows, "queued-memory.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

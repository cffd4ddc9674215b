#!/usr/bin/env python3
"""A 3-step chain run in-host (one request with nested processes) against
the same chain driven by a client as 3 synchronous requests; and a map over
1,000 elements against 1,000 jobs submitted by a client.

The chain: hello-world("Joe") -> hello-world(that) -> echo(that), whose
answer is "Hello Hello Joe!!". In-host it is one request,

    {"inputs": {"stringInput": {"process": "hello-world", "inputs":
        {"name": {"process": "hello-world", "inputs": {"name": "Joe"}}}}}}

and the server runs each step as a job of its own. Driven by a client it is
three sync requests, each output sent back as the next input. Both record
three jobs. For each mode and concurrency (1, then 8), clients run chains
back to back for --seconds: chains/s, the latency of a chain (p50, p99),
and the server's CPU per chain (from /proc). The modes alternate, twice.

The map: statistics-py (Python, polyglot/out) over the doubleInput of
1,000 echo jobs (Rust), one request with "map"; against a client sending
the 1,000 echo requests itself (8 at a time) and then statistics-py over
their outputs. Wall time of the whole, and the server's CPU, each mode
--rounds times.

A fresh release server on sled with 2 workers; everything on 127.0.0.1;
every wait bounded.

    cargo build --release -p wasmproc && bench/workflow.py --out bench/results/workflow
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
from bench import (WASMPROC, cpu_ticks, free_port, process_tree, serve_wasmproc,  # noqa: E402
                   stop_group, wait_up, write_report)

TICK = os.sysconf("SC_CLK_TCK")
EXPECTED = "Hello Hello Joe!!"


def log(msg: str) -> None:
    print(f"[workflow] {msg}", file=sys.stderr, flush=True)


def post(base: str, process: str, inputs: dict) -> object:
    """One sync execute; the raw JSON output (one output asked for)."""
    body = json.dumps({"inputs": inputs}).encode()
    request = urllib.request.Request(
        f"{base}/processes/{process}/execution", data=body, method="POST",
        headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())


def in_host(base: str) -> object:
    inner = {"process": "hello-world", "inputs": {"name": "Joe"}}
    middle = {"process": "hello-world", "inputs": {"name": inner}}
    return post(base, "echo", {"stringInput": middle})


def by_client(base: str) -> object:
    first = post(base, "hello-world", {"name": "Joe"})
    second = post(base, "hello-world", {"name": first})
    return post(base, "echo", {"stringInput": second})


MODES = {"in-host": in_host, "client": by_client}
STATISTICS = ROOT / "polyglot/out/statistics-py.wasm"


def map_in_host(base: str, elements: int) -> object:
    mapped = {"process": "echo", "inputs": {"stringInput": "x"}, "outputs": {"doubleInput": {}},
              "map": {"input": "doubleInput", "over": list(range(elements))}}
    return post(base, "statistics-py", {"values": mapped})


def map_by_client(base: str, elements: int) -> object:
    from concurrent.futures import ThreadPoolExecutor

    def one(i: int) -> object:
        body = json.dumps({"inputs": {"stringInput": "x", "doubleInput": i},
                           "outputs": {"doubleInput": {}}}).encode()
        request = urllib.request.Request(
            f"{base}/processes/echo/execution", data=body, method="POST",
            headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as reply:
            return json.loads(reply.read())

    with ThreadPoolExecutor(max_workers=8) as pool:
        values = list(pool.map(one, range(elements)))
    return post(base, "statistics-py", {"values": values})


def run_map(mode: str, base: str, pid: int, elements: int) -> dict:
    chain = map_in_host if mode == "in-host" else map_by_client
    ticks0 = sum(cpu_ticks(p) for p in process_tree(pid))
    started = time.perf_counter()
    summary = chain(base, elements)
    seconds = time.perf_counter() - started
    ticks1 = sum(cpu_ticks(p) for p in process_tree(pid))
    expected_mean = (elements - 1) / 2
    if not (isinstance(summary, dict) and summary.get("count") == elements
            and abs(summary.get("mean", -1) - expected_mean) < 1e-9):
        sys.exit(f"map {mode} answered {summary!r}")
    row = {"mode": f"map-{mode}", "elements": elements, "seconds": round(seconds, 3),
           "jobs_per_s": round(elements / seconds, 1),
           "server_cpu_ms_per_element": round((ticks1 - ticks0) / TICK * 1000 / elements, 3)}
    log(json.dumps(row))
    return row


def run(mode: str, base: str, pid: int, concurrency: int, seconds: float) -> dict:
    chain = MODES[mode]
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        while time.monotonic() < stop:
            started = time.perf_counter()
            try:
                answer = chain(base)
                ok = answer == EXPECTED
            except OSError:
                ok = False
            with lock:
                if ok:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors[0] += 1

    ticks0 = sum(cpu_ticks(p) for p in process_tree(pid))
    began = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 60)
    elapsed = time.monotonic() - began
    ticks1 = sum(cpu_ticks(p) for p in process_tree(pid))
    done = len(latencies)
    latencies.sort()
    row = {
        "mode": mode, "concurrency": concurrency, "chains": done, "errors": errors[0],
        "chains_per_s": round(done / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
        "p99_ms": round(latencies[min(done - 1, int(done * 0.99))] * 1000, 2) if latencies else None,
        "server_cpu_ms_per_chain": round((ticks1 - ticks0) / TICK * 1000 / max(done, 1), 3),
    }
    log(json.dumps(row))
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--elements", type=int, default=1000, help="elements of the map")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if not WASMPROC.exists():
        sys.exit("build it first: cargo build --release -p wasmproc")
    if not STATISTICS.exists():
        sys.exit(f"{STATISTICS} is missing: run polyglot/build-all.sh")
    workdir = Path(tempfile.mkdtemp(prefix="wasmproc-workflow-"))
    processes = workdir / "processes"
    processes.mkdir()
    shutil.copy(STATISTICS, processes / STATISTICS.name)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = serve_wasmproc(port, workdir / "data", workdir / "server.log",
                          "--processes", str(processes), "--workers", "2")
    rows = []
    try:
        # The Python component compiles for a while.
        wait_up(proc, f"{base}/processes/statistics-py", 180, workdir / "server.log")
        for mode in MODES:  # warm-up, and a check that both give the answer
            answer = MODES[mode](base)
            if answer != EXPECTED:
                sys.exit(f"{mode} answered {answer!r}, not {EXPECTED!r}")
        for _ in range(args.rounds):
            for concurrency in (1, 8):
                for mode in MODES:
                    rows.append(run(mode, base, proc.pid, concurrency, args.seconds))
            for mode in ("in-host", "client"):
                rows.append(run_map(mode, base, proc.pid, args.elements))
    finally:
        stop_group(proc)
        shutil.rmtree(workdir, ignore_errors=True)
    write_report(args, rows, "workflow.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

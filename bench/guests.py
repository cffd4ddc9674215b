#!/usr/bin/env python3
"""The same hello-world in each guest language: component size, sandbox
instantiation time, and sync throughput with the server's CPU per request.

For each component (the built-in Rust hello-world, and polyglot/out's C,
JavaScript and Python ones; build those with polyglot/build-all.sh): a
fresh server on sled with that component in its processes directory and
2 workers; a warm-up; wrk at concurrency 1 for --seconds (the mean of
`wasmproc_sandbox_instantiate_duration_seconds` over it: instantiation
without contention); then wrk at concurrency 16 for --seconds: requests/s
and the server's CPU per request (from /proc), and its RSS before and
after. Every request is `{"inputs":{"name":"Joe"}}`, synchronous.

Then the Python guests head to head with pygeoapi, the same work in the
same language: hello-world-py against pygeoapi's own hello-world, and
statistics-py against the same computation as a pygeoapi processor
(`bench/pygeoapi/statistics_processor.py`, 200 numbers per request). Each
pair runs back to back at concurrency 16: wasmproc for --seconds, then a
fresh pygeoapi (2 gunicorn workers, TinyDB; bench.py's peer) for
--pygeoapi-seconds after a 1 s warm-up. pygeoapi slows down as its job
file grows, so a short run of a fresh one is its best case; the row says
how many jobs it held at the end.

Everything on 127.0.0.1; every wait bounded.

    polyglot/build-all.sh && bench/guests.py --out bench/results/guests
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
from bench import (WASMPROC, Server, cpu_ticks, free_port, metric_sum,  # noqa: E402
                   process_tree, serve_wasmproc, status_kb, stop_group, wait_up,
                   write_report)

TICK = os.sysconf("SC_CLK_TCK")
GUESTS = [
    ("rust", "hello-world", None),
    ("c", "hello-world-c", ROOT / "polyglot/out/hello-world-c.wasm"),
    ("javascript", "hello-world-js", ROOT / "polyglot/out/hello-world-js.wasm"),
    ("python", "hello-world-py", ROOT / "polyglot/out/hello-world-py.wasm"),
]


def log(msg: str) -> None:
    print(f"[guests] {msg}", file=sys.stderr, flush=True)


HELLO_BODY = '{"inputs":{"name":"Joe"}}'
STATISTICS_BODY = json.dumps({"inputs": {"values": [((i * 37) % 101) / 3 for i in range(200)],
                                         "quantiles": 10}})
# (wasmproc process, its component, pygeoapi's process, the request body)
HEAD_TO_HEAD = [
    ("hello-world-py", ROOT / "polyglot/out/hello-world-py.wasm", "hello-world", HELLO_BODY),
    ("statistics-py", ROOT / "polyglot/out/statistics-py.wasm", "statistics", STATISTICS_BODY),
]


def wrk(url: str, concurrency: int, seconds: int, body: str = HELLO_BODY) -> dict:
    env = dict(os.environ, WRK_REPORT_LUA=str(BENCH / "wrk/report.lua"), WRK_BODY=body)
    out = subprocess.run(
        ["wrk", f"-t{min(concurrency, 2)}", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "30s",
         "-s", str(BENCH / "wrk/post-body.lua"), url],
        capture_output=True, text=True, env=env, timeout=seconds + 60)
    line = next((l for l in out.stdout.splitlines() if l.startswith("WRKJSON ")), None)
    if line is None:
        sys.exit(f"wrk gave no result: {out.stdout}\n{out.stderr}")
    report = json.loads(line[8:])
    report["rps"] = report["requests"] / (report["duration_us"] / 1e6)
    return report


def measure(language: str, process: str, wasm: Path | None, args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="wasmproc-guests-"))
    processes = workdir / "processes"
    processes.mkdir()
    if wasm is not None:
        shutil.copy(wasm, processes / wasm.name)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = serve_wasmproc(port, workdir / "data", workdir / "server.log",
                          "--processes", str(processes), "--workers", "2")
    try:
        # A Python component compiles for a while.
        wait_up(proc, f"{base}/processes/{process}", 180, workdir / "server.log")
        url = f"{base}/processes/{process}/execution"
        wrk(url, 4, 2)  # warm-up: pool slots, caches
        idle_rss = sum(status_kb(p, "VmRSS") for p in process_tree(proc.pid))
        name = "wasmproc_sandbox_instantiate_duration_seconds"
        sum0, count0 = metric_sum(base, name + "_sum"), metric_sum(base, name + "_count")
        single = wrk(url, 1, args.seconds)
        sum1, count1 = metric_sum(base, name + "_sum"), metric_sum(base, name + "_count")
        ticks0 = sum(cpu_ticks(p) for p in process_tree(proc.pid))
        loaded = wrk(url, 16, args.seconds)
        ticks1 = sum(cpu_ticks(p) for p in process_tree(proc.pid))
        loaded_rss = sum(status_kb(p, "VmRSS") for p in process_tree(proc.pid))
        row = {
            "language": language, "process": process,
            "component_bytes": wasm.stat().st_size if wasm else None,
            "instantiate_ms_c1": round((sum1 - sum0) / max(count1 - count0, 1) * 1000, 3),
            "rps_c1": round(single["rps"], 1),
            "rps_c16": round(loaded["rps"], 1),
            "p99_ms_c16": round(loaded["p99_us"] / 1000, 2),
            "errors_c16": loaded["errors_status"] + loaded["errors_timeout"],
            "cpu_ms_per_request_c16": round((ticks1 - ticks0) / TICK * 1000 / max(loaded["requests"], 1), 3),
            "idle_rss_mib": round(idle_rss / 1024, 1), "loaded_rss_mib": round(loaded_rss / 1024, 1),
        }
        log(json.dumps(row))
        return row
    finally:
        stop_group(proc)
        shutil.rmtree(workdir, ignore_errors=True)


def served_by_wasmproc(process: str, wasm: Path, body: str, seconds: int) -> dict:
    """req/s and server CPU per request of PROCESS at concurrency 16."""
    workdir = Path(tempfile.mkdtemp(prefix="wasmproc-guests-"))
    (workdir / "processes").mkdir()
    shutil.copy(wasm, workdir / "processes" / wasm.name)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = serve_wasmproc(port, workdir / "data", workdir / "server.log",
                          "--processes", str(workdir / "processes"), "--workers", "2")
    try:
        wait_up(proc, f"{base}/processes/{process}", 180, workdir / "server.log")
        url = f"{base}/processes/{process}/execution"
        wrk(url, 4, 2, body)
        ticks0 = sum(cpu_ticks(p) for p in process_tree(proc.pid))
        r = wrk(url, 16, seconds, body)
        ticks1 = sum(cpu_ticks(p) for p in process_tree(proc.pid))
    finally:
        stop_group(proc)
        shutil.rmtree(workdir, ignore_errors=True)
    return {"rps": round(r["rps"], 1),
            "errors": r["errors_status"] + r["errors_timeout"],
            "cpu_ms_per_request": round((ticks1 - ticks0) / TICK * 1000 / max(r["requests"], 1), 3)}


def served_by_pygeoapi(process: str, body: str, seconds: int) -> dict:
    """The same for a fresh pygeoapi, and how many jobs it held at the end."""
    workdir = Path(tempfile.mkdtemp(prefix="wasmproc-guests-pygeoapi-"))
    try:
        with Server("pygeoapi", workdir) as srv:
            url = f"{srv.base}/processes/{process}/execution"
            warm = wrk(url, 16, 1, body)
            ticks0 = srv.cpu_ticks()
            r = wrk(url, 16, seconds, body)
            ticks1 = srv.cpu_ticks()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {"rps": round(r["rps"], 1),
            "errors": r["errors_status"] + r["errors_timeout"],
            "cpu_ms_per_request": round((ticks1 - ticks0) / TICK * 1000 / max(r["requests"], 1), 3),
            "jobs_held_at_end": warm["requests"] + r["requests"]}


def head_to_head(args: argparse.Namespace) -> list[dict]:
    rows = []
    for process, wasm, peer, body in HEAD_TO_HEAD:
        if not wasm.exists():
            sys.exit(f"{wasm} is missing: run polyglot/build-all.sh")
        ours = served_by_wasmproc(process, wasm, body, args.seconds)
        theirs = served_by_pygeoapi(peer, body, args.pygeoapi_seconds)
        row = {"wasmproc_process": process, "pygeoapi_process": peer,
               "wasmproc": ours, "pygeoapi": theirs,
               "rps_ratio": round(ours["rps"] / max(theirs["rps"], 1e-9), 2),
               "cpu_ratio": round(theirs["cpu_ms_per_request"]
                                  / max(ours["cpu_ms_per_request"], 1e-9), 2)}
        log(json.dumps(row))
        rows.append(row)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--pygeoapi-seconds", type=int, default=3,
                    help="how long each fresh pygeoapi is measured (after 1 s of warm-up)")
    ap.add_argument("--only-head-to-head", action="store_true",
                    help="skip the table of every language's hello-world")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if not WASMPROC.exists():
        sys.exit("build it first: cargo build --release -p wasmproc")
    rows = []
    for language, process, wasm in [] if args.only_head_to_head else GUESTS:
        if wasm is not None and not wasm.exists():
            sys.exit(f"{wasm} is missing: run polyglot/build-all.sh")
        rows.append(measure(language, process, wasm, args))
    rows += head_to_head(args)
    write_report(args, rows, "guests.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

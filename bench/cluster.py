#!/usr/bin/env python3
"""Cluster benchmark: async hello-world jobs through 1, 2 and 3 wasmproc nodes
on one PostgreSQL, beside one node on sled, all on this machine.

For each configuration: a fresh database (or sled directory), the nodes
started from target/release/wasmproc, `async_client.py` submitting N jobs
round-robin over the nodes at concurrency C and polling them to the end.
Measured: completed jobs/s (server-side `finished` timestamps), and the CPU
time of the nodes and of PostgreSQL (every process of its server, from
/proc) over the run, divided by the jobs completed.

Everything on 127.0.0.1; every wait bounded. PostgreSQL is a cluster of the
benchmark's own (tests/postgres-up.sh with WASMPROC_TEST_PG_ROOT under
target/bench-postgres, port 54330), default settings, fsync on.

    bench/cluster.py --jobs 5000 --rounds 2 --out bench/results/cluster
    bench/cluster.py --client wrk --seconds 10 --rounds 2   # saturated, C client
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
from bench import (WASMPROC, cpu_ticks, free_port, process_tree, serve_wasmproc,  # noqa: E402
                   stop_group, wait_up, write_report)

PG_ROOT = ROOT / "target/bench-postgres"
PG_PORT = 54330
TICK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[cluster] {msg}", file=sys.stderr, flush=True)


def pg(*args: str) -> str:
    env = dict(os.environ, WASMPROC_TEST_PG_ROOT=str(PG_ROOT), WASMPROC_TEST_PG_PORT=str(PG_PORT))
    out = subprocess.run([str(ROOT / "tests/postgres-up.sh"), *args], env=env,
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        sys.exit(f"postgres-up.sh failed: {out.stderr}")
    return out.stdout.strip()


def psql(url: str, sql: str) -> str:
    return subprocess.run(["psql", url, "-Atc", sql], capture_output=True, text=True,
                          check=True, timeout=60).stdout.strip()


def create_database(admin_url: str, prefix: str) -> str:
    """A new, empty database on the benchmark's PostgreSQL, named PREFIX_<ms
    since the epoch>: its URL (drop it with drop_database)."""
    name = f"{prefix}_{int(time.time() * 1000)}"
    psql(admin_url, f"CREATE DATABASE {name}")
    return admin_url.rsplit("/", 1)[0] + "/" + name


def drop_database(admin_url: str, db_url: str) -> None:
    psql(admin_url, f"DROP DATABASE IF EXISTS {db_url.rsplit('/', 1)[1]} WITH (FORCE)")


@contextlib.contextmanager
def scratch(store: str, admin_url: str | None, prefix: str):
    """What one measurement runs in: a temporary directory named after
    PREFIX and the servers' environment (quiet logs, and on the
    "postgres" store a new database of its own in WASMPROC_DATABASE_URL).
    Yields (directory, environment); removes both afterwards, whatever
    happened."""
    workdir = Path(tempfile.mkdtemp(prefix=f"wasmproc-{prefix}-"))
    env = dict(os.environ, RUST_LIB_BACKTRACE="0", RUST_LOG="warn")
    db_url = None
    try:
        if store == "postgres":
            db_url = create_database(admin_url, prefix.replace("-", "_"))
            env["WASMPROC_DATABASE_URL"] = db_url
        yield workdir, env
    finally:
        if db_url:
            drop_database(admin_url, db_url)
        shutil.rmtree(workdir, ignore_errors=True)


def postmaster_pid() -> int:
    return int((PG_ROOT / "data/postmaster.pid").read_text().split()[0])


def ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += cpu_ticks(pid)
        except OSError:
            pass  # a backend that ended: its time is lost (small)
    return total


class Node:
    def __init__(self, name: str, workdir: Path, env: dict[str, str], workers: int) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = workdir / f"{name}.toml"
        config.write_text(
            f'[execution]\nmax_queued_jobs = 1000000\nmax_concurrent_jobs = {workers}\n'
            f'job_retention = "7days"\n'
        )
        self.proc = serve_wasmproc(self.port, workdir / name, workdir / f"{name}.log",
                                   "--config", str(config), "--node-name", name, env=env)
        wait_up(self.proc, self.base + "/processes/hello-world", 60, workdir / f"{name}.log",
                f"node {name}")

    def ticks(self) -> int:
        return ticks(process_tree(self.proc.pid))

    def stop(self) -> None:
        stop_group(self.proc)


def run_client(bases: list[str], jobs: int, concurrency: int) -> dict:
    cmd = [str(BENCH / ".venv/bin/python"), str(BENCH / "async_client.py"),
           "--jobs", str(jobs), "--concurrency", str(concurrency), "--deadline", "600"]
    for base in bases:
        cmd += ["--url", base]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=700)
    for line in out.stdout.splitlines():
        if line.startswith("ASYNCJSON "):
            return json.loads(line[len("ASYNCJSON "):])
    sys.exit(f"async client failed: {out.stderr}")


def finished_jobs(nodes: list["Node"], outcome: str | None = None) -> int:
    """Jobs whose outcome the nodes stored (of one outcome, if given), from
    their /metrics counters."""
    total = 0
    for node in nodes:
        text = urllib.request.urlopen(node.base + "/metrics", timeout=10).read().decode()
        for line in text.splitlines():
            if line.startswith("wasmproc_jobs_finished_total{") and (
                    outcome is None or f'outcome="{outcome}"' in line):
                total += int(float(line.rsplit(" ", 1)[1]))
    return total


def saturate(nodes: list["Node"], args: argparse.Namespace, pg_pids_of) -> dict:
    """The wrk client: one wrk per node (the concurrency split between them)
    submits async hello-world jobs for --seconds; the queue grows, so the
    workers never wait for a submission (with --sync: synchronous
    executions, each connection waiting for its job). Measured over the window from 1 s
    after the start to 1 s before the end: jobs finished (the nodes'
    `wasmproc_jobs_finished_total`), and the CPU of the nodes, of
    PostgreSQL and of wrk in that window."""
    per_node = max(1, args.concurrency // len(nodes))
    env = dict(os.environ, WRK_REPORT_LUA=str(BENCH / "wrk/report.lua"))
    procs = [subprocess.Popen(
        ["wrk", "-t1", f"-c{per_node}", f"-d{args.seconds}s", "--timeout", "10s",
         "-s", str(BENCH / ("wrk/post.lua" if args.sync else "wrk/post-async.lua")),
         f"{n.base}/processes/hello-world/execution"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for n in nodes]
    time.sleep(1)

    def snapshot() -> tuple[float, int, list[int], int, int]:
        return (time.monotonic(), finished_jobs(nodes), [n.ticks() for n in nodes],
                ticks(pg_pids_of()), ticks([p.pid for p in procs]))

    t0, done0, node0, pg0, wrk0 = snapshot()
    time.sleep(max(1, args.seconds - 2))
    t1, done1, node1, pg1, wrk1 = snapshot()
    reports = []
    for p in procs:
        out, err = p.communicate(timeout=args.seconds + 60)
        line = next((l for l in out.splitlines() if l.startswith("WRKJSON ")), None)
        if line is None:
            sys.exit(f"wrk gave no result: {out}\n{err}")
        reports.append(json.loads(line[8:]))
    done = max(1, done1 - done0)
    return {
        "completed_per_s": round((done1 - done0) / (t1 - t0), 1),
        "submissions_per_s": round(sum(r["requests"] / (r["duration_us"] / 1e6) for r in reports), 1),
        "submit_errors": sum(r["errors_status"] + r["errors_connect"] + r["errors_timeout"]
                             for r in reports),
        "window_s": round(t1 - t0, 2),
        "node_ms": sum(b - a for a, b in zip(node0, node1)) / TICK * 1000 / done,
        "pg_ms": (pg1 - pg0) / TICK * 1000 / done,
        "client_ms": (wrk1 - wrk0) / TICK * 1000 / done,
    }


def drain(nodes: list["Node"], timeout: float = 300) -> None:
    """Wait until every submitted job has finished (bounded)."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        done = finished_jobs(nodes)
        if done == last:
            return
        last = done
        time.sleep(2)
    log("the queue did not drain in time")


def measure(backend: str, nodes: int, args: argparse.Namespace, admin_url: str | None) -> dict:
    with scratch(backend, admin_url, "cluster-bench") as (workdir, env):
        return measure_in(workdir, env, backend, nodes, args)


def measure_in(workdir: Path, env: dict, backend: str, nodes: int,
               args: argparse.Namespace) -> dict:
    started = [Node(f"node{i + 1}", workdir, env, args.workers) for i in range(nodes)]
    try:
        # Warm-up: compile nothing later, connections open.
        run_client([n.base for n in started], 200, args.concurrency)
        if args.client == "wrk":
            pg_pids_of = (lambda: process_tree(postmaster_pid())) if backend == "postgres" \
                else (lambda: [])
            sat = saturate(started, args, pg_pids_of)
            drain(started)
            sat["unsuccessful"] = finished_jobs(started) - finished_jobs(started, "success")
            row = {
                "backend": backend, "nodes": nodes, "workers_per_node": args.workers,
                "client": "wrk", "mode": "sync" if args.sync else "async",
                "seconds": args.seconds, "concurrency": args.concurrency,
                "completed_per_s": sat["completed_per_s"],
                "submissions_per_s": sat["submissions_per_s"],
                "submit_errors": sat["submit_errors"], "unsuccessful": sat["unsuccessful"],
                "window_s": sat["window_s"],
                "node_cpu_ms_per_job": round(sat["node_ms"], 3),
                "postgres_cpu_ms_per_job": round(sat["pg_ms"], 3) if backend == "postgres" else None,
                "client_cpu_ms_per_job": round(sat["client_ms"], 3),
            }
            log(json.dumps(row))
            return row
        pg_pids = process_tree(postmaster_pid()) if backend == "postgres" else []
        node0 = [n.ticks() for n in started]
        pg0 = ticks(pg_pids)
        t0 = time.monotonic()
        client0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = run_client([n.base for n in started], args.jobs, args.concurrency)
        client1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.monotonic() - t0
        node1 = [n.ticks() for n in started]
        pg_pids = process_tree(postmaster_pid()) if backend == "postgres" else []
        pg1 = ticks(pg_pids)
        done = result["finished"] or 1
        node_ms = sum(b - a for a, b in zip(node0, node1)) / TICK * 1000 / done
        pg_ms = (pg1 - pg0) / TICK * 1000 / done if backend == "postgres" else None
        client_ms = ((client1.ru_utime + client1.ru_stime) - (client0.ru_utime + client0.ru_stime)) \
            * 1000 / done
        row = {
            "backend": backend, "nodes": nodes, "workers_per_node": args.workers,
            "jobs": args.jobs, "concurrency": args.concurrency,
            "completed_per_s": result["completed_per_s"],
            "submissions_per_s": result["submissions_per_s"],
            "statuses": result["statuses"], "submit_errors": result["submit_errors"],
            "node_cpu_ms_per_job": round(node_ms, 3),
            "postgres_cpu_ms_per_job": round(pg_ms, 3) if pg_ms is not None else None,
            "client_cpu_ms_per_job": round(client_ms, 3),
            "load1_after": float(Path("/proc/loadavg").read_text().split()[0]),
            "wall_s": round(wall, 2),
        }
        log(json.dumps(row))
        return row
    finally:
        for n in started:
            n.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2, help="jobs each node runs at once")
    ap.add_argument("--nodes", default="1,2,3")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--client", choices=["python", "wrk"], default="python",
                    help="python: async_client.py submits --jobs and polls each to its end; "
                         "wrk: wrk submits for --seconds (the queue grows) and the finished "
                         "jobs are counted from the nodes' metrics")
    ap.add_argument("--seconds", type=int, default=10, help="length of a wrk run")
    ap.add_argument("--sync", action="store_true",
                    help="with --client wrk: synchronous executions (each request waits for "
                         "its job) instead of async submissions")
    args = ap.parse_args()
    if not WASMPROC.exists():
        sys.exit("build it first: cargo build --release -p wasmproc")
    PG_ROOT.mkdir(parents=True, exist_ok=True)
    admin_url = pg()
    rows = []
    for rnd in range(args.rounds):
        rows.append({"round": rnd, **measure("sled", 1, args, None)})
        for n in [int(x) for x in args.nodes.split(",")]:
            rows.append({"round": rnd, **measure("postgres", n, args, admin_url)})
    write_report(args, rows, "cluster.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
from bench import cpu_ticks, free_port, machine_info, process_tree  # noqa: E402

WASMPROC = Path(os.environ.get("WASMPROC_BENCH_BINARY", ROOT / "target/release/wasmproc"))
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
        self.proc = subprocess.Popen(
            [str(WASMPROC), "serve", "--config", str(config), "--bind", f"127.0.0.1:{self.port}",
             "--data-dir", str(workdir / name), "--node-name", name],
            env=env, stdout=subprocess.DEVNULL, stderr=open(workdir / f"{name}.log", "w"),
            start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.base + "/processes/hello-world", timeout=2).read()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"node {name} did not start; see {workdir / (name + '.log')}")
                time.sleep(0.1)

    def ticks(self) -> int:
        return ticks(process_tree(self.proc.pid))

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)


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


def measure(backend: str, nodes: int, args: argparse.Namespace, admin_url: str | None) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="wasmproc-cluster-bench-"))
    env = dict(os.environ, RUST_LIB_BACKTRACE="0", RUST_LOG="warn")
    db_url = None
    if backend == "postgres":
        name = f"bench_{int(time.time() * 1000)}"
        psql(admin_url, f"CREATE DATABASE {name}")
        db_url = admin_url.rsplit("/", 1)[0] + "/" + name
        env["WASMPROC_DATABASE_URL"] = db_url
    started = [Node(f"node{i + 1}", workdir, env, args.workers) for i in range(nodes)]
    try:
        # Warm-up: compile nothing later, connections open.
        run_client([n.base for n in started], 200, args.concurrency)
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
        if db_url:
            psql(admin_url, f"DROP DATABASE IF EXISTS {db_url.rsplit('/', 1)[1]} WITH (FORCE)")
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2, help="jobs each node runs at once")
    ap.add_argument("--nodes", default="1,2,3")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
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
    out = {"machine": machine_info(), "args": vars(args) | {"out": str(args.out)}, "rows": rows}
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "cluster.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

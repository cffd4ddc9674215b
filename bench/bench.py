#!/usr/bin/env python3
"""wasmproc benchmark driver: starts each server on 127.0.0.1, drives it with
wrk (sync, status reads) or bench/async_client.py (async), reads its CPU time
and memory from /proc, stops it, and writes results.json + summary.md.

Sections (all run in one invocation, interleaved, so ratios come from one
run on one machine state):
  sync    hello-world sync execute at each concurrency against wasmproc, the
          ceiling (bench/ceiling) and pygeoapi (gunicorn, 2 workers, TinyDB)
  async   N jobs with Prefer: respond-async at concurrency 16, then poll to
          completion, against wasmproc and pygeoapi
  status  GET /jobs/{id} while every wasmproc worker runs a CPU-bound guest

Every server is started fresh (new data directory) for every measurement and
stopped after it; every wrk run has a fixed duration and every async run a
deadline. Only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# WASMPROC_BENCH_BINARY compares another build (e.g. an older commit) in the same run.
WASMPROC = Path(os.environ.get("WASMPROC_BENCH_BINARY", ROOT / "target/release/wasmproc"))
CEILING = ROOT / "target/release/wasmproc-bench-ceiling"
# The floor: bare axum + one bare-wasmtime hello-world job per request
# (bench/ceiling/src/floor.rs), on the guest bench/setup.sh builds.
FLOOR = ROOT / "target/release/wasmproc-bench-floor"
HELLO_WASM = ROOT / "target/guests/wasm32-wasip2/guest/hello_world.wasm"
HOSTILE = ROOT / "target/guests/wasm32-wasip2/guest/hostile.wasm"
VENV_BIN = BENCH / ".venv/bin"
WRK_POST = BENCH / "wrk/post.lua"
WRK_GET = BENCH / "wrk/get.lua"
WRK_REPORT = BENCH / "wrk/report.lua"
PYGEOAPI_CONFIG = BENCH / "pygeoapi/pygeoapi-config.yml"
HELLO_BODY = b'{"inputs":{"name":"Joe"}}'
CLK_TCK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1
SERVERS = ("wasmproc", "floor", "ceiling", "pygeoapi")

_started: list["Server"] = []


def log(msg: str) -> None:
    print(f"[bench {dt.datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- /proc ----


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def process_tree(pid: int) -> list[int]:
    kids = _children_map()
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(kids.get(p, []))
    return tree


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process (all its threads), in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


# -------------------------------------------------------------- servers ----


class Server:
    """A server started by us in its own process group; stopped through
    that group's id (gunicorn's workers with it)."""

    def __init__(self, kind: str, workdir: Path, *, processes_dir: Path | None = None,
                 config: str = "") -> None:
        self.kind = kind
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.dir = workdir / f"{kind}-{self.port}"
        self.dir.mkdir(parents=True)
        env = dict(os.environ)
        if kind == "wasmproc":
            cfg = self.dir / "wasmproc.toml"
            cfg.write_text(config)
            cmd = [str(WASMPROC), "serve", "--bind", f"127.0.0.1:{self.port}",
                   "--data-dir", str(self.dir / "data"), "--config", str(cfg)]
            if processes_dir:
                cmd += ["--processes", str(processes_dir)]
            env.setdefault("RUST_LOG", "warn")
            self.ready_path, self.ready_method = "/", "GET"
        elif kind == "ceiling":
            cmd = [str(CEILING), f"127.0.0.1:{self.port}"]
            self.ready_path, self.ready_method = "/processes/hello-world/execution", "POST"
        elif kind == "floor":
            # With wasmproc's pool reset (--tuned): the untuned pool pays a
            # TLB shootdown per job, and would flatter the ratio.
            cmd = [str(FLOOR), f"127.0.0.1:{self.port}", str(HELLO_WASM), "--tuned"]
            self.ready_path, self.ready_method = "/processes/hello-world/execution", "POST"
        elif kind == "pygeoapi":
            (self.dir / "outputs").mkdir()
            cfg = self.dir / "pygeoapi-config.yml"
            cfg.write_text(PYGEOAPI_CONFIG.read_text()
                           .replace("@PORT@", str(self.port)).replace("@DIR@", str(self.dir)))
            # The statistics processor plugin (pygeoapi-config.yml) lives
            # beside the configuration.
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(PYGEOAPI_CONFIG.parent), env.get("PYTHONPATH")) if p)
            openapi = self.dir / "openapi.yml"
            subprocess.run([str(VENV_BIN / "pygeoapi"), "openapi", "generate", str(cfg),
                            "--output-file", str(openapi)], check=True, timeout=120,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            env.update(PYGEOAPI_CONFIG=str(cfg), PYGEOAPI_OPENAPI=str(openapi))
            cmd = [str(VENV_BIN / "gunicorn"), "--workers", "2", "--bind",
                   f"127.0.0.1:{self.port}", "--log-level", "warning",
                   "pygeoapi.flask_app:APP"]
            self.ready_path, self.ready_method = "/processes/hello-world", "GET"
        else:
            raise ValueError(kind)
        self.log = open(self.dir / "server.log", "wb")
        self.proc = subprocess.Popen(cmd, cwd=self.dir, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        _started.append(self)
        self._wait_ready()
        if kind == "pygeoapi":
            # Both workers booted (each imports the app on its own).
            deadline = time.monotonic() + 60
            while len(self.pids()) < 3 and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1.0)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited at start-up; see {self.dir}/server.log")
            try:
                req = urllib.request.Request(self.base + self.ready_path, method=self.ready_method,
                                             data=HELLO_BODY if self.ready_method == "POST" else None,
                                             headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=2) as resp:
                    resp.read()
                return
            except urllib.error.HTTPError:
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        raise RuntimeError(f"{self.kind} not ready within 60 s")

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid)

    def cpu_ticks(self) -> int:
        total = 0
        for pid in self.pids():
            try:
                total += cpu_ticks(pid)
            except OSError:
                pass
        return total

    def wchar(self) -> int:
        """Bytes the server's processes have written (files, sockets, pipes)."""
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/io").read_text().splitlines():
                    if line.startswith("wchar:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total

    def rss_kb(self, key: str = "VmRSS") -> int:
        total = 0
        for pid in self.pids():
            try:
                total += status_kb(pid, key)
            except OSError:
                pass
        return total

    def reset_peak(self) -> None:
        """Reset VmHWM (peak RSS) of every process of the server."""
        for pid in self.pids():
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            except OSError:
                pass

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()
        if self in _started:
            _started.remove(self)
        # A run starts dozens of servers, each writing hundreds of MB of
        # jobs; kept until the run ended, they are the likely cause of one
        # round where every request of a server failed fast (as sled does
        # once its disk is full) on a machine with 9 GB free. The log stays.
        for name in ("data", "jobs.db", "outputs"):
            path = self.dir / name
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_all() -> None:
    for server in list(_started):
        try:
            server.stop()
        except Exception as e:  # noqa: BLE001 - best effort on the way out
            log(f"stopping {server.kind}: {e}")


def http(method: str, url: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def wasmproc_config(**execution: object) -> str:
    lines = ["[execution]", f"max_concurrent_jobs = {CORES}", 'shutdown_grace = "1s"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in execution.items()]
    # WASMPROC_BENCH_EXECUTION adds `key = value` lines to [execution], e.g.
    # "keep_sync_jobs = false" to measure sync jobs that are not stored.
    lines += [line for line in os.environ.get("WASMPROC_BENCH_EXECUTION", "").split(";") if line.strip()]
    # The CPU-bound guest of the status section: 1e12 fuel (the default
    # server-wide cap, ~70 s of a tight loop) and a 30 s wall clock.
    lines += ["", "[processes.hostile.limits]", "fuel = 1000000000000", 'timeout = "30s"']
    return "\n".join(lines) + "\n"


def start(kind: str, workdir: Path, **kw: object) -> Server:
    if kind == "wasmproc" and "config" not in kw:
        kw["config"] = wasmproc_config()
    return Server(kind, workdir, **kw)  # type: ignore[arg-type]


def serve_wasmproc(port: int, data_dir: Path, log_path: Path, *args: str,
                   env: dict[str, str] | None = None) -> subprocess.Popen:
    """`wasmproc serve` on 127.0.0.1:PORT with its data in DATA_DIR and ARGS
    after those, stderr to LOG_PATH, in a process group of its own (end it
    with stop_group); ENV defaults to ours with RUST_LOG=warn. For the
    scripts beside this one, which run the server their own way."""
    return subprocess.Popen(
        [str(WASMPROC), "serve", "--bind", f"127.0.0.1:{port}", "--data-dir", str(data_dir),
         *args],
        env=env if env is not None else dict(os.environ, RUST_LOG="warn"),
        stdout=subprocess.DEVNULL, stderr=open(log_path, "w"), start_new_session=True)


def wait_up(proc: subprocess.Popen, url: str, timeout: float, log_path: Path,
            what: str = "server") -> None:
    """Wait until a GET of URL answers; exit naming LOG_PATH when PROC ends
    first or TIMEOUT seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"{what} did not start; see {log_path}")
            time.sleep(0.1)


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to PROC's process group; SIGKILL when it is not gone in 20 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


# ------------------------------------------------------------------ wrk ----


def wrk(url: str, script: Path, concurrency: int, duration: float) -> dict:
    threads = min(concurrency, 2)
    duration = max(1, round(duration))  # wrk takes whole seconds
    cmd = ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{duration}s", "--timeout", "10s",
           "-s", str(script), url]
    env = dict(os.environ, WRK_REPORT_LUA=str(WRK_REPORT))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration + 60)
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            r = json.loads(line[8:])
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
            r["errors"] = sum(r[k] for k in r if k.startswith("errors_"))
            return r
    raise RuntimeError(f"wrk gave no result: {out.stdout}\n{out.stderr}")


def check_hello(server: Server) -> None:
    status, _, body = http("POST", server.base + "/processes/hello-world/execution", HELLO_BODY,
                           {"Content-Type": "application/json"})
    if status != 200 or b"Hello Joe!" not in body:
        raise RuntimeError(f"{server.kind}: hello-world answered {status} {body[:200]!r}")


# ------------------------------------------------------------- sections ----


def measure_sync(kind: str, concurrency: int, args: argparse.Namespace, workdir: Path) -> dict:
    url_path = "/processes/hello-world/execution"
    with start(kind, workdir) as srv:
        time.sleep(0.5)
        idle_rss = srv.rss_kb()
        check_hello(srv)
        warmed = 0
        if args.warmup > 0:
            warmed = wrk(srv.base + url_path, WRK_POST, concurrency, args.warmup)["requests"]
        srv.reset_peak()
        load = loadavg()
        cpu0, io0, t0 = srv.cpu_ticks(), srv.wchar(), time.monotonic()
        r = wrk(srv.base + url_path, WRK_POST, concurrency, args.duration)
        cpu1, io1, t1 = srv.cpu_ticks(), srv.wchar(), time.monotonic()
        peak = srv.rss_kb("VmHWM")
    cpu_s = (cpu1 - cpu0) / CLK_TCK
    return {
        "section": "sync", "server": kind, "concurrency": concurrency, "load1": load,
        "requests": r["requests"], "rps": r["rps"], "errors": r["errors"],
        "p50_ms": r["p50_us"] / 1000, "p99_ms": r["p99_us"] / 1000, "max_ms": r["max_us"] / 1000,
        "cpu_ms_per_req": 1000 * cpu_s / max(r["requests"], 1),
        "written_kib_per_req": (io1 - io0) / 1024 / max(r["requests"], 1),
        "server_cores_busy": cpu_s / (t1 - t0),
        "idle_rss_mib": idle_rss / 1024, "peak_rss_mib": peak / 1024,
        # Every request, sync too, is a stored job on both servers: how
        # many the server held when the measurement ended (pygeoapi slows
        # down as its job file grows, so this says how fresh it was).
        "jobs_held_at_end": (1 + warmed + r["requests"]
                             if kind in ("wasmproc", "pygeoapi") else None),
    }


def measure_async(kind: str, concurrency: int, args: argparse.Namespace, workdir: Path) -> dict:
    jobs = args.jobs if kind == "wasmproc" else args.pygeoapi_jobs
    kw = {"config": wasmproc_config(max_queued_jobs=jobs + 1000)} if kind == "wasmproc" else {}
    with start(kind, workdir, **kw) as srv:
        time.sleep(0.5)
        idle_rss = srv.rss_kb()
        check_hello(srv)
        srv.reset_peak()
        load = loadavg()
        cpu0, io0 = srv.cpu_ticks(), srv.wchar()
        cmd = [str(VENV_BIN / "python"), str(BENCH / "async_client.py"), "--url", srv.base,
               "--jobs", str(jobs), "--concurrency", str(concurrency),
               "--deadline", str(args.async_deadline)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.async_deadline + 120)
        cpu1, io1 = srv.cpu_ticks(), srv.wchar()
        peak = srv.rss_kb("VmHWM")
    line = next((l for l in out.stdout.splitlines() if l.startswith("ASYNCJSON ")), None)
    if line is None:
        raise RuntimeError(f"async client failed: {out.stdout}\n{out.stderr}")
    r = json.loads(line[10:])
    cpu_s = (cpu1 - cpu0) / CLK_TCK
    return {
        "section": "async", "server": kind, "concurrency": concurrency, "load1": load,
        **r, "cpu_ms_per_job": 1000 * cpu_s / max(r["finished"], 1),
        "written_kib_per_job": (io1 - io0) / 1024 / max(r["finished"], 1),
        "idle_rss_mib": idle_rss / 1024, "peak_rss_mib": peak / 1024,
    }


def wait_status(base: str, location: str, want: set[str], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        _, _, body = http("GET", location, headers={"Accept": "application/json"})
        doc = json.loads(body)
        if doc.get("status") in want or time.monotonic() > deadline:
            return doc
        time.sleep(0.05)


def measure_status(args: argparse.Namespace, workdir: Path) -> list[dict]:
    procs = workdir / "processes"
    procs.mkdir(exist_ok=True)
    shutil.copy(HOSTILE, procs / "hostile.wasm")
    results = []
    with start("wasmproc", workdir, processes_dir=procs) as srv:
        time.sleep(0.5)
        idle_rss = srv.rss_kb()
        async_headers = {"Content-Type": "application/json", "Prefer": "respond-async"}
        status, headers, _ = http("POST", srv.base + "/processes/hello-world/execution",
                                  HELLO_BODY, async_headers)
        done_job = headers["location"]
        wait_status(srv.base, done_job, {"successful"}, 10)
        # Baseline: the same reads on an idle server.
        wrk(done_job, WRK_GET, args.status_concurrency, args.warmup or 1)
        load = loadavg()
        cpu0, t0 = srv.cpu_ticks(), time.monotonic()
        r = wrk(done_job, WRK_GET, args.status_concurrency, args.status_duration)
        cpu_s = (srv.cpu_ticks() - cpu0) / CLK_TCK
        results.append({
            "section": "status", "server": "wasmproc", "load": "idle",
            "concurrency": args.status_concurrency, "load1": load, "rps": r["rps"],
            "requests": r["requests"], "errors": r["errors"], "p50_ms": r["p50_us"] / 1000,
            "p99_ms": r["p99_us"] / 1000, "max_ms": r["max_us"] / 1000,
            "server_cores_busy": cpu_s / (time.monotonic() - t0), "idle_rss_mib": idle_rss / 1024,
        })
        # Every worker (max_concurrent_jobs = cores) on an infinite loop, two more queued.
        hostile = []
        for _ in range(CORES + 2):
            status, headers, body = http(
                "POST", srv.base + "/processes/hostile/execution",
                b'{"inputs":{"behaviour":"infinite-loop"}}', async_headers)
            if status != 201:
                raise RuntimeError(f"hostile job not accepted: {status} {body[:200]!r}")
            hostile.append(headers["location"])
        running = [wait_status(srv.base, loc, {"running"}, 10).get("status") for loc in hostile[:CORES]]
        if running != ["running"] * CORES:
            raise RuntimeError(f"hostile jobs not all running: {running}")
        time.sleep(0.5)
        srv.reset_peak()
        load = loadavg()
        cpu0, t0 = srv.cpu_ticks(), time.monotonic()
        r = wrk(hostile[0], WRK_GET, args.status_concurrency, args.status_duration)
        cpu_s = (srv.cpu_ticks() - cpu0) / CLK_TCK
        elapsed = time.monotonic() - t0
        still = [wait_status(srv.base, loc, set(), 0).get("status") for loc in hostile[:CORES]]
        results.append({
            "section": "status", "server": "wasmproc", "load": "cpu-bound",
            "concurrency": args.status_concurrency, "load1": load, "rps": r["rps"],
            "requests": r["requests"], "errors": r["errors"], "p50_ms": r["p50_us"] / 1000,
            "p99_ms": r["p99_us"] / 1000, "max_ms": r["max_us"] / 1000,
            "server_cores_busy": cpu_s / elapsed, "workers_still_running": still,
            "idle_rss_mib": idle_rss / 1024, "peak_rss_mib": srv.rss_kb("VmHWM") / 1024,
        })
        for loc in hostile:
            http("DELETE", loc)
    return results


# -------------------------------------------------------------- summary ----


def med(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v: float | None, digits: int = 1) -> str:
    if v is None:
        return "–"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def summarize(data: dict) -> str:
    recs = data["results"]
    rounds = sorted({r["round"] for r in recs})
    out = [f"# wasmproc benchmark summary ({data['started']})", ""]
    m = data["machine"]
    out += [f"Machine: {m['cpu']}, {m['cores']} cores, kernel {m['kernel']}; "
            f"wasmproc {m['git']}; {m['wrk']}. Rounds: {len(rounds)}; every figure is the "
            f"median over rounds (with 2 rounds: their mean); ratios are computed within "
            f"a round, then the median is taken. load1 = 1-minute load average when the "
            f"measurement started (the machine has {m['cores']} cores).", ""]

    def pick(**kw: object) -> list[dict]:
        return [r for r in recs if all(r.get(k) == v for k, v in kw.items())]

    sync = pick(section="sync")
    concs = sorted({r["concurrency"] for r in sync})
    if sync:
        out += ["## Sync execute (hello-world)", "",
                "| server | conc. | req/s | p50 ms | p99 ms | CPU ms/req | written KiB/req | "
                "peak RSS MiB | idle RSS MiB | errors | jobs held at the end | load1 per round |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for kind in SERVERS:
            for c in concs:
                rs = pick(section="sync", server=kind, concurrency=c)
                if not rs:
                    continue
                out.append(
                    f"| {kind} | {c} | {fmt(med([r['rps'] for r in rs]))} | "
                    f"{fmt(med([r['p50_ms'] for r in rs]), 2)} | {fmt(med([r['p99_ms'] for r in rs]), 2)} | "
                    f"{fmt(med([r['cpu_ms_per_req'] for r in rs]), 3)} | "
                    f"{fmt(med([r.get('written_kib_per_req') for r in rs]))} | "
                    f"{fmt(med([r['peak_rss_mib'] for r in rs]))} | {fmt(med([r['idle_rss_mib'] for r in rs]))} | "
                    f"{sum(r['errors'] for r in rs)} | "
                    f"{fmt(med([r.get('jobs_held_at_end') for r in rs]))} | "
                    f"{', '.join(fmt(r['load1'], 2) for r in rs)} |")
        out += ["", "| conc. | wasmproc / ceiling (req/s) | wasmproc / pygeoapi (req/s) | "
                "pygeoapi CPU per req / wasmproc's | wasmproc CPU per req / the floor's | "
                "per round (ceiling; pygeoapi; CPU; floor) |",
                "|---:|---:|---:|---:|---:|---|"]
        for c in concs:
            ceil, peer, cpu, flo, rows = [], [], [], [], []
            for rnd in rounds:
                w = pick(section="sync", server="wasmproc", concurrency=c, round=rnd)
                ce = pick(section="sync", server="ceiling", concurrency=c, round=rnd)
                pg = pick(section="sync", server="pygeoapi", concurrency=c, round=rnd)
                fl = pick(section="sync", server="floor", concurrency=c, round=rnd)
                a = w[0]["rps"] / ce[0]["rps"] if w and ce else None
                b = w[0]["rps"] / pg[0]["rps"] if w and pg else None
                d = pg[0]["cpu_ms_per_req"] / w[0]["cpu_ms_per_req"] if w and pg else None
                e = w[0]["cpu_ms_per_req"] / fl[0]["cpu_ms_per_req"] if w and fl else None
                ceil.append(a), peer.append(b), cpu.append(d), flo.append(e)
                rows.append(f"{fmt(a and 100 * a)}%; {fmt(b)}×; {fmt(d)}×; {fmt(e)}×")
            out.append(f"| {c} | {fmt(med(ceil) and 100 * med(ceil))}% | {fmt(med(peer))}× | "
                       f"{fmt(med(cpu))}× | {fmt(med(flo))}× | {' / '.join(rows)} |")
        out.append("")

    asy = pick(section="async")
    if asy:
        out += ["## Async: submit N jobs, then poll to completion", "",
                "| server | conc. | jobs accepted | submissions/s | completed jobs/s | drain s | "
                "completed/s (as polled) | CPU ms/job | written KiB/job | peak RSS MiB | errors | load1 per round |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        aconcs = sorted({r["concurrency"] for r in asy}, reverse=True)
        for c in aconcs:
            for kind in SERVERS:
                rs = pick(section="async", server=kind, concurrency=c)
                if not rs:
                    continue
                errs = sum(sum(r["submit_errors"].values()) + r["unfinished_at_deadline"]
                           + r["statuses"].get("failed", 0) for r in rs)
                stalls = sum(1 for r in rs if r["stalled"])
                accepted = "/".join(f"{r['accepted']}" for r in rs) + f" of {rs[0]['jobs']}"
                out.append(
                    f"| {kind} | {c} | {accepted} | {fmt(med([r['submissions_per_s'] for r in rs]))} | "
                    f"{fmt(med([r['completed_per_s'] for r in rs]))} | {fmt(med([r['drain_s'] for r in rs]), 2)} | "
                    f"{fmt(med([r['completed_per_s_observed'] for r in rs]))} | "
                    f"{fmt(med([r['cpu_ms_per_job'] for r in rs]), 3)} | "
                    f"{fmt(med([r.get('written_kib_per_job') for r in rs]))} | {fmt(med([r['peak_rss_mib'] for r in rs]))} | "
                    f"{errs}{f' (stalled in {stalls} of {len(rs)} rounds)' if stalls else ''} | "
                    f"{', '.join(fmt(r['load1'], 2) for r in rs)} |")
        out.append("")
        for c in aconcs:
            ratios = []
            for rnd in rounds:
                w = pick(section="async", server="wasmproc", round=rnd, concurrency=c)
                pg = pick(section="async", server="pygeoapi", round=rnd, concurrency=c)
                if w and pg and w[0]["completed_per_s"] and pg[0]["completed_per_s"]:
                    ratios.append(w[0]["completed_per_s"] / pg[0]["completed_per_s"])
            out.append(f"wasmproc / pygeoapi completed jobs/s at concurrency {c}: **{fmt(med(ratios))}×** "
                       f"(per round: {', '.join(fmt(x) for x in ratios) or 'none'})  ")
        out.append("")

    st = pick(section="status")
    if st:
        out += ["## Status reads (`GET /jobs/{id}`, wrk) on wasmproc", "",
                "| while | conc. | req/s | p50 ms | p99 ms | max ms | server cores busy | errors | load1 per round |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for load in ("idle", "cpu-bound"):
            rs = pick(section="status", load=load)
            if rs:
                out.append(
                    f"| {'idle server' if load == 'idle' else 'every worker runs an infinite loop'} | "
                    f"{rs[0]['concurrency']} | {fmt(med([r['rps'] for r in rs]))} | "
                    f"{fmt(med([r['p50_ms'] for r in rs]), 2)} | {fmt(med([r['p99_ms'] for r in rs]), 2)} | "
                    f"{fmt(med([r['max_ms'] for r in rs]), 2)} | {fmt(med([r['server_cores_busy'] for r in rs]), 2)} | "
                    f"{sum(r['errors'] for r in rs)} | {', '.join(fmt(r['load1'], 2) for r in rs)} |")
        out.append("")

    # Targets of issue 6.
    def ratio_med(fn) -> float | None:  # type: ignore[no-untyped-def]
        vals = []
        for rnd in rounds:
            try:
                vals.append(fn(rnd))
            except (IndexError, ZeroDivisionError, TypeError):
                pass
        return med(vals)

    def one(rnd: int, **kw: object) -> dict:
        return pick(round=rnd, **kw)[0]

    t_ceil = ratio_med(lambda r: one(r, section="sync", server="wasmproc", concurrency=16)["rps"]
                       / one(r, section="sync", server="ceiling", concurrency=16)["rps"])
    t_peer = ratio_med(lambda r: one(r, section="sync", server="wasmproc", concurrency=16)["rps"]
                       / one(r, section="sync", server="pygeoapi", concurrency=16)["rps"])
    t_cpu = ratio_med(lambda r: one(r, section="sync", server="pygeoapi", concurrency=16)["cpu_ms_per_req"]
                      / one(r, section="sync", server="wasmproc", concurrency=16)["cpu_ms_per_req"])
    t_floor = ratio_med(lambda r: one(r, section="sync", server="wasmproc", concurrency=16)["cpu_ms_per_req"]
                        / one(r, section="sync", server="floor", concurrency=16)["cpu_ms_per_req"])
    t_async = ratio_med(lambda r: one(r, section="async", server="wasmproc", concurrency=16)["completed_per_s"]
                        / one(r, section="async", server="pygeoapi", concurrency=16)["completed_per_s"])
    async_stalled = any(r["stalled"] for r in pick(section="async", server="wasmproc", concurrency=16))
    t_status = med([r["p99_ms"] for r in pick(section="status", load="cpu-bound")])

    def verdict(ok: bool | None) -> str:
        return "–" if ok is None else ("**holds**" if ok else "**does not hold**")

    out += ["## Targets (issue 6)", "", "| target | measured | |", "|---|---:|---|",
            f"| sync c=16 ≥ 50% of the ceiling's req/s | {fmt(t_ceil and 100 * t_ceil)}% | "
            f"{verdict(None if t_ceil is None else t_ceil >= 0.5)} |",
            f"| sync c=16 ≥ 100× pygeoapi's req/s | {fmt(t_peer)}× | "
            f"{verdict(None if t_peer is None else t_peer >= 100)} |",
            f"| server CPU per sync request ≤ 1/100 of pygeoapi's (c=16) | 1/{fmt(t_cpu)} | "
            f"{verdict(None if t_cpu is None else t_cpu >= 100)} |",
            f"| async completed jobs/s ≥ 100× pygeoapi's (c=16) | {fmt(t_async)}× | "
            + ("**does not hold**: wasmproc stalled (see the async table) |" if async_stalled else
               f"{verdict(None if t_async is None else t_async >= 100)} |"),
            f"| status-read p99 under CPU load ≤ 10 ms | {fmt(t_status, 2)} ms | "
            f"{verdict(None if t_status is None else t_status <= 10)} |",
            f"| server CPU per sync request ≤ 2× the floor's (c=16; issue 16) | {fmt(t_floor)}× | "
            f"{verdict(None if t_floor is None else t_floor <= 2)} |", ""]
    return "\n".join(out)


# ----------------------------------------------------------------- main ----


def machine_info() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    git = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    return {"cpu": cpu, "cores": CORES, "kernel": platform.release(), "git": git,
            "wrk": (wrk_version.stdout + wrk_version.stderr).splitlines()[0].split(" [")[0],
            "python": platform.python_version()}


def metric_sum(base: str, name: str) -> float:
    """The sum over label sets of a metric of a wasmproc server's /metrics."""
    text = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + " ") or line.startswith(name + "{"))


def write_report(args: argparse.Namespace, rows: list[dict], name: str) -> None:
    """Print the rows with the machine and the arguments as JSON, and write
    them to `args.out/name` when `--out` was given."""
    out = {"machine": machine_info(), "args": vars(args) | {"out": str(args.out)}, "rows": rows}
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / name).write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sections", nargs="*", default=["all"],
                    help="all (default), sync, async, status; or 'summarize RESULTS.json'")
    ap.add_argument("--rounds", type=int, default=1, help="repeat everything (default 1)")
    ap.add_argument("--duration", type=int, default=10, help="seconds per sync wrk run")
    ap.add_argument("--warmup", type=int, default=1, help="seconds of warm-up load before each run (0: none)")
    ap.add_argument("--concurrency", default="1,16,64", help="sync concurrencies")
    ap.add_argument("--servers", default=",".join(SERVERS), help="subset of " + ",".join(SERVERS))
    ap.add_argument("--jobs", type=int, default=2000, help="async jobs submitted to wasmproc")
    ap.add_argument("--pygeoapi-jobs", type=int, default=500,
                    help="async jobs submitted to pygeoapi (default 500: TinyDB rewrites its whole "
                    "file per update, so fewer jobs favour pygeoapi; 2000 take minutes)")
    ap.add_argument("--async-concurrency", default="16,1",
                    help="async client concurrencies (16 is the issue's; 1 shows the rate "
                    "without concurrent submissions)")
    ap.add_argument("--async-deadline", type=float, default=300)
    ap.add_argument("--status-concurrency", type=int, default=16)
    ap.add_argument("--status-duration", type=int, default=10, help="at most 20 (guests stop at 30 s)")
    ap.add_argument("--out", type=Path, help="results directory (default bench/results/<time>)")
    ap.add_argument("--tmp-base", type=Path, default=None,
                    help="where the servers' data directories go (default: the system's temp "
                    "directory; e.g. /dev/shm to take the disk out of the picture)")
    args = ap.parse_args()

    if args.sections[:1] == ["summarize"]:
        for path in args.sections[1:]:
            print(summarize(json.loads(Path(path).read_text())))
        return 0
    sections = {"sync", "async", "status"} if "all" in args.sections else set(args.sections)
    unknown = sections - {"sync", "async", "status"}
    if unknown:
        ap.error(f"unknown sections {sorted(unknown)}")
    args.status_duration = min(args.status_duration, 20)
    servers = [s for s in args.servers.split(",") if s]
    concs = [int(c) for c in args.concurrency.split(",")]
    for path in (WASMPROC, CEILING, FLOOR, HELLO_WASM, HOSTILE, VENV_BIN / "gunicorn"):
        if not path.exists():
            sys.exit(f"missing {path}: run bench/setup.sh first")
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: run bench/setup.sh first")

    started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    out_dir = args.out or BENCH / "results" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"started": started, "machine": {**machine_info(), "data_dirs_in": str(args.tmp_base or tempfile.gettempdir())}, "args": {k: str(v) for k, v in vars(args).items()},
            "results": []}

    def save() -> None:
        (out_dir / "results.json").write_text(json.dumps(data, indent=1))
        (out_dir / "summary.md").write_text(summarize(data))

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        with tempfile.TemporaryDirectory(prefix="wasmproc-bench-", dir=args.tmp_base) as tmp:
            workdir = Path(tmp)
            for rnd in range(1, args.rounds + 1):
                log(f"round {rnd}/{args.rounds}, load average {loadavg():.2f}")
                if "sync" in sections:
                    for c in concs:
                        for kind in servers:
                            r = measure_sync(kind, c, args, workdir)
                            r["round"] = rnd
                            data["results"].append(r)
                            log(f"sync {kind} c={c}: {r['rps']:.0f} req/s p50 {r['p50_ms']:.2f} ms "
                                f"p99 {r['p99_ms']:.2f} ms cpu {r['cpu_ms_per_req']:.3f} ms/req "
                                f"errors {r['errors']} (load {r['load1']:.2f})")
                            save()
                if "async" in sections:
                    for c in [int(x) for x in args.async_concurrency.split(",")]:
                        for kind in [s for s in servers if s not in ("ceiling", "floor")]:
                            r = measure_async(kind, c, args, workdir)
                            r["round"] = rnd
                            data["results"].append(r)
                            log(f"async {kind} c={c}: {r['accepted']}/{r['jobs']} accepted, "
                                f"{r['submissions_per_s']} submitted/s, {r['completed_per_s']} completed/s, "
                                f"drain {r['drain_s']} s{', STALLED' if r['stalled'] else ''} "
                                f"(load {r['load1']:.2f})")
                            save()
                if "status" in sections and "wasmproc" in servers:
                    for r in measure_status(args, workdir):
                        r["round"] = rnd
                        data["results"].append(r)
                        log(f"status ({r['load']}): p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms "
                            f"{r['rps']:.0f} req/s, server cores busy {r['server_cores_busy']:.2f}")
                    save()
    finally:
        stop_all()
    save()
    print(summarize(data))
    log(f"results in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

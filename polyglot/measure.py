#!/usr/bin/env python3
"""Measure the example components for the README's "Languages" table.

    cargo build --release -p wasmproc
    polyglot/build-all.sh
    polyglot/measure.py [--wasmproc target/release/wasmproc] [--runs 5]

For each component: its size, the wall and CPU time of a cold
`wasmproc describe FILE` (compiling the component dominates it; the server
does this once per module and caches the artifact; compilation runs on all
cores, so CPU time can exceed wall time), and the median
`duration` and the `fuel` of `wasmproc run FILE --inputs ...` (a fresh
sandbox: instantiate + execute, as for every job). Prints a Markdown table.
"""

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

HELLO = '{"name": "Joe", "message": "Welcome"}'
EXAMPLES = [
    # (language, toolchain, component, inputs)
    ("Rust (reference)", "cargo, wit-bindgen 0.63", "target/guests/wasm32-wasip2/guest/hello_world.wasm", HELLO),
    ("Python", "componentize-py 0.25.1", "hello-world-py.wasm", HELLO),
    ("Python", "componentize-py 0.25.1", "statistics-py.wasm", '{"values": [2, 4, 4, 4, 5, 5, 7, 9]}'),
    ("JavaScript", "componentize-qjs 0.4.5 (QuickJS)", "hello-world-js.wasm", HELLO),
    ("JavaScript", "componentize-qjs 0.4.5 (QuickJS)", "geojson-summary-js.wasm",
     '{"geojson": {"type": "Polygon", "coordinates": [[[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]]}}'),
    ("C", "clang 14 + wasi-libc, wit-bindgen-cli 0.63, wasm-tools 1.263", "hello-world-c.wasm", HELLO),
    ("C", "clang 14 + wasi-libc, wit-bindgen-cli 0.63, wasm-tools 1.263", "raster-stats-c.wasm",
     '{"raster": "AAECAwQFBgc=", "width": 4, "height": 2}'),
]

UNITS = {"ns": 1e-3, "µs": 1.0, "us": 1.0, "ms": 1e3, "s": 1e6}


def micros(text):
    match = re.fullmatch(r"([0-9.]+)(ns|µs|us|ms|s)", text)
    if not match:
        raise ValueError(f"cannot read duration {text!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


def human_bytes(n):
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} KB"


def human_time(us):
    if us >= 1e6:
        return f"{us / 1e6:.1f} s"
    if us >= 1e3:
        return f"{us / 1e3:.1f} ms"
    return f"{us:.0f} µs"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--wasmproc", default=os.path.join(ROOT, "target/release/wasmproc"))
    parser.add_argument("--dir", default=os.environ.get("WASMPROC_POLYGLOT_DIR", os.path.join(HERE, "out")))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    print("| language | example | toolchain | size | first compile | per call | fuel per call |")
    print("|---|---|---|---|---|---|---|")
    for language, toolchain, name, inputs in EXAMPLES:
        path = name if "/" in name else os.path.join(args.dir, name)
        path = os.path.join(ROOT, path) if not os.path.isabs(path) else path
        if not os.path.exists(path):
            print(f"missing {path}: run polyglot/build-all.sh", file=sys.stderr)
            continue
        compiles, cpu = [], []
        for _ in range(3):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run([args.wasmproc, "describe", path], check=True, capture_output=True)
            compiles.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        durations, fuel = [], None
        for _ in range(args.runs):
            run = subprocess.run([args.wasmproc, "run", path, "--inputs", inputs],
                                 capture_output=True, text=True)
            stats = dict(re.findall(r"(\w+)=(\S+)", run.stderr))
            if stats.get("outcome") != "success":
                raise SystemExit(f"{name}: {run.stderr}")
            durations.append(micros(stats["duration"]))
            fuel = int(stats["fuel"])
        example = os.path.basename(path).removesuffix(".wasm")
        print(f"| {language} | {example} | {toolchain} | {human_bytes(os.path.getsize(path))} "
              f"| {statistics.median(compiles):.1f} s ({statistics.median(cpu):.1f} s CPU) "
              f"| {human_time(statistics.median(durations))} "
              f"| {fuel:,} |")


if __name__ == "__main__":
    main()

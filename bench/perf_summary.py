#!/usr/bin/env python3
"""Summarise `perf script -F comm,tid,ip,sym,dso` output (call graphs) into
the tables of BENCHMARKS.md's profile section:

- CPU samples by thread group (tokio-rt-worker = HTTP, wasmproc-job = the
  executor, sled-io-N = sled's I/O pool, ...);
- the top self (leaf) symbols;
- inclusive shares of named cost centres (a sample counts for every centre
  whose frames appear in its stack, so these overlap);
- for each thread group, the innermost `wasmproc::` function on the stack
  (which of our functions the time is spent under).

Usage: perf script -i perf.data -F comm,tid,ip,sym,dso | perf_summary.py
"""

from __future__ import annotations

import collections
import re
import sys

CENTRES = [
    ("sled (any frame)", r"\bsled::"),
    ("sled transactions (insert/update job)", r"sled::transaction|sled::tree::Tree::transaction|Transactional"),
    ("sled log writes (pwrite/fsync by sled)", r"sled::pagecache::iobuf::.*(write_to_log|flush|make_stable|maybe_seal)"),
    ("wasmtime instantiate", r"wasmtime::.*(instantiate|InstancePre|new_instance|allocate_module|allocate_memor)"),
    ("wasmtime store/instance drop", r"drop_in_place<wasmtime::runtime::store|OwnedInstance<T> as core::ops::drop::Drop"),
    ("wasmtime pooling memory reset (decommit)", r"decommit|reset_with_pagemap|Mmap.*(reset|make_accessible)|MemoryImageSlot"),
    ("guest code (JIT)", r"perf-\d+\.map|\[JIT\]"),
    ("jsonschema validation", r"jsonschema::"),
    ("serde_json", r"serde_json::"),
    ("hyper/axum HTTP", r"\bhyper::|axum::"),
    ("kernel: page faults", r"exc_page_fault"),
    ("kernel: TLB shootdown IPIs", r"flush_tlb_mm_range|smp_call_function_many_cond"),
    ("kernel: madvise", r"__x64_sys_madvise|do_madvise"),
    ("kernel: mmap/munmap/mprotect", r"__x64_sys_(mmap|munmap|mprotect)"),
    ("kernel: pwrite/write to files", r"__x64_sys_pwrite64|ext4_file_write_iter"),
    ("kernel: fsync/fdatasync", r"__x64_sys_(fsync|fdatasync)|sync_file_range"),
    ("kernel: futex (thread wake/wait)", r"__x64_sys_futex"),
    ("kernel: TCP send/recv", r"tcp_sendmsg|tcp_recvmsg"),
    ("kernel: epoll", r"__x64_sys_epoll_wait|do_epoll_wait"),
    ("kernel: scheduler (context switch)", r"finish_task_switch|__schedule"),
    ("malloc/free", r"^(malloc|free|_int_malloc|_int_free|unlink_chunk|cfree|realloc|_int_realloc|malloc_consolidate)"),
]


def parse(stream):
    comm = tid = None
    frames: list[tuple[str, str]] = []
    for raw in stream:
        line = raw.rstrip("\n")
        if not line.strip():
            if comm is not None:
                yield comm, frames
            comm, frames = None, []
            continue
        if not line.startswith(("\t", " " * 8)) or comm is None:
            parts = line.split()
            if parts and comm is None:
                comm = " ".join(parts[:-1]) if len(parts) > 1 and parts[-1].isdigit() else parts[0]
                frames = []
                continue
        body = line.strip()
        m = re.match(r"^[0-9a-f]+\s+(.*)\s+\(([^()]*)\)$", body)
        if m:
            frames.append((m.group(1), m.group(2)))
    if comm is not None:
        yield comm, frames


def group(comm: str) -> str:
    return re.sub(r"-\d+$", "-N", comm)


def main() -> None:
    samples = list(parse(sys.stdin))
    total = len(samples)
    if not total:
        sys.exit("no samples")
    by_group = collections.Counter(group(c) for c, _ in samples)
    leaf = collections.Counter()
    centres = collections.Counter()
    ours: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    regexes = [(name, re.compile(rx)) for name, rx in CENTRES]
    for comm, frames in samples:
        g = group(comm)
        if frames:
            sym, dso = frames[0]
            dso = dso.rsplit("/", 1)[-1]
            leaf[f"{sym[:90]}  [{dso}]"] += 1
        text = [f"{s} ({d})" for s, d in frames]
        for name, rx in regexes:
            if name == "malloc/free":
                if frames and rx.search(frames[0][0]):
                    centres[name] += 1
            elif any(rx.search(t) for t in text):
                centres[name] += 1
        inner = next((s for s, _ in frames if s.startswith("wasmproc::")), None)
        ours[g][re.sub(r"::\{\{closure\}\}", "", inner or "(no wasmproc:: frame)")[:100]] += 1

    pct = lambda n: f"{100 * n / total:5.1f}%"  # noqa: E731
    print(f"samples: {total}\n")
    print("## CPU by thread group\n")
    for g, n in by_group.most_common():
        print(f"{pct(n)}  {g}")
    print("\n## Top self symbols\n")
    for s, n in leaf.most_common(25):
        print(f"{pct(n)}  {s}")
    print("\n## Cost centres (inclusive, overlapping)\n")
    for name, _ in CENTRES:
        print(f"{pct(centres[name])}  {name}")
    print("\n## Innermost wasmproc:: function on the stack, per thread group\n")
    for g, n in by_group.most_common(4):
        print(f"### {g} ({pct(n)} of all samples)")
        for s, k in ours[g].most_common(12):
            print(f"{pct(k)}  {s}")
        print()


if __name__ == "__main__":
    main()

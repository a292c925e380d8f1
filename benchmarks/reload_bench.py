"""Load during hot reloads: requests, failures, p99 before / during / after each reload, and the
service's peak memory.

    .venv/bin/recsys generate --members 20000 --output /tmp/syn20k
    .venv/bin/recsys train --data /tmp/syn20k --output /tmp/model20k \\
        --set evaluation.max_members=2000 --set mlflow.log_model=false
    .venv/bin/python benchmarks/reload_bench.py --model /tmp/model20k/model

The model is re-saved into a work directory (``save_model``: the served path is a link to its
current version) and ``recsys serve`` follows it, polling every second. The next versions are
written beforehand (complete, in staging directories), so that a reload costs the service
alone: at each reload time one version is published by the one atomic link swap
(``recsys.publish_dir``), as ``save_model`` and ``recsys train`` do it.

Clients (threads, one keep-alive connection each, ``--think-ms`` pause between requests, so a
steady offered rate) ask ``GET /v1/members/{id}/introductions?k=20`` for a Zipf-distributed
working set of members, from before the first reload to after the last. Every request is
timed; a request *fails* if it is not answered 200 with a whole slate, or raises. A monitor
polls ``/readyz`` to see when each new version serves, and samples the resident memory of the
service and its children (the warm-up runs in a child process) every 0.2 s.

Each request is put in the phase it started in: *before* the first publish, *during* a reload
(from a publish to the moment ``/readyz`` shows the new version), *after* it (until the next
publish). Prints a table and writes JSON (``--json-out``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recsys import (  # noqa: E402
    load_model,
    make_staging_dir,
    publish_dir,
    save_model,
    write_model_dir,
)


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants (KiB)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            total += int(
                next(
                    line.split()[1]
                    for line in Path(f"/proc/{p}/status").read_text().splitlines()
                    if line.startswith("VmRSS:")
                )
            )
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                todo.extend(int(c) for c in children)
        except (OSError, StopIteration):
            continue
    return total


def ready(port: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/readyz")
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def client(port: int, paths: list[str], think: float, stop: threading.Event, out: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    i = 0
    while not stop.is_set():
        path = paths[i % len(paths)]
        i += 1
        start = time.monotonic()
        ok = False
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            ok = response.status == 200 and b'"introductions":[' in body
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        out.append((start, time.monotonic() - start, ok))
        if think:
            time.sleep(think)
    conn.close()


def summarise(records: list, start: float, end: float) -> dict:
    chosen = [(lat, ok) for t, lat, ok in records if start <= t < end]
    if not chosen:
        return {"requests": 0, "failures": 0}
    latencies = np.array([lat for lat, _ in chosen]) * 1000
    return {
        "requests": len(chosen),
        "failures": int(sum(not ok for _, ok in chosen)),
        "requests_per_second": round(len(chosen) / max(end - start, 1e-9), 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "max_ms": round(float(latencies.max()), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="a saved model (it is copied)")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--port", type=int, default=8792)
    parser.add_argument("--reloads", type=int, default=3)
    parser.add_argument("--before", type=float, default=20, help="seconds before the first")
    parser.add_argument("--interval", type=float, default=40, help="seconds between reloads")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--think-ms", type=float, default=20)
    parser.add_argument("--working-set", type=int, default=2000)
    parser.add_argument("--zipf", type=float, default=1.0)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="reload-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model)
    served = save_model(model, work / "served", config=model.manifest_.get("config"))
    versions = []  # the next versions, written complete beforehand
    for i in range(args.reloads):
        staged = make_staging_dir(served)
        metadata = {**model.manifest_.get("metadata", {}), "bench_version": i + 1}
        write_model_dir(model, staged / "model", metadata=metadata)
        versions.append(staged)

    rng = np.random.default_rng(args.seed)
    ids = model.network_.member_ids
    active = rng.choice(ids, min(args.working_set, len(ids)), replace=False)
    weights = 1.0 / np.arange(1, len(active) + 1) ** args.zipf
    chosen = rng.choice(active, 100_000, p=weights / weights.sum())
    paths = [f"/v1/members/{m}/introductions?k={args.k}" for m in chosen]
    del model

    env = {**os.environ, "PLUSONE_ACCESS_LOG": "0", "PYTHONPATH": str(ROOT)}
    log = open(work / "server.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--model", str(served), "--port",
         str(args.port), "--poll-seconds", "1"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    results: dict = {
        "model": str(args.model),
        "n_members": int(len(ids)),
        "clients": args.clients,
        "think_ms": args.think_ms,
        "working_set": int(len(active)),
        "k": args.k,
        "cpus": os.cpu_count(),
        "load_average_before": float(Path("/proc/loadavg").read_text().split()[0]),
    }
    stop, records = threading.Event(), []
    memory: list[tuple[float, int]] = []
    try:
        t0 = time.monotonic()
        while True:
            try:
                if ready(args.port).get("model_version"):
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() - t0 > 300:
                sys.exit(f"the service did not start; see {work / 'server.log'}")
            time.sleep(0.3)
        results["startup_seconds"] = round(time.monotonic() - t0, 1)
        version = ready(args.port)["model_version"]

        def sample() -> None:
            while not stop.is_set():
                memory.append((time.monotonic(), rss_kib(server.pid)))
                time.sleep(0.2)

        threads = [threading.Thread(target=sample)]
        per_client: list[list] = [[] for _ in range(args.clients)]
        for n in range(args.clients):
            offset = paths[n * 997 :] + paths[: n * 997]
            threads.append(
                threading.Thread(
                    target=client,
                    args=(args.port, offset, args.think_ms / 1000, stop, per_client[n]),
                )
            )
        for t in threads:
            t.start()
        begin = time.monotonic()
        time.sleep(args.before)
        reloads = []
        for staged in versions:
            published = time.monotonic()
            publish_dir(staged / "model", served)
            switched = None
            while time.monotonic() - published < args.interval:
                now_version = ready(args.port).get("model_version")
                if switched is None and now_version != version:
                    switched, version = time.monotonic(), now_version
                time.sleep(0.2)
            reloads.append((published, switched))
        stop.set()
        for t in threads:
            t.join()
        end = time.monotonic()
        records = [r for rs in per_client for r in rs]
        rss_before = max((kib for t, kib in memory if t < reloads[0][0]), default=0)
        results["all"] = summarise(records, begin, end)
        results["before"] = summarise(records, begin, reloads[0][0])
        results["before"]["peak_rss_mib"] = round(rss_before / 1024, 1)
        results["reloads"] = []
        for i, (published, switched) in enumerate(reloads):
            next_publish = reloads[i + 1][0] if i + 1 < len(reloads) else end
            done = switched if switched is not None else next_publish
            peak = max((kib for t, kib in memory if published <= t < next_publish), default=0)
            results["reloads"].append(
                {
                    "switched_after_s": None
                    if switched is None
                    else round(switched - published, 1),
                    "during": summarise(records, published, done),
                    "after": summarise(records, done, next_publish),
                    "peak_rss_mib": round(peak / 1024, 1),
                }
            )
        results["peak_rss_mib"] = round(max(kib for _, kib in memory) / 1024, 1)
        results["load_average_after"] = float(Path("/proc/loadavg").read_text().split()[0])
    finally:
        stop.set()
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()

    text = json.dumps(results, indent=2)
    print(text)
    if args.json_out:
        Path(args.json_out).write_text(text)
    row = "{:>10} {:>9} {:>8} {:>8} {:>9} {:>9} {:>9}"
    print(row.format("phase", "requests", "failed", "req/s", "p50 ms", "p99 ms", "RSS MiB"),
          file=sys.stderr)  # fmt: skip
    b = results["before"]
    print(row.format("before", b["requests"], b["failures"], b["requests_per_second"],
                     b["p50_ms"], b["p99_ms"], b["peak_rss_mib"]), file=sys.stderr)  # fmt: skip
    for i, r in enumerate(results["reloads"], 1):
        for phase in ("during", "after"):
            p = r[phase]
            print(row.format(f"{i} {phase}", p["requests"], p["failures"],
                             p.get("requests_per_second", 0), p.get("p50_ms", "-"),
                             p.get("p99_ms", "-"), r["peak_rss_mib"] if phase == "during" else ""),
                  file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    main()

"""Load test of the HTTP service with wrk on loopback: throughput, latency, errors, and a hot
reload mid-run.

    apt-get install -y wrk                     # the load generator (Debian package)
    .venv/bin/recsys generate --members 100000 --output /tmp/syn100k
    .venv/bin/recsys train --data /tmp/syn100k --output /tmp/model100k \\
        --set 'data.sensitive_attributes=[gender]' --set evaluation.max_members=5000 \\
        --set mlflow.tracking_uri=sqlite:////tmp/serve-bench.db
    .venv/bin/python benchmarks/serve_bench.py --model /tmp/model100k/model

It copies the model to a work directory, starts ``recsys serve`` on it (polling every second),
and runs wrk four times, all ``GET /v1/members/{id}/introductions?k=20``:

1. **cold**: members drawn uniformly from all members, so nearly every request ranks afresh
   (``--connections`` without pause: the most the service gives);
2. **working set, saturation**: a fixed set of active members (``--working-set``,
   Zipf-distributed popularity within it) after one batch request per 100 of them warmed the
   slate cache, as fast as ``--connections`` connections go;
3. **working set, steady rate**: the same members from ``--rate-connections`` clients that
   pause ``--think-ms`` before each request (a steady offered rate, about
   connections / pause, rather than saturation);
4. **hot reload**: the steady-rate traffic (``--reload-seconds``) while the model directory is
   replaced by a new version (re-saved beforehand, so a new manifest; swapped in by renames)
   ``--reload-at`` seconds in; the service, polling every second, must load, verify, warm and
   switch without a failed request, and the new version must serve before the run ends.

With ``--precompute all`` the service builds each version's slate table in the background (see
``recsys serve --precompute``): run 1 then measures cold traffic while the table is being built,
and, once ``/readyz`` says it is done, **1b** runs the same cold traffic again, answered from the
table.

Prints a summary and writes it as JSON (``--json-out``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]

LUA = r"""
-- each wrk thread walks the shared list of request paths from its own offset
local paths = {}
local counter = 0
local threads = 0
setup = function(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local think = 0
init = function(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  counter = (tid or 0) * math.floor(#paths / 7)
  think = tonumber(args[2] or "0")
end
-- a pause before each request on a connection (ms): many such clients offer a steady rate
delay = function()
  return think
end
request = function()
  counter = counter % #paths + 1
  return wrk.format("GET", paths[counter])
end
"""


def http_json(url: str, body: dict | None = None, timeout: float = 600) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"} if data else {}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def parse_wrk(text: str) -> dict:
    def ms(value: str, unit: str) -> float:
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    out: dict = {}
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if m:
            out[f"p{pct}_ms"] = round(ms(*m.groups()), 2)
    m = re.search(r"Latency\s+([\d.]+)(us|ms|s)\s+[\d.]+\w+\s+([\d.]+)(us|ms|s)", text)
    if m:
        out["mean_ms"] = round(ms(m[1], m[2]), 2)
        out["max_ms"] = round(ms(m[3], m[4]), 2)
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", text)
    out["requests"] = int(m[1]) if m else 0
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    out["requests_per_second"] = round(float(m[1]), 1) if m else 0.0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non_2xx"] = int(m[1]) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    return out


def run_wrk(
    url: str,
    paths_file: Path,
    lua: Path,
    *,
    seconds: int,
    connections: int,
    threads: int,
    think_ms: int = 0,
) -> dict:
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(lua),
        url,
        "--",
        str(paths_file),
        str(think_ms),
    ]
    load_before = Path("/proc/loadavg").read_text().split()[0]
    text = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result = parse_wrk(text)
    # the machine is shared: the 1-minute load average says how busy it was besides this run
    result["load_average_before_after"] = [
        float(load_before),
        float(Path("/proc/loadavg").read_text().split()[0]),
    ]
    result["command"] = " ".join(cmd)
    return result


def write_paths(path: Path, members: np.ndarray, k: int) -> None:
    path.write_text("".join(f"/v1/members/{m}/introductions?k={k}\n" for m in members))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model",
        required=True,
        help="saved-model directory (copied; the copy is served and replaced)",
    )
    parser.add_argument(
        "--workdir", default=None, help="scratch directory (default: a new temp dir)"
    )
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument(
        "--seconds", type=int, default=60, help="length of the working-set and reload runs"
    )
    parser.add_argument("--cold-seconds", type=int, default=30)
    parser.add_argument(
        "--reload-seconds",
        type=int,
        default=240,
        help="length of the reload run (the switch waits for the warm-up)",
    )
    parser.add_argument(
        "--reload-at",
        type=int,
        default=20,
        help="seconds into the reload run when the new version is put in place",
    )
    parser.add_argument(
        "--connections", type=int, default=8, help="connections of the saturation runs (no pause)"
    )
    parser.add_argument(
        "--rate-connections", type=int, default=20, help="connections of the steady-rate runs"
    )
    parser.add_argument(
        "--think-ms",
        type=int,
        default=30,
        help="pause before each request in the steady-rate runs",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument(
        "--working-set", type=int, default=2000, help="active members in runs 2 and 3"
    )
    parser.add_argument(
        "--zipf", type=float, default=1.0, help="popularity exponent within the working set"
    )
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--precompute",
        default=None,
        metavar="N|all",
        help="the service's --precompute (default: none)",
    )
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()

    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="serve-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    served = work / "served-model"
    if served.exists():
        shutil.rmtree(served)
    shutil.copytree(args.model, served)

    rng = np.random.default_rng(args.seed)
    member_ids = pd.read_parquet(served / "members.parquet")["member_id"].to_numpy(dtype=object)
    cold = work / "cold.txt"
    write_paths(cold, rng.choice(member_ids, 100_000), args.k)
    active = rng.choice(member_ids, args.working_set, replace=False)
    weights = 1.0 / np.arange(1, len(active) + 1) ** args.zipf
    hot = work / "working-set.txt"
    write_paths(hot, rng.choice(active, 200_000, p=weights / weights.sum()), args.k)
    lua = work / "paths.lua"
    lua.write_text(LUA)

    env = {
        **os.environ,
        "PLUSONE_ACCESS_LOG": "0",
        "PLUSONE_WORKERS": str(args.workers),
        "PYTHONPATH": str(ROOT),
    }
    base = f"http://127.0.0.1:{args.port}"
    log = open(work / "server.log", "w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            "serve",
            "--model",
            str(served),
            "--port",
            str(args.port),
            "--poll-seconds",
            "1",
        ]
        + (["--precompute", args.precompute] if args.precompute else []),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    results: dict = {
        "model": str(args.model),
        "n_members": int(len(member_ids)),
        "workers": args.workers,
        "connections": args.connections,
        "rate_connections": args.rate_connections,
        "think_ms": args.think_ms,
        "wrk_threads": args.threads,
        "k": args.k,
        "working_set": args.working_set,
        "zipf": args.zipf,
        "cpus": os.cpu_count(),
    }
    try:
        started = time.perf_counter()
        while True:
            try:
                status, ready = http_json(f"{base}/readyz", timeout=2)
                if (
                    status == 200 or ready.get("status") == "warming"
                ):  # warming: answers, its table still building
                    break
            except OSError:
                pass
            if server.poll() is not None or time.perf_counter() - started > 300:
                sys.exit(f"the service did not become ready; see {work / 'server.log'}")
            time.sleep(0.5)
        results["startup_seconds"] = round(time.perf_counter() - started, 1)
        version_before = ready["model_version"]
        print(f"ready in {results['startup_seconds']}s, version {version_before}", file=sys.stderr)

        print("1/4 cold: uniform over all members", file=sys.stderr)
        results["cold"] = run_wrk(
            base,
            cold,
            lua,
            seconds=args.cold_seconds,
            connections=args.connections,
            threads=args.threads,
        )
        if args.precompute:
            while True:
                _, body = http_json(f"{base}/readyz", timeout=10)
                table = body.get("precompute") or {}
                if table.get("state") != "ranking" and table.get("state") != "explaining":
                    break
                time.sleep(1)
            results["precompute"] = table
            results["precompute_seconds_after_ready"] = round(
                time.perf_counter() - started - results["startup_seconds"], 1
            )
            results["memory_after_precompute_kib"] = (
                int(
                    re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{server.pid}/status").read_text())[1]
                )
                if Path(f"/proc/{server.pid}/status").exists()
                else None
            )
            print(f"1b/4 cold again, from the table ({table})", file=sys.stderr)
            results["cold_precomputed"] = run_wrk(
                base,
                cold,
                lua,
                seconds=args.cold_seconds,
                connections=args.connections,
                threads=args.threads,
            )

        print(f"warming the slate cache for {len(active)} active members", file=sys.stderr)
        t = time.perf_counter()
        for start in range(0, len(active), 100):
            status, _ = http_json(
                f"{base}/v1/introductions:batch",
                {"member_ids": [str(m) for m in active[start : start + 100]], "k": args.k},
            )
            assert status == 200, status
        results["warm_seconds"] = round(time.perf_counter() - t, 1)

        print("2/4 working set, saturation", file=sys.stderr)
        results["working_set_saturation"] = run_wrk(
            base,
            hot,
            lua,
            seconds=args.seconds,
            connections=args.connections,
            threads=args.threads,
        )

        print("3/4 working set, steady rate", file=sys.stderr)
        steady = dict(
            seconds=args.seconds,
            connections=args.rate_connections,
            threads=args.threads,
            think_ms=args.think_ms,
        )
        results["working_set_steady"] = run_wrk(base, hot, lua, **steady)

        print("4/4 working set, steady rate, with a hot reload", file=sys.stderr)
        reload_info: dict = {}
        # the next version is written beforehand (re-saved: a new manifest, so a new version), then
        # swapped into place by two renames, as a deploy step would: the service pays only its own
        # reload
        staged = work / "staged-model"
        code = (
            "import sys, time; from recsys import load_model, save_model; "
            "m = load_model(sys.argv[1]); "
            "save_model(m, sys.argv[2], config=m.manifest_.get('config'), "
            "metadata={**m.manifest_.get('metadata', {}), 'bench_reload': time.time()})"
        )
        subprocess.run(
            [sys.executable, "-c", code, str(served), str(staged)], check=True, cwd=ROOT, env=env
        )

        def replace_model() -> None:
            time.sleep(args.reload_at)
            t0 = time.perf_counter()
            old = work / "old-model"
            os.replace(served, old)
            os.replace(staged, served)
            shutil.rmtree(old)
            while time.perf_counter() - t0 < args.reload_seconds:
                _, body = http_json(f"{base}/readyz", timeout=10)
                if body.get("model_version") not in (None, version_before):
                    reload_info["switched_after_s"] = round(time.perf_counter() - t0, 1)
                    reload_info["new_version"] = body["model_version"]
                    break
                time.sleep(0.2)

        swapper = threading.Thread(target=replace_model)
        swapper.start()
        results["reload_run"] = run_wrk(
            base, hot, lua, **{**steady, "seconds": args.reload_seconds}
        )
        swapper.join()
        results["reload_run"].update(reload_info, old_version=version_before)
        _, results["readyz_after"] = http_json(f"{base}/readyz", timeout=10)
        # the new version served inside the run only if it switched before the run ended
        switched = reload_info.get("switched_after_s")
        results["reload_run"]["switched_within_run"] = (
            switched is not None and args.reload_at + switched < args.reload_seconds
        )
        results["reload_run"]["new_version_cache_hits"] = results["readyz_after"]["cache"]["hits"]
    finally:
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
    for name in (
        "cold",
        "cold_precomputed",
        "working_set_saturation",
        "working_set_steady",
        "reload_run",
    ):
        if name not in results:
            continue
        r = results[name]
        print(
            f"{name:>22}: {r['requests_per_second']:>7.1f} req/s  p50 "
            f"{r.get('p50_ms', float('nan')):>7.2f} ms  "
            f"p99 {r.get('p99_ms', float('nan')):>8.2f} ms  non-2xx {r['non_2xx']}  socket "
            f"errors {r['socket_errors']}",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()

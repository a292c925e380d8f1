"""Wall time, peak memory and metrics of one `recsys train` run.

    .venv/bin/python benchmarks/train_bench.py --config configs/deezer.yaml --output
    /tmp/bench-deezer
    .venv/bin/python benchmarks/train_bench.py --data /tmp/synthetic-100k --output /tmp/bench-100k
    \
        --set 'data.sensitive_attributes=[gender]'

Prints one JSON object: wall seconds, peak RSS (GiB) and every metric of the run. The run is
tracked in a throw-away MLflow store unless --set mlflow.* says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    parser.add_argument("--data")
    parser.add_argument("--output", required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()

    import logging

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr
    )
    from training.config import load_config
    from training.job import train_job

    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data.path={json.dumps(args.data)}")
    if not any(o.startswith("mlflow.tracking_uri") for o in overrides):
        overrides.append(f"mlflow.tracking_uri=sqlite:///{tempfile.mkdtemp()}/bench.db")
    config = load_config(args.config, overrides=overrides)
    start = time.perf_counter()
    result = train_job(config, output_dir=args.output)
    wall = time.perf_counter() - start
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        json.dumps(
            {
                "wall_seconds": round(wall, 1),
                "peak_rss_gib": round(peak_gib, 2),
                **{k: round(v, 4) for k, v in result.metrics.items()},
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()

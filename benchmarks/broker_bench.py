"""Broker introductions (issue 7): quality on held-out connections, and speed for a 500-contact
broker.

    .venv/bin/python benchmarks/broker_bench.py quality --data deezer
    .venv/bin/python benchmarks/broker_bench.py quality --data synthetic
    .venv/bin/python benchmarks/broker_bench.py speed

``quality`` holds out 10% of the connections (``recsys.holdout_split``), fits the default
``IntroductionRecommender`` (the parameters of ``recsys train``'s default config) on the rest and
scores every member with at least two training contacts as a broker (``recsys.evaluate_broker``,
k = 10): a held-out connection whose two members share a contact counts as a hit for each such
broker. Against it: the common-neighbour baseline (each broker's contact pairs ranked by their
number of common neighbours), the same ranking without the bridge and small-network bonuses, and
capacity shared across all brokers at once. Logs one MLflow run in experiment ``plusone-broker``
(``--tracking-uri``, default ``sqlite:///mlflow.db``) and prints the metrics as JSON.

``speed`` builds the synthetic network (``--members``, seed 7), tops one member up to
``--contacts`` connections (about d²/2 candidate pairs), fits the model, and times one broker's
ranking (``k = 10``) over ``--repeats`` runs: *warm* is ``BrokerRanker.rank`` on a fitted ranker
(what the service does: the ranker is built once per loaded model), *cold* is
``rank_introductions_to_make`` (ranker built per call). Median wall and CPU time, single-threaded
BLAS; the load average is printed with them because the machine is shared. Then the same for a
batch of every broker, and ``fill_pledges`` with every member pledging ``--pledge``.
``--model-cache DIR`` keeps the fitted model, so the timing can be re-run without fitting again.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
DEEZER = ROOT.parent / "shared" / "datasets" / "deezer_europe"


def _network(name: str, members: int):
    import recsys

    if name == "deezer":
        return recsys.load_network(DEEZER, sensitive_attributes=["gender"]), "deezer_europe"
    return recsys.synthetic_network(members, seed=7), f"synthetic-{members}-seed7"


def _model(seed: int):
    from training.config import load_config
    from training.factory import build_recommender

    return build_recommender(load_config(None, overrides=[f"scoring.seed={seed}"]))


def quality(args) -> dict:
    import mlflow
    import numpy as np

    import recsys
    from training.tracking import git_commit, log_metrics

    net, dataset = _network(args.data, args.members)
    train, heldout = recsys.holdout_split(net, fraction=args.holdout, seed=args.seed)
    started = time.perf_counter()
    model = _model(args.seed).fit(train)
    fit_seconds = time.perf_counter() - started
    ranker = recsys.BrokerRanker().fit(model)
    brokers = None
    if args.max_brokers:
        eligible = np.flatnonzero(ranker.degrees_ >= 2)
        brokers = np.sort(
            np.random.default_rng(args.seed).choice(
                eligible, min(args.max_brokers, len(eligible)), replace=False
            )
        )
    started = time.perf_counter()
    metrics = recsys.evaluate_broker(
        model, heldout, k=args.k, ranker=ranker, broker_rows=brokers, random_state=args.seed
    )
    metrics["broker/evaluation_seconds"] = time.perf_counter() - started
    metrics["fit_seconds"] = fit_seconds
    metrics["heldout_connections"] = float(len(heldout))

    mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_experiment(args.experiment)
    with mlflow.start_run(run_name=f"broker-{args.data}"):
        mlflow.set_tags(
            {
                "git_commit": git_commit(),
                "dataset": dataset,
                "benchmark": "broker_bench.py quality",
            }
        )
        mlflow.log_params(
            {
                "dataset": dataset,
                "k": args.k,
                "split.holdout_fraction": args.holdout,
                "split.seed": args.seed,
                "max_brokers": args.max_brokers or "all",
                **{f"broker.{k}": v for k, v in ranker.get_params().items()},
                **{f"model.{k}": v for k, v in model.get_params().items()},
            }
        )
        log_metrics(mlflow, metrics)
        run_id = mlflow.active_run().info.run_id
    return {
        "dataset": dataset,
        "mlflow_run": run_id,
        "tracking_uri": args.tracking_uri,
        **{k: round(v, 4) for k, v in metrics.items()},
    }


def _load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def speed(args) -> dict:
    import numpy as np
    from threadpoolctl import threadpool_limits

    import recsys

    net, dataset = _network("synthetic", args.members)
    rng = np.random.default_rng(0)
    degrees = net.degrees
    hub = int(np.flatnonzero(degrees == int(np.median(degrees)))[0])
    have = set(net.adjacency[hub].indices.tolist()) | {hub}
    extra = rng.choice(
        np.setdiff1d(np.arange(net.n_members), list(have)),
        args.contacts - len(have) + 1,
        replace=False,
    )
    net = net.with_connections(
        np.vstack([net.connections, np.column_stack([np.full(len(extra), hub), extra])])
    )
    started = time.perf_counter()
    cached = Path(args.model_cache) if args.model_cache else None
    if cached is not None and (cached / "manifest.json").is_file():
        model = recsys.load_model(cached)  # the same network and hub: only the timing is re-run
    else:
        model = _model(0).fit(net)
        if cached is not None:
            recsys.save_model(model, cached)
    fit_seconds = time.perf_counter() - started
    out = {
        "dataset": dataset,
        "broker_contacts": int(net.degrees[hub]),
        "fit_or_load_seconds": round(fit_seconds, 1),
    }
    with threadpool_limits(1):
        ranker = recsys.BrokerRanker().fit(model)
        a, _, _, _ = ranker._pairs_and_features(np.array([hub]))
        out["candidate_pairs"] = int(len(a))
        out["fast_paths"] = {
            "block_features": ranker.block_features_,
            "quadratic_scoring": ranker.quadratic_scoring_,
        }
        ranker.rank([hub], 10)  # first call builds the cached upper triangle

        def timed(fn, repeats):
            wall, cpu = [], []
            for _ in range(repeats):
                w, c = time.perf_counter(), time.process_time()
                fn()
                wall.append(time.perf_counter() - w)
                cpu.append(time.process_time() - c)
            return {
                "median_wall_ms": round(1000 * float(np.median(wall)), 1),
                "median_cpu_ms": round(1000 * float(np.median(cpu)), 1),
                "min_wall_ms": round(1000 * float(np.min(wall)), 1),
            }

        out["load_average_before"] = _load_average()
        out["one_broker_warm"] = timed(
            lambda: ranker.rank([hub], 10, shared_capacity=False), args.repeats
        )
        out["one_broker_cold"] = timed(
            lambda: recsys.rank_introductions_to_make(model, [hub], 10, shared_capacity=False),
            args.repeats,
        )
        out["load_average_after"] = _load_average()
        if args.skip_batch:
            return out
        brokers = np.flatnonzero(ranker.degrees_ >= 2)
        started = time.perf_counter()
        pairs, _ = ranker.rank(brokers, 10, shared_capacity=False)
        out["all_brokers"] = {
            "brokers": int(len(brokers)),
            "candidate_pairs": int(
                sum(int(d) * (int(d) - 1) // 2 for d in ranker.degrees_[brokers])
            ),
            "seconds": round(time.perf_counter() - started, 1),
            "mean_list_size": round(float((pairs[:, :, 0] >= 0).sum(axis=1).mean()), 2),
        }
        started = time.perf_counter()
        rows, pledged, _ = ranker.fill_pledges(k_default=args.pledge)
        made = (pledged[:, :, 0] >= 0).sum()
        counts = np.bincount(pledged[pledged[:, :, 0] >= 0].ravel(), minlength=ranker.n_members_)
        out["fill_pledges"] = {
            "brokers": int(len(rows)),
            "pledged": int(len(rows) * args.pledge),
            "filled": int(made),
            "seconds": round(time.perf_counter() - started, 1),
            "max_over_capacity": int((counts - ranker.capacity_).max()),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--data", choices=("deezer", "synthetic"), required=True)
    q.add_argument(
        "--members", type=int, default=20000, help="synthetic network size (default 20000)"
    )
    q.add_argument("--k", type=int, default=10)
    q.add_argument("--holdout", type=float, default=0.1)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument(
        "--max-brokers",
        type=int,
        default=None,
        help="evaluate a seeded sample of brokers (default: all)",
    )
    q.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    q.add_argument("--experiment", default="plusone-broker")
    s = sub.add_parser("speed")
    s.add_argument("--members", type=int, default=20000)
    s.add_argument("--contacts", type=int, default=500)
    s.add_argument("--repeats", type=int, default=21)
    s.add_argument(
        "--pledge",
        type=int,
        default=2,
        help="introductions every member pledges in the fill_pledges run",
    )
    s.add_argument(
        "--model-cache",
        help="save the fitted model here, or load it if present (re-runs time only)",
    )
    s.add_argument(
        "--skip-batch",
        action="store_true",
        help="time the one broker only (no all-brokers and fill_pledges runs)",
    )
    args = parser.parse_args()

    import logging

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr
    )
    for noisy in ("alembic", "mlflow", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    result = quality(args) if args.what == "quality" else speed(args)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

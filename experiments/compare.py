"""Compare two MLflow runs: metrics side by side, and a bootstrap test of inequality of outcomes.

``recsys compare RUN_A RUN_B`` answers "did this change make introductions more equal?". Besides
the table of every metric with its delta (B − A), it reads each run's ``per_member.parquet``
(per-member outcomes, anonymous rows) and tests the difference in the Atkinson index of

- **introductions received** (how evenly the chance to be introduced is spread), and
- **held-out recall** (how evenly the quality of the recommendations is spread),

with a bootstrap over members, as in the inequality A/B tests of Saint-Jacques, Sepehri, Li &
Perisic, "Fairness through Experimentation: Inequality in A/B testing as an approach to
responsible design", arXiv:2002.05819 (LinkedIn, 2020). When both runs scored the same members
(same data set and member count) the bootstrap is **paired** — each resample draws the same
members from both runs, which removes the between-member noise the two runs share; otherwise
the two runs are resampled independently. The interval is the percentile interval of the
resampled differences; the two-sided p-value is twice the smaller tail share beyond zero (the
smallest level at which that interval would exclude zero), floored at ``1 / (B + 1)``.

The report (Markdown or HTML, with the plots) is :mod:`experiments.comparison_report`.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys import metrics as m

__all__ = [
    "InequalityTest",
    "Comparison",
    "atkinson_difference",
    "compare_runs",
]

logger = logging.getLogger(__name__)

#: Outcomes in per_member.parquet that are tested, with the words used in the report.
OUTCOMES = {
    "introductions_received": "introductions received",
    "heldout_recall": "held-out recall",
}

_HIGHER_BETTER = (
    "recall_at_",
    "ndcg_at_",
    "baseline/",
    "coverage",
    "bridge_rate",
    "plus_one_balance",
    "/exposure_ratio",
    "/recall_ratio",
    "/mean_recall",
    "mean_gain",
    "share_gaining",
    "mean_after",
)
_LOWER_BETTER = (
    "exposure_gini",
    "exposure_atkinson",
    "max_inbound_share",
    "recall_atkinson",
    "recall_gini",
    "ndkl/",
)


@dataclass(frozen=True)
class InequalityTest:
    """Atkinson index of one outcome in both runs and the bootstrap test of B − A."""

    outcome: str
    atkinson_a: float
    atkinson_b: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    paired: bool
    members: int
    n_boot: int
    confidence: float
    draws: np.ndarray = field(repr=False)

    @property
    def significant(self) -> bool:
        return bool(self.ci_low > 0 or self.ci_high < 0)


def atkinson_difference(
    a: np.ndarray,
    b: np.ndarray,
    *,
    paired: bool,
    epsilon: float = 0.5,
    n_boot: int = 1000,
    confidence: float = 0.95,
    random_state: int | None = 0,
    outcome: str = "outcome",
) -> InequalityTest:
    """Bootstrap test of ``atkinson(b) - atkinson(a)``.

    Parameters
    ----------
    a, b : 1-D arrays of non-negative outcomes, NaN for members without one
        With ``paired=True`` both have one entry per member in the same order, and only members
        with both outcomes count.
    paired : bool
        Resample the same members in both (True) or each run on its own (False).
    epsilon, n_boot, confidence, random_state
        Atkinson aversion, resamples, interval level and seed.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = rng.lognormal(sigma=1.5, size=400); b = rng.lognormal(sigma=0.5, size=400)
    >>> t = atkinson_difference(a, b, paired=False, n_boot=200)
    >>> t.difference < 0 and t.significant
    True
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if paired:
        if a.shape != b.shape:
            raise ValueError("paired outcomes need the same members in the same order")
        keep = ~np.isnan(a) & ~np.isnan(b)
        a, b = a[keep], b[keep]
    else:
        a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if a.size == 0 or b.size == 0:
        raise ValueError(f"no {outcome} to compare")
    rng = np.random.default_rng(random_state)
    est_a, est_b = m.atkinson(a, epsilon=epsilon), m.atkinson(b, epsilon=epsilon)
    draws = np.empty(n_boot)
    # One resample per iteration through the public, tested metric: B is ~1000, so the loop over
    # resamples (not members) costs a few seconds at most even for 100,000 members.
    for i in range(n_boot):
        ia = rng.integers(0, a.size, a.size)
        ib = ia if paired else rng.integers(0, b.size, b.size)
        draws[i] = m.atkinson(b[ib], epsilon=epsilon) - m.atkinson(a[ia], epsilon=epsilon)
    alpha = 1 - confidence
    low, high = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
    tail = min(np.mean(draws <= 0), np.mean(draws >= 0))
    p = min(1.0, max(2 * tail, 1 / (n_boot + 1)))
    return InequalityTest(
        outcome,
        est_a,
        est_b,
        est_b - est_a,
        float(low),
        float(high),
        float(p),
        paired,
        int(min(a.size, b.size)) if not paired else int(a.size),
        n_boot,
        confidence,
        draws,
    )


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    name: str
    metrics: dict[str, float]
    tags: dict[str, str]
    params: dict[str, str]
    per_member: pd.DataFrame | None
    plots: dict[str, Path]


@dataclass(frozen=True)
class Comparison:
    a: RunInfo
    b: RunInfo
    table: pd.DataFrame
    tests: list[InequalityTest]
    verdict: str
    epsilon: float
    notes: list[str]


def _fetch(client: Any, run_id: str, tracking_uri: str, workdir: Path) -> RunInfo:
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException as err:
        raise LookupError(f"run {run_id!r} not found in {tracking_uri}: {err.message}") from None
    dest = workdir / run_id
    dest.mkdir(parents=True, exist_ok=True)
    per_member = None
    names = {a.path for a in client.list_artifacts(run_id)}
    if "per_member.parquet" in names:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id,
            artifact_path="per_member.parquet",
            dst_path=str(dest),
            tracking_uri=tracking_uri,
        )
        per_member = pd.read_parquet(local)
    plots: dict[str, Path] = {}
    if "plots" in names:
        local = Path(
            mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path="plots", dst_path=str(dest), tracking_uri=tracking_uri
            )
        )
        plots = {p.name: p for p in sorted(local.glob("*.png"))}
    return RunInfo(
        run_id,
        run.info.run_name or run_id[:8],
        dict(run.data.metrics),
        dict(run.data.tags),
        dict(run.data.params),
        per_member,
        plots,
    )


def _direction(name: str) -> int:
    if any(s in name for s in _LOWER_BETTER):
        return -1
    if any(s in name for s in _HIGHER_BETTER):
        return 1
    return 0


def metrics_table(a: dict[str, float], b: dict[str, float]) -> pd.DataFrame:
    """Every metric of either run: ``metric, a, b, delta`` (B − A) and ``better`` (A, B or
    blank).
    """
    order = (
        "recall_at_",
        "ndcg",
        "baseline/",
        "coverage",
        "bridge",
        "plus_one",
        "reach/",
        "exposure",
        "max_inbound",
        "recall_atk",
        "recall_gini",
        "equity/",
        "skew",
        "min_skew",
        "max_skew",
        "ndkl/",
        "community/",
        "network_size/",
    )

    def rank(name: str) -> tuple[int, str]:
        for i, prefix in enumerate(order):
            if name.startswith(prefix):
                return i, name
        return len(order), name

    rows = []
    for name in sorted(set(a) | set(b), key=rank):
        va, vb = a.get(name, math.nan), b.get(name, math.nan)
        delta = vb - va
        sign = _direction(name)
        better = (
            ""
            if not sign or not math.isfinite(delta) or abs(delta) < 1e-12
            else ("B" if delta * sign > 0 else "A")
        )
        rows.append({"metric": name, "a": va, "b": vb, "delta": delta, "better": better})
    return pd.DataFrame(rows)


def _fmt(x: float, digits: int = 3) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _sentence(test: InequalityTest, epsilon: float, label: str) -> str:
    ci = (
        f"{test.confidence:.0%} CI {_fmt(test.ci_low)} to {_fmt(test.ci_high)}, {_p(test.p_value)}"
    )
    figures = (
        f"the Atkinson index (ε = {epsilon:g}) of {label} went from {_fmt(test.atkinson_a)} "
        "in A to "
        f"{_fmt(test.atkinson_b)} in B (B − A = {test.difference:+.3f}, {ci})"
    )
    if not test.significant:
        return f"No clear change: {figures}, within what resampling members alone produces"
    if test.difference < 0:
        return f"Yes — B spreads {label} more equally than A: {figures}"
    return f"No — B spreads {label} less equally than A: {figures}"


def verdict(tests: list[InequalityTest], table: pd.DataFrame, *, epsilon: float) -> str:
    """One sentence on introductions received (with the relevance cost), then one on recall if
    tested.
    """
    by = {t.outcome: t for t in tests}
    parts = []
    exposure = by.get("introductions_received")
    if exposure is not None:
        sentence = _sentence(exposure, epsilon, "introductions received")
        recall_rows = table[table["metric"].str.match(r"^recall_at_\d+$")]
        if len(recall_rows):
            r = recall_rows.iloc[0]
            sentence += f", while {r['metric']} went from {_fmt(r['a'])} to {_fmt(r['b'])}"
        parts.append(sentence + ".")
    recall = by.get("heldout_recall")
    if recall is not None:
        text = _sentence(recall, epsilon, "held-out recall")
        parts.append(f"Quality of service: {text[0].lower()}{text[1:]}.")
    if not parts:
        parts.append(
            "No per-member outcomes were logged with these runs (per_member.parquet), so "
            "inequality could not be tested; compare the metrics below."
        )
    return " ".join(parts)


def compare_runs(
    run_a: str,
    run_b: str,
    *,
    tracking_uri: str | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    epsilon: float | None = None,
    random_state: int = 0,
    workdir: str | Path | None = None,
) -> Comparison:
    """Fetch two runs and compare them (see the module docstring)."""
    from mlflow import MlflowClient

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    work = (
        Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="recsys-compare-"))
    )
    a = _fetch(client, run_a, uri, work / "a")
    b = _fetch(client, run_b, uri, work / "b")
    if epsilon is None:
        eps_a = a.params.get("evaluation.atkinson_epsilon")
        epsilon = float(eps_a) if eps_a else 0.5
    table = metrics_table(a.metrics, b.metrics)
    notes: list[str] = []
    tests: list[InequalityTest] = []
    if a.per_member is not None and b.per_member is not None:
        # per_member rows are shuffled with evaluation.seed (training.privacy): rows pair up
        # only between runs of one data set shuffled with one seed
        same_members = (
            a.tags.get("dataset") == b.tags.get("dataset")
            and len(a.per_member) == len(b.per_member)
            and a.params.get("evaluation.seed") == b.params.get("evaluation.seed")
        )
        if not same_members:
            notes.append(
                "The runs are on different data sets (or member counts): the bootstrap "
                "resamples each run on its own."
            )
        for column in OUTCOMES:
            if column in a.per_member and column in b.per_member:
                try:
                    tests.append(
                        atkinson_difference(
                            a.per_member[column].to_numpy(float),
                            b.per_member[column].to_numpy(float),
                            paired=same_members,
                            epsilon=epsilon,
                            n_boot=n_boot,
                            confidence=confidence,
                            random_state=random_state,
                            outcome=column,
                        )
                    )
                except ValueError as err:
                    notes.append(f"{OUTCOMES[column]}: {err}")
    else:
        missing = [r.run_id for r in (a, b) if r.per_member is None]
        notes.append(
            f"No per_member.parquet in run(s) {', '.join(missing)}: inequality not tested."
        )
    return Comparison(a, b, table, tests, verdict(tests, table, epsilon=epsilon), epsilon, notes)

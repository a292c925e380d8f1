"""The job configuration: YAML parsed once into typed, frozen objects that reject unknown keys.

This is the one place where a config becomes objects (``training.factory`` turns the parts into
library estimators). Nothing here reads ``sys.argv`` or evaluates strings: ``--set KEY=VALUE``
values are typed by YAML's own scalar rules.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from recsys import MAX_POOL_SIZE, MAX_SLATE_SIZE

__all__ = ["Config", "ConfigError", "load_config", "apply_overrides", "config_to_yaml", "flatten"]


class ConfigError(ValueError):
    """A config file or ``--set`` override that cannot be used; the message names the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Section):
    path: str | None = None
    """Input-layout directory; ``None`` uses the built-in synthetic network."""
    sensitive_attributes: tuple[str, ...] = ()
    min_group_size: int = Field(20, ge=1)


class SyntheticConfig(_Section):
    members: int = Field(3000, ge=50, le=10_000_000)
    seed: int = 7
    minority_share: float = Field(0.3, gt=0, lt=1)


class SplitConfig(_Section):
    holdout_fraction: float = Field(0.1, ge=0, lt=1)
    seed: int = 13


class AdamicAdarConfig(_Section):
    n: int = Field(200, ge=0, le=MAX_POOL_SIZE)
    three_hop_weight: float = Field(0.03, ge=0)
    """Weight of walks of length three (friends of friends' friends); 0 keeps two hops."""
    three_hop_middles: int = Field(64, ge=0)
    """Walks of length three go on from this many most-walked two-hop members (0: from all)."""


class InterestsConfig(_Section):
    n: int = Field(100, ge=0, le=MAX_POOL_SIZE)
    max_df: float = Field(0.05, gt=0, le=1)
    """Interests liked by more than this share of members are too common to propose anyone."""


class ALSConfig(_Section):
    n: int = Field(100, ge=0, le=MAX_POOL_SIZE)
    factors: int = Field(32, ge=2, le=1024)
    iterations: int = Field(15, ge=1, le=1000)
    regularization: float = Field(0.05, ge=0)
    alpha: float = Field(2.0, gt=0)
    index: Literal["auto", "exact", "hnsw", "ivf"] = "auto"
    seed: int = 0
    """Seed of the embedding fit, for either engine."""
    engine: Literal["implicit", "spark"] = "implicit"
    """Who fits the member embeddings: implicit's ALS in this process, or Spark MLlib's ALS
    (implicit preferences, seeded by ``seed``) for interest matrices past one machine."""
    spark_master: str | None = None
    """Spark master for ``engine: spark`` (e.g. ``spark://host:7077``); ``None``: the master
    ``spark-submit`` gave, else ``local[*]``."""


class PPRConfig(_Section):
    n: int = Field(0, ge=0, le=MAX_POOL_SIZE)
    """Candidates from personalized PageRank by a local push (0: off); see
    benchmarks/RESULTS.md, "Link prediction"."""


class CandidatesConfig(_Section):
    pool_size: int = Field(300, ge=1, le=MAX_POOL_SIZE)
    adamic_adar: AdamicAdarConfig = AdamicAdarConfig()
    interests: InterestsConfig = InterestsConfig()
    als: ALSConfig = ALSConfig()
    ppr: PPRConfig = PPRConfig()


class ScoringConfig(_Section):
    model: Literal["logistic", "gradient_boosting"] = "logistic"
    """The acceptance model: logistic regression with pairwise interactions, or gradient-boosted
    trees (not with ``fairness``; see benchmarks/RESULTS.md, "Link prediction")."""
    reciprocal: Literal["harmonic", "product", "none"] = "harmonic"
    validation_fraction: float = Field(0.2, gt=0, lt=1)
    max_training_members: int = Field(20000, ge=10)
    fairness: Literal["none", "tpr_parity", "equalized_odds"] = "none"
    """Train the acceptance model under a fairlearn constraint across same/cross-community pairs.
    """
    community_feature: bool = False
    """Let the acceptance model see whether a pair shares a community (it then learns to keep
    members inside theirs, which the re-ranker pays to undo; see the README)."""
    seed: int = 0


class RerankConfig(_Section):
    enabled: bool = True
    bridge_weight: float = Field(0.5, ge=0)
    degree_penalty: float = Field(0.05, ge=0)
    plus_one: Literal["off", "pledged", "all"] = "pledged"
    community_partitions: int = Field(5, ge=1, le=5)
    """Leiden partitions in the ensemble the bridge bonus pays on (1: the model's own alone)."""
    bound_attribute: str | None = None
    """Opt-in: exposure bounds at every prefix on this consented sensitive attribute (one of
    ``data.sensitive_attributes``) instead of network-size tiers; the model then keeps each
    member's group as a bare integer code and ranking reads it. Default: structural groups only."""


class EvaluationConfig(_Section):
    k: int = Field(20, ge=1, le=MAX_SLATE_SIZE)
    """Slate size the metrics use; at most ``recsys.MAX_SLATE_SIZE`` (checked before anything
    is allocated: a batch holds ``PREFERENCE_DEPTH × k`` candidates per member)."""
    max_members: int | None = Field(50_000, ge=1)
    """Members ranked to evaluate: a seeded sample of this many where the network is larger
    (every member of the networks in configs/; at a million members ranking them all took
    over 16 minutes), ``null`` for all. The run says which it did."""
    atkinson_epsilon: float = Field(0.5, gt=0)
    seed: int = 0
    holdout_partitions: bool = True
    """Judge bridging under six partitions the model never saw (bridge_rate/holdout_partition);
    each is a Leiden or Louvain run over the whole graph, about a minute at a million members,
    so a run at that size may turn them off."""
    bootstrap_samples: int = Field(300, ge=0, le=100_000)
    """Resamples behind the Atkinson confidence intervals of a run's report (0: no intervals)."""


class MlflowConfig(_Section):
    enabled: bool = True
    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = "plusone"
    log_model: bool = True
    """Log the MLflow model (a pyfunc over the saved model) with the run; sweeps switch it off."""
    register_model: bool = True
    """Register the run's MLflow model (a pyfunc over the saved model) under ``model_name``."""
    model_name: str = Field("plusone", min_length=1)
    alias: str | None = None
    """Point this registry alias (e.g. ``champion``) at the newly registered version."""


class BehaviourConfig(_Section):
    """How simulated members answer a proposed introduction (see
    ``recsys.AcceptanceBehaviour``).
    """

    intercept: float = -3.0
    mutual_contacts: float = 1.0
    shared_interests: float = 4.0
    position_bias: bool = True


class SimulationConfig(_Section):
    """The feedback-loop simulation of ``recsys simulate`` (policies: unconstrained and
    re-ranked).
    """

    rounds: int = Field(5, ge=1)
    members_per_round: int | None = Field(None, ge=1)
    """Members ranked per round (a fresh seeded sample each round); ``None`` ranks everyone."""
    seed: int = 0
    refit: Literal["graph", "full"] = "graph"
    """After each round: ``graph`` re-detects communities and rebuilds the graph-based parts only
    (interest embeddings and the acceptance model are kept); ``full`` refits everything."""
    experiment: str = "plusone-simulation"
    behaviour: BehaviourConfig = BehaviourConfig()


class Config(_Section):
    """The resolved configuration of one job."""

    data: DataConfig = DataConfig()
    synthetic: SyntheticConfig = SyntheticConfig()
    split: SplitConfig = SplitConfig()
    candidates: CandidatesConfig = CandidatesConfig()
    scoring: ScoringConfig = ScoringConfig()
    rerank: RerankConfig = RerankConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    mlflow: MlflowConfig = MlflowConfig()
    simulation: SimulationConfig = SimulationConfig()

    @model_validator(mode="after")
    def _bound_attribute_is_sensitive(self) -> Config:
        attr = self.rerank.bound_attribute
        if attr is not None and attr not in self.data.sensitive_attributes:
            listed = ", ".join(self.data.sensitive_attributes) or "none"
            raise ValueError(
                f"rerank.bound_attribute {attr!r} must be one of data.sensitive_attributes "
                f"({listed})"
            )
        return self

    @classmethod
    def from_dict(
        cls,
        raw: dict[str, Any],
        *,
        source: str = "config",
        overridden: frozenset[str] | set[str] = frozenset(),
    ) -> Config:
        """Validate ``raw``; a problem is blamed on ``--set KEY`` when the key is in
        ``overridden`` (the keys set on the command line), else on ``source``."""
        try:
            return cls.model_validate(raw)
        except ValidationError as err:
            problems = []
            for e in err.errors():
                key = ".".join(str(p) for p in e["loc"])
                if key in overridden:
                    problems.append(f"--set {key}: {_explain(e)}")
                else:
                    problems.append(f"{source}: {key + ': ' if key else ''}{_explain(e)}")
            raise ConfigError("; ".join(problems)) from None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _explain(error: dict[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    return str(error["msg"]).removeprefix("Value error, ")


def load_config(
    path: str | Path | None = None, *, overrides: list[str] | tuple[str, ...] = ()
) -> Config:
    """Read a YAML config (or the defaults when ``path`` is None) and apply ``--set`` overrides."""
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"cannot read config {path}: {err.strerror}") from None
        except UnicodeDecodeError as err:
            line = Path(path).read_bytes()[: err.start].count(b"\n") + 1
            raise ConfigError(
                f"{path}, line {line}: not UTF-8 text (byte {err.object[err.start]:#04x}); a "
                "config is a YAML file"
            ) from None
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f"{path}, line {mark.line + 1}" if mark is not None else str(path)
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise ConfigError(f"{where}: not valid YAML: {problem}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
    raw = apply_overrides(raw, overrides)
    overridden = {item.partition("=")[0].strip() for item in overrides}
    return Config.from_dict(raw, source=source, overridden=overridden)


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each ``dotted.key=value`` set; values are typed as YAML."""
    raw = copy.deepcopy(raw)
    known = Config().to_dict()
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. rerank.enabled=false")
        parts = key.split(".")
        node_known: Any = known
        for part in parts:
            if not isinstance(node_known, dict) or part not in node_known:
                raise ConfigError(f"--set {key}: unknown key")
            node_known = node_known[part]
        if isinstance(node_known, dict):
            raise ConfigError(f"--set {key}: is a section; set one of its keys")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {key}: value is not valid YAML: {err}") from None
        node = raw
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value
    return raw


def config_to_yaml(config: Config) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``; lists become comma-joined strings (MLflow params)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, prefix=f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = ",".join(str(v) for v in value)
        else:
            flat[name] = value
    return flat

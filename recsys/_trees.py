"""The gradient-boosted acceptance model: scikit-learn's trees, stored and scored as plain arrays.

:class:`GradientBoostedAcceptanceModel` fits scikit-learn's ``HistGradientBoostingClassifier``
on the pair features (:data:`recsys.FEATURE_NAMES`, optionally with a few ratios derived from
them, :data:`DERIVED_NAMES`) and keeps only what prediction reads, as a :class:`TreeEnsemble` of
flat node arrays: no scikit-learn object survives ``fit``, a saved model is JSON, and every
path scores with the same compiled traversal (:func:`ensemble_margin`): ``predict_proba`` here,
the pool scorer in :mod:`recsys._kernels._trees`. Like the logistic model it scores both
directions of a pair (the own-network-size columns swapped) and combines them with
:func:`recsys.reciprocal`; no sensitive attribute is a feature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sklearn
from numba import njit
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.utils.validation import check_is_fitted

from recsys._features import FEATURE_NAMES, N_SYMMETRIC
from recsys._fitted import require_fitted
from recsys._reciprocal import ReciprocalScores

__all__ = [
    "DERIVED_NAMES",
    "GradientBoostedAcceptanceModel",
    "N_DERIVED",
    "TreeEnsemble",
    "ensemble_margin",
    "model_inputs",
]

#: Ratios of the pair features that a sum of trees cannot form from the columns one at a time
#: (a tree splits on one column per node): common contacts over the two network sizes (Salton's
#: cosine, the hub-promoted and hub-depressed indices), the product of the two sizes
#: (preferential attachment) and Adamic-Adar per common contact (how obscure the shared contacts
#: are). All are symmetric in the two members, so both directions read them the same.
DERIVED_NAMES = (
    "common_per_sqrt_degrees",
    "common_per_min_degree",
    "common_per_max_degree",
    "log_degree_product",
    "adamic_adar_per_common",
)
N_DERIVED = len(DERIVED_NAMES)

_AA = FEATURE_NAMES.index("log_adamic_adar")
_COMMON = FEATURE_NAMES.index("log_common_contacts")
_SELF, _OTHER = N_SYMMETRIC, N_SYMMETRIC + 1


# ------------------------------------------------------------------ compiled pieces
@njit(cache=True, nogil=True)
def _f32(x):
    return np.float64(np.float32(x))


@njit(cache=True, nogil=True)
def model_inputs(row, swap, derived, out):
    """Write the trees' inputs for one pair into ``out``: the :data:`recsys.FEATURE_NAMES` of
    ``row`` (seen from the other member when ``swap``: the own-network sizes exchanged), then,
    with ``derived``, the :data:`DERIVED_NAMES`, each rounded to float32 as the trees were fitted
    on them. Fitting, :meth:`GradientBoostedAcceptanceModel.predict_proba` and the pool scorer
    all call this one function, so the inputs are the same bits everywhere."""
    n = len(FEATURE_NAMES)
    for c in range(n):
        out[c] = row[c]
    if swap:
        out[_SELF] = row[_OTHER]
        out[_OTHER] = row[_SELF]
    if derived:
        common = np.expm1(np.float64(row[_COMMON]))
        du = np.expm1(np.float64(row[_SELF]))
        dv = np.expm1(np.float64(row[_OTHER]))
        lo = min(du, dv)
        hi = max(du, dv)
        out[n] = _f32(common / np.sqrt(du * dv) if lo > 0 else 0.0)
        out[n + 1] = _f32(common / lo if lo > 0 else 0.0)
        out[n + 2] = _f32(common / hi if hi > 0 else 0.0)
        out[n + 3] = _f32(np.float64(row[_SELF]) + np.float64(row[_OTHER]))
        out[n + 4] = _f32(np.expm1(np.float64(row[_AA])) / common if common > 0 else 0.0)


@njit(cache=True, nogil=True)
def ensemble_margin(x, trees):
    """The ensemble's raw prediction (log-odds) for one input row ``x``: the baseline plus one
    leaf value per tree, added in the trees' order as scikit-learn adds them. ``trees`` is
    :meth:`TreeEnsemble.arrays`.

    A node sends ``x`` left when ``x[feature] <= threshold``, and NaN to the side
    ``missing_left`` says (scikit-learn's rule for raw, unbinned data; ±inf compare as numbers).
    The left child of a node is the next node (scikit-learn's depth-first layout); ``feature``
    is -1 at a leaf."""
    roots, feature, threshold, right, missing_left, value, baseline = trees
    total = baseline
    for t in range(len(roots)):
        i = roots[t]
        while feature[i] >= 0:
            v = x[feature[i]]
            if v <= threshold[i] or (v != v and missing_left[i]):
                i += 1
            else:
                i = right[i]
        total += value[i]
    return total


@njit(cache=True, nogil=True)
def _inputs_matrix(features, swap, derived, out):
    row = np.empty(features.shape[1], dtype=np.float64)
    x = np.empty(out.shape[1], dtype=np.float64)
    for p in range(features.shape[0]):
        for c in range(features.shape[1]):
            row[c] = features[p, c]
        model_inputs(row, swap, derived, x)
        for c in range(out.shape[1]):
            out[p, c] = x[c]


@njit(cache=True, nogil=True)
def _margins(features, swap, derived, n_inputs, trees, out):
    row = np.empty(features.shape[1], dtype=np.float64)
    x = np.empty(n_inputs, dtype=np.float64)
    for p in range(features.shape[0]):
        for c in range(features.shape[1]):
            row[c] = features[p, c]
        model_inputs(row, swap, derived, x)
        out[p] = ensemble_margin(x, trees)


@njit(cache=True, nogil=True)
def _raw(x, trees, out):
    for p in range(x.shape[0]):
        out[p] = ensemble_margin(x[p], trees)


# ------------------------------------------------------------------ the trees as arrays
@dataclass(frozen=True)
class TreeEnsemble:
    """A fitted sum of regression trees as flat node arrays (all trees one after the other).

    Node ``i`` of tree ``t`` (``roots[t] <= i < roots[t + 1]``, the root first) is a leaf when
    ``feature[i] == -1``, worth ``value[i]`` (log-odds, learning rate included); otherwise it
    sends an input ``x`` to its left child ``i + 1`` when ``x[feature[i]] <= threshold[i]``
    (raw feature units), or when ``x[feature[i]]`` is NaN and ``missing_left[i]``, and else to
    ``right[i]``. The margin is ``baseline`` plus one leaf per tree.

    Attributes
    ----------
    roots : ndarray (T,) int64
        First node of each tree.
    feature : ndarray (N,) int64
        Split column, -1 at a leaf.
    threshold : ndarray (N,) float64
        Split threshold (0 at a leaf); +inf only where the training data had missing values
        (scikit-learn's split of NaN from everything else), which the acceptance model refuses.
    right : ndarray (N,) int64
        Right child (0 at a leaf); the left child is the next node.
    missing_left : ndarray (N,) bool
        Where NaN goes.
    value : ndarray (N,) float64
        Leaf value (scikit-learn's value at inner nodes, unused).
    baseline : float
        The margin before any tree (the log-odds of the training base rate).
    n_inputs : int
        Columns of the input rows.
    """

    roots: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    right: np.ndarray
    missing_left: np.ndarray
    value: np.ndarray
    baseline: float
    n_inputs: int

    _ARRAYS = ("roots", "feature", "threshold", "right", "missing_left", "value")
    _DTYPES = (np.int64, np.int64, np.float64, np.int64, np.bool_, np.float64)

    def __post_init__(self) -> None:
        for name, dtype in zip(self._ARRAYS, self._DTYPES):
            object.__setattr__(self, name, np.ascontiguousarray(getattr(self, name), dtype=dtype))
        object.__setattr__(self, "baseline", float(self.baseline))
        object.__setattr__(self, "n_inputs", int(self.n_inputs))
        self._check()

    def _check(self) -> None:
        """Refuse arrays a traversal could loop on or read outside of (a stored model is data
        from a file): every child lies after its parent and inside its own tree."""
        n = len(self.feature)
        if any(len(getattr(self, a)) != n for a in self._ARRAYS[1:]):
            raise ValueError("the tree arrays must all have one entry per node")
        if len(self.roots) == 0 or self.roots[0] != 0 or np.any(np.diff(self.roots) <= 0):
            raise ValueError("tree roots must start at node 0 and increase")
        if n <= self.roots[-1]:
            raise ValueError("the last tree has no nodes")
        # +inf: scikit-learn's split of the missing values from all others
        if np.isnan(self.threshold).any() or not np.isfinite(self.value).all():
            raise ValueError("tree thresholds must be numbers and leaf values finite")
        if not np.isfinite(self.baseline):
            raise ValueError("the baseline must be finite")
        end = np.append(self.roots[1:], n)[np.searchsorted(self.roots, np.arange(n), "right") - 1]
        inner = self.feature >= 0
        node = np.arange(n)
        if np.any(self.feature >= self.n_inputs) or np.any(self.feature < -1):
            raise ValueError(f"split features must be in [0, {self.n_inputs}) or -1 at a leaf")
        right = self.right[inner]
        # so every walk moves forward inside its tree and ends on a leaf
        if np.any(node[inner] + 1 >= end[inner]) or np.any(
            (right <= node[inner] + 1) | (right >= end[inner])
        ):
            raise ValueError("a split's children must follow it inside its own tree")

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    @property
    def max_depth(self) -> int:
        """Splits on the longest root-to-leaf path of any tree."""
        depth = np.zeros(len(self.feature), dtype=np.int64)
        for i in np.flatnonzero(self.feature >= 0):  # parents come before their children
            depth[i + 1] = depth[self.right[i]] = depth[i] + 1
        return int(depth.max())

    def arrays(self) -> tuple:
        """What the compiled traversal takes: ``(roots, feature, threshold, right,
        missing_left, value, baseline)``."""
        return (
            self.roots,
            self.feature,
            self.threshold,
            self.right,
            self.missing_left,
            self.value,
            self.baseline,
        )

    @classmethod
    def from_hist_gradient_boosting(cls, clf: HistGradientBoostingClassifier) -> TreeEnsemble:
        """The trees of a fitted binary ``HistGradientBoostingClassifier`` on numeric features.

        Reads scikit-learn's private predictor records (``_predictors``: one
        ``TreePredictor`` per iteration, whose ``nodes`` hold ``feature_idx``,
        ``num_threshold``, ``missing_go_to_left``, ``left``, ``right``, ``is_leaf`` and
        ``value``) and ``_baseline_prediction``; :class:`GradientBoostedAcceptanceModel`
        checks the copy against the classifier's own ``decision_function`` after every fit.
        """
        check_is_fitted(clf)
        if clf.n_trees_per_iteration_ != 1:
            raise ValueError("only a binary classifier's trees can be read")
        nodes = [predictors[0].nodes for predictors in clf._predictors]
        if any(record["is_categorical"].any() for record in nodes):
            raise ValueError("categorical splits are not supported: the pair features are numeric")
        sizes = np.array([len(record) for record in nodes], dtype=np.int64)
        roots = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        offset = np.repeat(roots, sizes)
        stacked = np.concatenate(nodes)
        leaf = stacked["is_leaf"].astype(bool)
        left = stacked["left"].astype(np.int64) + offset
        if np.any(left[~leaf] != np.flatnonzero(~leaf) + 1):
            raise ValueError(
                f"scikit-learn {sklearn.__version__} lays out its trees in another order "
                "(a left child that is not the next node)"
            )
        return cls(
            roots=roots,
            feature=np.where(leaf, -1, stacked["feature_idx"]),
            threshold=np.where(leaf, 0.0, stacked["num_threshold"]),
            right=np.where(leaf, 0, stacked["right"].astype(np.int64) + offset),
            missing_left=~leaf & (stacked["missing_go_to_left"] > 0),
            value=stacked["value"],
            baseline=float(np.ravel(clf._baseline_prediction)[0]),
            n_inputs=int(clf.n_features_in_),
        )

    def raw_predict(self, x: np.ndarray) -> np.ndarray:
        """The margin of each row of ``x`` (P, n_inputs): (P,) float64, as scikit-learn's
        ``decision_function``."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_inputs:
            raise ValueError(f"inputs must have shape (P, {self.n_inputs}), got {x.shape}")
        out = np.empty(len(x), dtype=np.float64)
        _raw(x, self.arrays(), out)
        return out

    def to_dict(self) -> dict:
        """Plain JSON: lists of numbers (strict JSON unless a threshold is +inf, which trees
        fitted without missing values never have)."""
        out = {name: getattr(self, name).tolist() for name in self._ARRAYS}
        out["missing_left"] = [int(b) for b in self.missing_left]
        out["baseline"] = self.baseline
        out["n_inputs"] = self.n_inputs
        return out

    @classmethod
    def from_dict(cls, stored: dict) -> TreeEnsemble:
        return cls(
            **{name: np.asarray(stored[name]) for name in cls._ARRAYS},
            baseline=stored["baseline"],
            n_inputs=stored["n_inputs"],
        )


# ------------------------------------------------------------------ the estimator
class GradientBoostedAcceptanceModel(ReciprocalScores, BaseEstimator):
    """Probability that a proposed pair connects, from gradient-boosted trees.

    scikit-learn's ``HistGradientBoostingClassifier`` (log-loss, histogram splits) on the
    :data:`recsys.FEATURE_NAMES` and, with ``derived_features``, the ratios in
    :data:`DERIVED_NAMES`. After fitting, the trees are copied into a :class:`TreeEnsemble`
    (checked against the classifier's own margins on the training rows) and the classifier is
    dropped: the model is stored as plain arrays and scored by one compiled traversal, here and
    in the pool scorer. The alternative to :class:`recsys.AcceptanceModel`
    (``IntroductionRecommender(acceptance="gradient_boosting")``); see ``benchmarks/RESULTS.md``
    ("Link prediction") for how the two compare.

    Parameters
    ----------
    max_iter : int
        Boosting iterations (trees), at most; early stopping may use fewer.
    learning_rate : float
        Shrinkage of each tree's leaf values.
    max_leaf_nodes : int
        Leaves per tree.
    max_depth : int or None
        Splits on any root-to-leaf path (None: only ``max_leaf_nodes`` bounds the trees). The
        cost of scoring a pair is about trees × depth node visits per direction.
    min_samples_leaf : int
        Training pairs per leaf, at least.
    l2_regularization : float
        L2 penalty on leaf values.
    early_stopping : bool
        Hold out ``validation_fraction`` of the training pairs and stop when the log-loss has
        not improved for ``n_iter_no_change`` iterations.
    validation_fraction : float
    n_iter_no_change : int
    derived_features : bool
        Add the :data:`DERIVED_NAMES` ratios to the trees' inputs.
    random_state : int
        Seed of the early-stopping split (the only random step).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, len(FEATURE_NAMES))).astype(np.float32)
    >>> y = (X[:, 0] + rng.normal(size=500) > 0).astype(int)
    >>> model = GradientBoostedAcceptanceModel(max_iter=20, early_stopping=False).fit(X, y)
    >>> p = model.predict_proba(X)
    >>> p.shape, p.dtype.name, model.trees_.n_trees
    ((500,), 'float32', 20)
    """

    #: Both labels, as scikit-learn classifiers expose them.
    classes_ = np.array([0, 1])

    def __init__(
        self,
        *,
        max_iter: int = 200,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        max_depth: int | None = 6,
        min_samples_leaf: int = 40,
        l2_regularization: float = 1.0,
        early_stopping: bool = True,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        derived_features: bool = True,
        random_state: int = 0,
    ):
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.derived_features = derived_features
        self.random_state = random_state

    @property
    def input_names(self) -> tuple[str, ...]:
        """The trees' input columns: the pair features, then the derived ratios if used."""
        return FEATURE_NAMES + (DERIVED_NAMES if self.derived_features else ())

    def fit(
        self, features: np.ndarray, labels: np.ndarray, *, sample_weight: np.ndarray | None = None
    ) -> GradientBoostedAcceptanceModel:
        """Fit on ``features`` (P, len(FEATURE_NAMES)) seen from the first member and 0/1
        ``labels`` (P,); returns ``self``."""
        features = _check_features(features)
        labels = np.asarray(labels)
        if labels.shape != (len(features),):
            raise ValueError(f"labels must have shape ({len(features)},), got {labels.shape}")
        if not np.isfinite(features).all():
            # the trees would learn where missing values go and split on them with an infinite
            # threshold; the pair features are always finite, so a non-finite one is a bug
            raise ValueError("features must be finite (no NaN or inf)")
        if len(np.unique(labels)) < 2:
            raise ValueError(
                "the acceptance model needs both accepted and not-accepted pairs to learn from"
            )
        inputs = self._inputs(features, swap=False)
        clf = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            early_stopping=self.early_stopping,
            validation_fraction=self.validation_fraction,
            n_iter_no_change=self.n_iter_no_change,
            categorical_features=None,
            random_state=self.random_state,
        )
        clf.fit(inputs, labels, sample_weight=sample_weight)
        trees = TreeEnsemble.from_hist_gradient_boosting(clf)
        # the copy must predict what the classifier predicts: this reads private scikit-learn
        # structures, so a change in them fails here, at fit time, not silently in ranking
        check = inputs[:: max(1, len(inputs) // 5000)]
        if not np.array_equal(trees.raw_predict(check), clf.decision_function(check)):
            raise RuntimeError(
                f"the trees copied from scikit-learn {sklearn.__version__} do not reproduce its "
                "predictions; this version's tree layout is not supported"
            )
        self.trees_ = trees
        self.n_iter_ = int(clf.n_iter_)
        return self

    def _inputs(self, features: np.ndarray, *, swap: bool) -> np.ndarray:
        out = np.empty((len(features), len(self.input_names)), dtype=np.float32)
        if len(features):
            _inputs_matrix(features, swap, self.derived_features, out)
        return out

    def margins(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The log-odds of acceptance seen from each side of each pair: two (P,) float64.

        ``features`` (P, len(FEATURE_NAMES)) are seen from the first member; the second
        direction swaps the two own-network sizes (:func:`recsys._features.swap_direction`)."""
        require_fitted(self, "trees_")
        features = _check_features(features)
        d_uv = np.empty(len(features), dtype=np.float64)
        d_vu = np.empty(len(features), dtype=np.float64)
        if len(features):
            args = (self.derived_features, len(self.input_names), self.trees_.arrays())
            _margins(features, False, *args, d_uv)
            _margins(features, True, *args, d_vu)
        return d_uv, d_vu

    def decision_function(self, features: np.ndarray) -> np.ndarray:
        """(P,) float64 log-odds of acceptance, seen from the first member."""
        require_fitted(self, "trees_")
        features = _check_features(features)
        out = np.empty(len(features), dtype=np.float64)
        if len(features):
            args = (self.derived_features, len(self.input_names), self.trees_.arrays())
            _margins(features, False, *args, out)
        return out

    _both_directions = margins

    def to_dict(self) -> dict:
        """Plain JSON: the parameters, the input names and the trees' arrays."""
        require_fitted(self, "trees_")
        return {
            "kind": "gradient_boosting",
            "features": list(FEATURE_NAMES),
            "inputs": list(self.input_names),
            "params": self.get_params(),
            "n_iter": self.n_iter_,
            "trees": self.trees_.to_dict(),
        }

    @classmethod
    def from_dict(cls, stored: dict) -> GradientBoostedAcceptanceModel:
        """Rebuild from :meth:`to_dict` output."""
        if stored.get("kind") != "gradient_boosting":
            raise ValueError(f"not a gradient-boosted acceptance model: {stored.get('kind')!r}")
        if stored.get("features") != list(FEATURE_NAMES):
            raise ValueError(
                "the stored acceptance model was fitted on other features than this build computes"
            )
        model = cls(**stored["params"])
        if stored.get("inputs") != list(model.input_names):
            raise ValueError("the stored trees read other inputs than this build derives")
        model.trees_ = TreeEnsemble.from_dict(stored["trees"])
        if model.trees_.n_inputs != len(model.input_names):
            raise ValueError("the stored trees read another number of inputs than they name")
        model.n_iter_ = int(stored["n_iter"])
        return model


def _check_features(features: np.ndarray) -> np.ndarray:
    features = np.ascontiguousarray(features, dtype=np.float32)
    if features.ndim != 2 or features.shape[1] != len(FEATURE_NAMES):
        raise ValueError(
            f"features must have shape (P, {len(FEATURE_NAMES)}), got {features.shape}"
        )
    return features

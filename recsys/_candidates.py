"""Candidate sources: who could a member meet? Each proposes a few hundred members per member.

Every source is a scikit-learn-style estimator: ``fit(network)`` learns from the training network
and ``candidates(member_rows, n)`` returns, for a batch of members, ``(ids, scores)`` arrays of
shape ``(R, n)`` (ids int32 padded with -1, scores float32 padded with -inf), best first. A source
never proposes the member themself, an existing connection, or a member who opted out of
introductions (``open_to_intros`` false).
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.preprocessing import normalize

from recsys import _kernels
from recsys._fitted import require_fitted
from recsys.data import Network

__all__ = [
    "AdamicAdarCandidates",
    "InterestOverlapCandidates",
    "ALSCandidates",
    "PersonalizedPageRankCandidates",
    "merge_pools",
    "SOURCE_BITS",
    "topn_triplets",
    "middle_members",
]

logger = logging.getLogger(__name__)

#: With ``index="auto"``, networks larger than this use the IVF index instead of exact search.
AUTO_ANN_MEMBERS = 50_000

#: Bit flag per source in the merged pool's ``sources`` array.
SOURCE_BITS = {"adamic_adar": 1, "interests": 2, "als": 4, "ppr": 8}


def _as_rows(member_rows: np.ndarray | int) -> np.ndarray:
    return np.atleast_1d(np.asarray(member_rows, dtype=np.int64))


def topn_triplets(
    row: np.ndarray, col: np.ndarray, score: np.ndarray, *, n_rows: int, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``n`` columns per row from ``(row, col, score)`` triplets, ties kept in input order.

    Returns ``ids`` (n_rows, n) int32 padded with -1 and ``scores`` (n_rows, n) float32 padded
    with -inf. Triplets must not repeat a (row, col) pair.
    """
    ids = np.full((n_rows, n), -1, dtype=np.int32)
    scores = np.full((n_rows, n), -np.inf, dtype=np.float32)
    if len(row) == 0 or n == 0:
        return ids, scores
    # one stable float64 sort on "row, then descending score" is ~15x faster than a lexsort of
    # the two: float32 scores scaled into [0, 1) keep their order within float64's precision
    score64 = score.astype(np.float64)
    lo, hi = score64.min(), score64.max()
    scaled = (score64 - lo) / (hi - lo) * 0.5 if hi > lo else np.zeros_like(score64)
    order = np.argsort(row.astype(np.float64) - scaled, kind="stable")
    row_s = row[order]
    starts = np.searchsorted(row_s, np.arange(n_rows))
    rank = np.arange(len(order)) - starts[row_s]
    keep = rank < n
    ids[row_s[keep], rank[keep]] = col[order][keep]
    scores[row_s[keep], rank[keep]] = score[order][keep]
    return ids, scores


class _Source(BaseEstimator):
    """Shared exclusion logic; subclasses set ``adjacency_`` and ``eligible_`` in ``fit``."""

    def _fit_exclusions(self, network: Network) -> None:
        adjacency = network.adjacency.tocsr()
        if not adjacency.has_sorted_indices:  # the kernels binary-search connections
            adjacency = adjacency.sorted_indices()
        self.adjacency_ = adjacency
        self.eligible_ = network.bool_attribute("open_to_intros", default=True)
        self.n_members_ = network.n_members

    def _keep(self, rows: np.ndarray, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Mask of triplets (batch row r, member c) that may be proposed."""
        return _kernels.keep_pairs(rows, r, c, self.adjacency_, self.eligible_)


class AdamicAdarCandidates(_Source):
    """Friends of friends, scored by Adamic-Adar or resource allocation over the adjacency.

    ``AA(u, v) = Σ_{w ∈ N(u) ∩ N(v)} 1 / log |N(w)|`` (Adamic & Adar 2003);
    ``RA(u, v) = Σ_w 1 / |N(w)|`` (Zhou, Lü & Zhang 2009). Computed for a batch as one sparse
    product ``A[rows] · diag(weight) · A``.

    With ``three_hop_weight = ε > 0`` the score becomes ``AA(u, v) + ε · (A³)[u, v]``: friends
    of friends' friends join the pool, in the manner of the local path index (Lü, Jin & Zhou
    2009). In sparse networks half of the new connections join members with no common contact;
    on the Deezer set ε = 0.03 lifts the recall of a 300-member pool from 0.47 to 0.58. With
    ``three_hop_middles = M > 0`` the walks go on only from the M two-hop members reached by the
    most two-step walks (ties in traversal order), which bounds the work per member in dense
    networks.

    Examples
    --------
    >>> from recsys import synthetic_network
    >>> net = synthetic_network(300, seed=0)
    >>> ids, scores = AdamicAdarCandidates().fit(net).candidates([0, 1], n=5)
    >>> ids.shape, ids.dtype.name, scores.dtype.name
    ((2, 5), 'int32', 'float32')
    """

    def __init__(
        self,
        *,
        weighting: Literal["adamic_adar", "resource_allocation"] = "adamic_adar",
        three_hop_weight: float = 0.0,
        three_hop_middles: int = 0,
    ):
        self.weighting = weighting
        self.three_hop_weight = three_hop_weight
        self.three_hop_middles = three_hop_middles

    def fit(self, network: Network) -> AdamicAdarCandidates:
        if self.weighting not in ("adamic_adar", "resource_allocation"):
            raise ValueError(f"unknown weighting {self.weighting!r}")
        self._fit_exclusions(network)
        self.hop_weights_ = hop_weights(network.degrees, weighting=self.weighting).astype(
            np.float64
        )
        self.middle_ok_ = middle_members(network.degrees)
        return self

    def candidates(self, member_rows, n: int) -> tuple[np.ndarray, np.ndarray]:
        require_fitted(self, "hop_weights_")
        rows = _as_rows(member_rows)
        a = self.adjacency_
        return _kernels.graph_topn(
            rows,
            a.indptr,
            a.indices,
            self.hop_weights_,
            self.middle_ok_,
            self.eligible_,
            float(self.three_hop_weight),
            n,
            max_expand=int(self.three_hop_middles),
        )


#: Walks of length three skip middle members with more connections than this: one very popular
#: contact would otherwise make a member's three-hop row as large as the network. Deezer's most
#: connected member has 172, so there nothing changes.
MAX_MIDDLE_DEGREE = 200


def middle_members(degrees: np.ndarray) -> np.ndarray:
    """Members who may be the middle of a walk of length three: at most :data:`MAX_MIDDLE_DEGREE`
    connections.
    """
    return np.asarray(degrees) <= MAX_MIDDLE_DEGREE


def hop_weights(degrees: np.ndarray, *, weighting: str = "adamic_adar") -> np.ndarray:
    """Weight of a common neighbour w: ``1/log deg(w)`` (AA) or ``1/deg(w)`` (RA); 0 below degree
    2.
    """
    degrees = np.asarray(degrees, dtype=np.float64)
    weights = np.zeros_like(degrees, dtype=np.float32)
    ok = degrees >= 2
    weights[ok] = 1.0 / (np.log(degrees[ok]) if weighting == "adamic_adar" else degrees[ok])
    return weights


class PersonalizedPageRankCandidates(_Source):
    """Members a random walk from the member often reaches: personalized PageRank by a local push.

    ``π_u = α Σ_k (1 − α)^k e_u W^k`` over the random walk ``W = D⁻¹A`` (teleport probability
    ``alpha``), approximated by the push of Andersen, Chung & Lang (FOCS 2006) down to residuals
    below ``epsilon × deg``: every estimate is under the true value by at most
    ``epsilon × deg(v)``, and one member costs at most ``1 / (alpha × epsilon)`` connections
    scanned beyond their two-hop neighbourhood (which is always pushed), whatever the size of the
    network. Unlike friends of friends it reaches past three hops and weighs every path by how
    likely a walk is to take it.

    Candidates are ranked by ``π_u[v]`` (``normalize="none"``) or ``π_u[v] / deg(v)``
    (``"degree"``, which in an undirected graph equals ``π_v[u] / deg(u)``: the walk from the
    candidate back to the member, so popular members no longer collect every walk). New
    connections go to well-connected members more often than walks do, and ``"none"`` recalls
    more: 0.64 against 0.59 of Deezer's held-out connections in the top 300, 0.75 against 0.62 of
    Facebook100's (benchmarks/RESULTS.md, "Link prediction (issue 18)", pool recall).

    Examples
    --------
    >>> from recsys import synthetic_network
    >>> net = synthetic_network(300, seed=0)
    >>> ids, scores = PersonalizedPageRankCandidates().fit(net).candidates([0, 1], n=5)
    >>> ids.shape, ids.dtype.name, scores.dtype.name
    ((2, 5), 'int32', 'float32')
    """

    def __init__(
        self,
        *,
        alpha: float = 0.15,
        epsilon: float = 1e-4,
        normalize: Literal["none", "degree"] = "none",
    ):
        self.alpha = alpha
        self.epsilon = epsilon
        self.normalize = normalize

    def fit(self, network: Network) -> PersonalizedPageRankCandidates:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if not self.epsilon > 0:
            raise ValueError(f"epsilon must be positive, got {self.epsilon}")
        if self.normalize not in ("none", "degree"):
            raise ValueError(f"normalize must be 'none' or 'degree', got {self.normalize!r}")
        self._fit_exclusions(network)
        return self

    def candidates(self, member_rows, n: int) -> tuple[np.ndarray, np.ndarray]:
        require_fitted(self, "eligible_")
        rows = _as_rows(member_rows)
        a = self.adjacency_
        return _kernels.ppr_topn(
            rows,
            a.indptr,
            a.indices,
            self.eligible_,
            self.alpha,
            self.epsilon,
            n,
            by_degree=self.normalize == "degree",
        )

    def pair_scores(self, u, v) -> np.ndarray:
        """The score :meth:`candidates` ranks by, for given pairs of member rows: float32 of the
        shape of ``u`` and ``v``, 0 where the push from ``u[i]`` does not reach ``v[i]``. One push
        per distinct ``u``; no exclusions (a connection gets its score too).

        Examples
        --------
        >>> from recsys import synthetic_network
        >>> src = PersonalizedPageRankCandidates().fit(synthetic_network(300, seed=0))
        >>> ids, scores = src.candidates([4], n=3)
        >>> bool(np.allclose(src.pair_scores(np.full(3, 4), ids[0]), scores[0]))
        True
        """
        require_fitted(self, "eligible_")
        u = np.asarray(u, dtype=np.int64)
        v = np.asarray(v, dtype=np.int64)
        for name, rows in (("u", u), ("v", v)):
            if rows.size and (rows.min() < 0 or rows.max() >= self.n_members_):
                raise ValueError(f"{name} holds rows outside 0..{self.n_members_ - 1}")
        a = self.adjacency_
        return _kernels.ppr_pair_scores(
            u,
            v,
            a.indptr,
            a.indices,
            self.alpha,
            self.epsilon,
            by_degree=self.normalize == "degree",
        ).astype(np.float32)


def tfidf_interests(member_interests: sp.csr_matrix) -> sp.csr_matrix:
    """Rarity-weighted, L2-normalised member × interest matrix (scikit-learn's smoothed TF-IDF).

    Weights are log-damped (``sublinear_tf``) so a play count of 100 does not swamp the rest.
    """
    if member_interests.shape[1] == 0:
        return member_interests.astype(np.float32).tocsr()
    transformer = TfidfTransformer(sublinear_tf=True)
    return transformer.fit_transform(member_interests).astype(np.float32).tocsr()


class InterestOverlapCandidates(_Source):
    """Members who share rare interests: cosine of TF-IDF-weighted member × interest rows.

    Serves members with no connections yet (cold start). Interests liked by more than ``max_df``
    of members, or more than ``max_members`` members, are too common to single anyone out and are
    not used to propose (they still count in the pair features).
    """

    def __init__(self, *, max_df: float = 0.05, max_members: int = 2000):
        self.max_df = max_df
        self.max_members = max_members

    def fit(self, network: Network) -> InterestOverlapCandidates:
        if not 0 < self.max_df <= 1:
            raise ValueError(f"max_df must be in (0, 1], got {self.max_df}")
        self._fit_exclusions(network)
        weighted = tfidf_interests(network.member_interests)
        df = np.diff(weighted.tocsc().indptr)
        limit = min(self.max_df * network.n_members, self.max_members)
        usable = (df >= 2) & (df <= limit)
        self.usable_interests_ = usable
        self.weighted_ = (weighted @ sp.diags(usable.astype(np.float32))).tocsr()
        self.weighted_.eliminate_zeros()
        self.interest_members_ = self.weighted_.T.tocsr()
        return self

    def candidates(self, member_rows, n: int) -> tuple[np.ndarray, np.ndarray]:
        require_fitted(self, "weighted_")
        rows = _as_rows(member_rows)
        return _kernels.interest_topn(
            rows, self.weighted_, self.interest_members_, self.adjacency_, self.eligible_, n
        )

    def candidates_for_interests(
        self, interest_weights: sp.csr_matrix, n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cold start: candidates for members described only by interest rows (R, m), raw
        weights.
        """
        require_fitted(self, "weighted_")
        if interest_weights.shape[1] != self.weighted_.shape[1]:
            raise ValueError("interest_weights must have one column per known interest")
        query = normalize(
            interest_weights.astype(np.float32).multiply(self.usable_interests_[None, :]).tocsr()
        )
        sims = (query @ self.interest_members_).tocoo()
        keep = self.eligible_[sims.col] & (sims.data > 0)
        return topn_triplets(
            sims.row[keep],
            sims.col[keep].astype(np.int32),
            sims.data[keep].astype(np.float32),
            n_rows=query.shape[0],
            n=n,
        )


class ALSCandidates(_Source):
    """Shared taste through implicit's ALS: members as rows of the member × interest matrix.

    Member embeddings are L2-normalised; candidates are the nearest members by inner product,
    found exactly (batched matrix products, for small networks) or through a faiss index
    (approximate, for large ones): an inverted file (``ivf``, the default above
    :data:`AUTO_ANN_MEMBERS` members with ``index="auto"``) or HNSW (``hnsw``).

    The inverted file probes ``ivf_probe_share`` of its √n cells (at least 8): at a million
    members 2 % (20 of 1,000 cells) finds 0.96 of the exact top 200 in 0.8 ms a query, 4 % finds
    0.98 in 1.2 ms (benchmarks/RESULTS.md, "Member search index").
    """

    def __init__(
        self,
        *,
        factors: int = 32,
        iterations: int = 15,
        regularization: float = 0.05,
        alpha: float = 2.0,
        index: Literal["auto", "exact", "hnsw", "ivf"] = "auto",
        hnsw_m: int = 32,
        hnsw_ef_search: int = 128,
        ivf_probe_share: float = 0.02,
        random_state: int | None = 0,
    ):
        self.factors = factors
        self.iterations = iterations
        self.regularization = regularization
        self.alpha = alpha
        self.index = index
        self.hnsw_m = hnsw_m
        self.hnsw_ef_search = hnsw_ef_search
        self.ivf_probe_share = ivf_probe_share
        self.random_state = random_state

    def fit(self, network: Network) -> ALSCandidates:
        self._fit_exclusions(network)
        self.member_factors_ = fit_als_factors(
            network.member_interests,
            factors=self.factors,
            iterations=self.iterations,
            regularization=self.regularization,
            alpha=self.alpha,
            random_state=self.random_state,
        )
        self._build_index()
        return self

    def set_factors(
        self, network: Network, member_factors: np.ndarray, index_bytes: np.ndarray | None = None
    ) -> ALSCandidates:
        """Restore a fitted source from stored arrays (a saved model)."""
        self._fit_exclusions(network)
        self.member_factors_ = np.ascontiguousarray(member_factors, dtype=np.float32)
        self._build_index(index_bytes)
        return self

    def _build_index(self, index_bytes: np.ndarray | None = None) -> None:
        self.has_factors_ = np.linalg.norm(self.member_factors_, axis=1) > 0
        self.index_ = None
        if self.index not in ("auto", "exact", "hnsw", "ivf"):
            raise ValueError(f"index must be 'auto', 'exact', 'hnsw' or 'ivf', got {self.index!r}")
        kind = self.index
        if kind == "auto":
            kind = "ivf" if len(self.member_factors_) > AUTO_ANN_MEMBERS else "exact"
        if kind == "exact":
            return
        try:  # faiss is the optional `ann` extra: a library user who only trains may not have it
            import faiss
        except ImportError:
            if self.index == "auto" and index_bytes is None:
                logger.warning(
                    "faiss is not installed (pip install 'plusone[ann]'): searching %d members "
                    "exactly, which is slower above %d",
                    len(self.member_factors_),
                    AUTO_ANN_MEMBERS,
                )
                return
            raise ImportError(
                f"the {kind} member index needs faiss: pip install 'plusone[ann]'"
            ) from None

        dim = self.member_factors_.shape[1]
        if index_bytes is not None:
            self.index_ = faiss.deserialize_index(index_bytes)
        elif kind == "hnsw":
            self.index_ = faiss.IndexHNSWFlat(dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            self.index_.add(self.member_factors_)
        else:
            # inverted file: k-means cells, a share of them probed per query; it builds in seconds
            # at a million members where HNSW took minutes on this 2-core machine (measured)
            n_lists = max(
                1, min(int(np.sqrt(len(self.member_factors_))), len(self.member_factors_) // 39)
            )
            self.index_ = faiss.IndexIVFFlat(
                faiss.IndexFlatIP(dim), dim, n_lists, faiss.METRIC_INNER_PRODUCT
            )
            threads = faiss.omp_get_max_threads()
            # deterministic k-means: the same seed gives the same cells
            faiss.omp_set_num_threads(1)
            try:
                self.index_.cp.seed = int(self.random_state or 0)
                # k-means on a sample: seconds, not minutes
                self.index_.cp.max_points_per_centroid = 64
                self.index_.train(self.member_factors_)
                self.index_.add(self.member_factors_)
            finally:
                faiss.omp_set_num_threads(threads)
        if hasattr(self.index_, "hnsw"):
            self.index_.hnsw.efSearch = self.hnsw_ef_search
        if hasattr(self.index_, "nprobe"):
            self.index_.nprobe = max(8, int(np.ceil(self.ivf_probe_share * self.index_.nlist)))

    def index_bytes(self) -> np.ndarray | None:
        if self.index_ is None:
            return None
        import faiss

        return faiss.serialize_index(self.index_)

    def candidates(self, member_rows, n: int) -> tuple[np.ndarray, np.ndarray]:
        require_fitted(self, "member_factors_")
        rows = _as_rows(member_rows)
        # ask for more than n: the member, their connections and opted-out members are dropped
        # after.
        # 2n + 1 is enough for most; the few whose exclusions leave fewer than n ask again with
        # room
        # for all their connections (asking every member for the batch's largest degree doubled
        # the search time at a million members)
        sims, ids = self._search(rows, min(self.n_members_, 2 * n + 1))
        keep = self._keep_found(rows, ids)
        short = np.flatnonzero((keep.sum(axis=1) < n) & (ids[:, -1] >= 0))
        if len(short) and ids.shape[1] < self.n_members_:
            degrees = self.adjacency_.indptr[rows[short] + 1] - self.adjacency_.indptr[rows[short]]
            more_sims, more_ids = self._search(
                rows[short], min(self.n_members_, max(2 * n + 1, n + 1 + int(degrees.max())))
            )
            width = more_ids.shape[1]
            sims = np.pad(sims, ((0, 0), (0, width - sims.shape[1])), constant_values=-np.inf)
            ids = np.pad(ids, ((0, 0), (0, width - ids.shape[1])), constant_values=-1)
            sims[short], ids[short] = more_sims, more_ids
            keep = np.pad(keep, ((0, 0), (0, width - keep.shape[1])), constant_values=False)
            keep[short] = self._keep_found(
                rows[short], more_ids
            )  # the other rows' results are unchanged
        # the search returns each list best first: the first n kept are the top n
        place = np.cumsum(keep, axis=1) - 1
        r, j = np.nonzero(keep & (place < n))
        out_ids = np.full((len(rows), n), -1, dtype=np.int32)
        out_scores = np.full((len(rows), n), -np.inf, dtype=np.float32)
        out_ids[r, place[r, j]] = ids[r, j]
        out_scores[r, place[r, j]] = sims[r, j]
        return out_ids, out_scores

    def _search(self, rows: np.ndarray, want: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``want`` nearest members of each row by inner product, best first (ids -1
        padded).
        """
        queries = self.member_factors_[rows]
        if self.index_ is not None:
            return self.index_.search(queries, want)
        return _exact_inner_product_topn(queries, self.member_factors_, want)

    def _keep_found(self, rows: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """(R, W) mask of the search results that may be proposed."""
        r, j = np.nonzero(ids >= 0)
        c = ids[r, j]
        keep = np.zeros(ids.shape, dtype=bool)
        keep[r, j] = self._keep(rows, r, c) & self.has_factors_[c] & self.has_factors_[rows[r]]
        return keep


def fit_als_factors(
    member_interests: sp.csr_matrix,
    *,
    factors: int,
    iterations: int,
    regularization: float,
    alpha: float,
    random_state: int | None,
) -> np.ndarray:
    """L2-normalised member factors (n, factors) float32 from implicit's CPU ALS; zeros for members
    with no interests.
    """
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    n = member_interests.shape[0]
    if member_interests.nnz == 0:
        return np.zeros((n, factors), dtype=np.float32)
    # implicit asks for single-threaded BLAS: its own threads do the parallel work
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=factors,
            iterations=iterations,
            regularization=regularization,
            alpha=alpha,
            random_state=random_state,
            calculate_training_loss=False,
        )
        confidence = member_interests.copy().astype(np.float32)
        confidence.data = np.log1p(confidence.data)
        model.fit(confidence, show_progress=False)
    vectors = np.asarray(model.user_factors, dtype=np.float32)
    vectors[np.diff(member_interests.indptr) == 0] = 0.0
    return normalize(vectors).astype(np.float32)


def _exact_inner_product_topn(queries: np.ndarray, base: np.ndarray, n: int, chunk: int = 512):
    """Exact top-n by inner product, in chunks so memory stays ``chunk × len(base)``."""
    n = min(n, len(base))
    all_ids = np.empty((len(queries), n), dtype=np.int64)
    all_sims = np.empty((len(queries), n), dtype=np.float32)
    for start in range(0, len(queries), chunk):
        sims = queries[start : start + chunk] @ base.T
        part = np.argpartition(-sims, n - 1, axis=1)[:, :n]
        part_sims = np.take_along_axis(sims, part, axis=1)
        order = np.argsort(-part_sims, axis=1, kind="stable")
        all_ids[start : start + chunk] = np.take_along_axis(part, order, axis=1)
        all_sims[start : start + chunk] = np.take_along_axis(part_sims, order, axis=1)
    return all_sims, all_ids


def merge_pools(
    sources: dict[str, tuple[np.ndarray, np.ndarray]], *, pool_size: int, rrf_k: float = 60.0
) -> tuple[np.ndarray, np.ndarray]:
    """Merge per-source candidates into one pool per member, keeping who proposed each pair.

    Pairs are ordered by reciprocal-rank fusion (Cormack, Clarke & Büttcher 2009),
    ``Σ_s 1 / (rrf_k + rank_s)``, and cut to ``pool_size``.

    Returns
    -------
    ids : ndarray (R, pool_size) int32, padded with -1
    source_bits : ndarray (R, pool_size) uint8, OR of :data:`SOURCE_BITS` of the proposing sources
    """
    if not sources:
        raise ValueError("at least one candidate source is needed")
    lists, weights, bits = [], [], []
    for name, (ids, _) in sources.items():
        lists.append(np.asarray(ids, dtype=np.int64))
        weights.append(1.0 / (rrf_k + np.arange(ids.shape[1]) + 1.0))
        bits.append(np.full(ids.shape[1], SOURCE_BITS[name], dtype=np.uint8))
    side_by_side = np.ascontiguousarray(np.hstack(lists))
    n_members = int(side_by_side.max(initial=-1)) + 1
    return _kernels.merge_rrf(
        side_by_side, np.concatenate(weights), np.concatenate(bits), max(n_members, 1), pool_size
    )

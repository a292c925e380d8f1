"""Pair features of all of a batch of brokers' contacts from block products.

A chunk of brokers is laid out as contact *slots* (:class:`Chunk`); every product of the
contacts' rows is block-diagonal over the brokers, so brokers never mix. :func:`block_overlaps`
finds the raw overlaps of every candidate pair (the columns of
:data:`recsys._features.OVERLAP_COLUMNS`) and :func:`block_features` maps them through the one
feature table, :func:`recsys._features.features_from_overlaps`.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys._features import features_from_overlaps
from recsys._scoring import PairFeatures

__all__ = ["Chunk", "block_features", "chunks"]

# up to this many contact slots in a chunk, embedding similarities come from one D x D product
_DENSE_SLOTS = 2048


def block_features(
    chunk: Chunk,
    features: PairFeatures,
    *,
    aa_weight: np.ndarray,
    ra_weight: np.ndarray,
    l3_weight: np.ndarray,
) -> np.ndarray:
    """Pair features (P, len(FEATURE_NAMES)) float32 of the chunk's pairs ``(a, b)``, seen from
    ``a``: the same values :meth:`recsys.PairFeatures.transform` gives, from block products.

    ``aa_weight``, ``ra_weight`` and ``l3_weight`` are each member's weight as a common contact
    (Adamic-Adar, resource allocation) and as the middle of a walk of length three (1/√deg).
    """
    si, sj = chunk.si, chunk.sj
    a, b = chunk.contacts[si], chunk.contacts[sj]
    # S': each contact's neighbours other than their broker, columns keyed (broker, member) so
    # that brokers never mix. The broker is every pair's common contact: added back per broker.
    s = chunk.other_neighbours()
    st = s.T.tocsr()
    h = chunk.brokers[chunk.local]
    common, aa, ra = chunk.common_neighbours(s, st, [None, aa_weight, ra_weight])
    cosine, shared = chunk.interest_overlaps(features.interest_weights)
    overlaps = np.column_stack(
        [
            aa.astype(np.float64) + aa_weight[h],
            ra.astype(np.float64) + ra_weight[h],
            common.astype(np.float64) + 1.0,
            chunk.walks3(s, st),
            shared,
            cosine,
            chunk.walks3(s, st, weights=l3_weight),
        ]
    )
    factors = features.member_factors
    if len(chunk.contacts) <= _DENSE_SLOTS:
        fc = factors[chunk.contacts]
        embed = (fc @ fc.T)[si, sj]
    else:
        embed = np.einsum("ij,ij->i", factors[a], factors[b])
    has_interests = np.diff(features.member_interests.indptr) > 0
    return features_from_overlaps(
        overlaps,
        embedding_similarity=embed,
        degree_u=features.degrees[a],
        degree_v=features.degrees[b],
        same_community=features.communities[a] == features.communities[b],
        both_have_interests=has_interests[a] & has_interests[b],
    )


def chunks(degrees: np.ndarray, max_pairs: int) -> list[np.ndarray]:
    """Positions of brokers grouped so that each group has about ``max_pairs`` candidate pairs (a
    bigger broker alone).
    """
    pairs = np.asarray(degrees, dtype=np.int64)
    pairs = np.where(pairs >= 2, pairs * (pairs - 1) // 2, 0)
    order = np.flatnonzero(pairs > 0)
    if len(order) == 0:
        return []
    group = np.cumsum(pairs[order]) // max(int(max_pairs), 1)
    # contiguous runs of equal group id; a broker bigger than the budget starts (and ends) its own
    # group
    cuts = np.flatnonzero(np.diff(group) > 0) + 1
    return np.split(order, cuts)


@functools.lru_cache(maxsize=512)
def _triu(d: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(d, 1)
    i, j = i.astype(np.int64), j.astype(np.int64)
    i.flags.writeable = False  # shared by every call for this degree
    j.flags.writeable = False
    return i, j


def _slot_pairs(d: np.ndarray, off: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of contact slots within each broker, ``si < sj``: one ``triu_indices`` per
    distinct degree.
    """
    if (
        len(d) == 1 and d[0] >= 2 and off[0] == 0
    ):  # one broker: the cached triangle itself (read-only)
        i, j = _triu(int(d[0]))
        return i, j, np.zeros(len(i), dtype=np.int64)
    si, sj, local = [], [], []
    for g in np.unique(d[d >= 2]):  # distinct degrees, not brokers
        brokers = np.flatnonzero(d == g)
        i, j = _triu(int(g))
        base = off[brokers][:, None]
        si.append((base + i).ravel())
        sj.append((base + j).ravel())
        local.append(np.repeat(brokers, len(i)))
    if not si:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return np.concatenate(si), np.concatenate(sj), np.concatenate(local)


class Chunk:
    """A chunk of brokers laid out as contact *slots*: broker r's contacts are slots
    ``off[r]:off[r+1]``.

    Pairs are slot pairs ``(si, sj)``, ``si < sj``, within one broker (``local``). Every matrix
    here is slot × something with its columns keyed (broker, column), so products of them are
    block-diagonal: brokers never mix. A product is read through ``cell``, each pair's place in
    the flat array of all the brokers' ``d_r × d_r`` blocks (a scatter and a gather, no sort).
    """

    def __init__(
        self,
        adjacency: sp.csr_matrix,
        brokers: np.ndarray,
        *,
        upper: sp.csr_matrix | None = None,
        middle: np.ndarray | None = None,
    ):
        self.adjacency = adjacency
        self.upper = (
            upper  # upper triangle of the edges walks of length three may use in the middle
        )
        self.middle = np.ones(adjacency.shape[0], dtype=bool) if middle is None else middle
        self.n = adjacency.shape[0]
        self.brokers = brokers
        indptr = adjacency.indptr
        self.d = d = (indptr[brokers + 1] - indptr[brokers]).astype(np.int64)
        self.off = off = np.zeros(len(brokers) + 1, dtype=np.int64)
        np.cumsum(d, out=off[1:])
        self.base = np.zeros(len(brokers) + 1, dtype=np.int64)
        np.cumsum(d * d, out=self.base[1:])
        n_slots = int(off[-1])
        self.contacts = adjacency.indices[_ranges(indptr[brokers].astype(np.int64), d)].astype(
            np.int64
        )
        self.slot_broker = np.repeat(np.arange(len(brokers)), d)
        self.sub = adjacency[self.contacts]  # the contacts' own rows
        # every entry (slot a, member x) of those rows, and whether x is a contact of the same
        # broker (then at slot `at`)
        self.entry_slot = np.repeat(np.arange(n_slots, dtype=np.int64), np.diff(self.sub.indptr))
        self.entry_keys = self.slot_broker[self.entry_slot] * self.n + self.sub.indices
        contact_keys = (
            self.slot_broker * self.n + self.contacts
        )  # sorted: brokers in order, contacts sorted within
        at = np.minimum(np.searchsorted(contact_keys, self.entry_keys), max(n_slots - 1, 0))
        self.entry_is_contact = (
            contact_keys[at] == self.entry_keys if n_slots else np.zeros(0, bool)
        )
        self.entry_at = at
        # |N(a) ∩ C| counting only contacts who may be the middle of a walk of length three
        middle_contact = self.entry_is_contact & self.middle[self.sub.indices]
        self.inside = np.bincount(self.entry_slot[middle_contact], minlength=n_slots)
        self.si, self.sj, self.local = _slot_pairs(d, off)
        self.cell = self._cells(self.si, self.sj)

    def _cells(self, a_slot: np.ndarray, b_slot: np.ndarray) -> np.ndarray:
        if len(self.d) == 1:
            return a_slot * self.d[0] + b_slot
        r = self.slot_broker[a_slot]
        return self.base[r] + (a_slot - self.off[r]) * self.d[r] + (b_slot - self.off[r])

    def common_neighbours(
        self, s: sp.csr_matrix, st: sp.csr_matrix, weights: list[np.ndarray]
    ) -> list[np.ndarray]:
        """Per pair: ``Σ w[x]`` over the common neighbours x in ``S'`` (other than the broker), one
        array per weight vector.

        Pairs of slots are generated within each neighbour's list of adjacent slots (the rows of
        ``S'ᵀ``), which is cheaper than three ``S'·diag(w)·S'ᵀ`` products when most contacts
        share only their broker.
        """
        counts = np.diff(st.indptr)
        pi, pj, group = _slot_pairs(counts, st.indptr[:-1].astype(np.int64))
        cells = self._cells(st.indices[pi].astype(np.int64), st.indices[pj].astype(np.int64))
        size = int(self.base[-1])
        members = self.members[group]
        return [
            np.bincount(cells, weights=None if w is None else w[members], minlength=size)[
                self.cell
            ].astype(np.float32)
            for w in weights
        ]

    def keep(self, mask: np.ndarray) -> None:
        self.si, self.sj, self.local, self.cell = (
            self.si[mask],
            self.sj[mask],
            self.local[mask],
            self.cell[mask],
        )

    def connected(self) -> np.ndarray:
        """(P,) bool: the two contacts of each pair are connected already."""
        linked = np.zeros(int(self.base[-1]), dtype=bool)
        hit = self.entry_is_contact
        linked[self._cells(self.entry_slot[hit], self.entry_at[hit])] = True
        return linked[self.cell]

    def gather(self, matrix: sp.spmatrix) -> np.ndarray:
        """``matrix[si[p], sj[p]]`` of a block-diagonal slot × slot product, (P,) float32."""
        if len(self.d) == 1:  # one broker: its block is the whole (small) matrix
            return matrix.toarray().ravel()[self.cell].astype(np.float32)
        coo = matrix.tocoo()
        flat = np.zeros(int(self.base[-1]), dtype=np.float32)
        flat[self._cells(coo.row.astype(np.int64), coo.col.astype(np.int64))] = coo.data
        return flat[self.cell]

    def keyed_rows(self, member_matrix: sp.csr_matrix) -> sp.csr_matrix:
        """The contacts' rows of a member × column matrix, columns keyed (broker, column) and made
        compact.
        """
        rows = member_matrix[self.contacts].tocsr()
        if len(self.d) == 1:
            return rows
        keys = np.repeat(self.slot_broker, np.diff(rows.indptr)) * rows.shape[1] + rows.indices
        codes, uniques = pd.factorize(keys)
        return sp.csr_matrix(
            (rows.data, codes, rows.indptr), shape=(rows.shape[0], max(len(uniques), 1))
        )

    def interest_overlaps(
        self, interest_weights: sp.csr_matrix, *, dense_from: int = 16
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per pair: cosine of the TF-IDF rows and the number of shared interests, two (P,)
        float32.

        For one broker the interests held by many of the contacts (``dense_from`` or more) go
        through one dense product: a few popular interests make most of a sparse product's work
        (500 contacts of the synthetic network: 10 ms sparse, 4 ms split).
        """
        rows = self.keyed_rows(interest_weights)
        if len(self.d) > 1 or len(self.contacts) > _DENSE_SLOTS:
            pattern = sp.csr_matrix(
                ((rows.data != 0).astype(np.float32), rows.indices, rows.indptr), shape=rows.shape
            )
            return self.gather(rows @ rows.T.tocsr()), self.gather(pattern @ pattern.T.tocsr())
        held = np.bincount(rows.indices, minlength=rows.shape[1])
        columns = rows.tocsc()
        heavy = columns[:, np.flatnonzero(held >= dense_from)].toarray()
        light = columns[:, np.flatnonzero((held > 0) & (held < dense_from))].tocsr()
        light_pattern = sp.csr_matrix(
            (np.ones(light.nnz, dtype=np.float32), light.indices, light.indptr), shape=light.shape
        )
        heavy_pattern = (heavy != 0).astype(np.float32)
        cosine = heavy @ heavy.T + (light @ light.T.tocsr()).toarray()
        shared = (
            heavy_pattern @ heavy_pattern.T + (light_pattern @ light_pattern.T.tocsr()).toarray()
        )
        return cosine.ravel()[self.cell].astype(np.float32), shared.ravel()[self.cell].astype(
            np.float32
        )

    def other_neighbours(self) -> sp.csr_matrix:
        """``S'`` (D, K): each contact slot's neighbours other than their broker, keyed (broker,
        member).
        """
        other = self.sub.indices != self.brokers[self.slot_broker[self.entry_slot]]
        self.keys, col = np.unique(self.entry_keys[other], return_inverse=True)
        self.members = self.keys % self.n
        return sp.csr_matrix(
            (np.ones(len(col), dtype=np.float32), (self.entry_slot[other], col.ravel())),
            shape=(len(self.contacts), max(len(self.keys), 1)),
        )

    def weighted(self, s: sp.csr_matrix, member_weights: np.ndarray) -> sp.csr_matrix:
        """``S'`` with each column weighted by its member's weight."""
        return sp.csr_matrix(
            (member_weights[self.members[s.indices]].astype(np.float32), s.indices, s.indptr),
            shape=s.shape,
        )

    def walks3(
        self, s: sp.csr_matrix, st: sp.csr_matrix, *, weights: np.ndarray | None = None
    ) -> np.ndarray:
        """Walks ``a → x → y → b`` of length three for every pair, (P,) float32: ``(A M A M A)[a,
        b]``;
        with per-member ``weights`` each walk counts ``weights[x] · weights[y]`` (``1/√deg`` gives
        L3).

        ``M`` keeps the middle members with few enough connections (``middle``; see
        :class:`recsys.PairFeatures`). ``S·A·Sᵀ`` with ``A`` whole builds every walk of length
        two from every contact (800,000 for 500 contacts of the synthetic network) before the third
        step. Here the walks through the broker ``h`` are counted directly (``x = h`` gives
        ``|N(b) ∩ C|``, ``y = h`` gives ``|N(a) ∩ C|``, C the broker's contacts, when ``h`` may
        be a middle member) and the rest is ``S'·A_U·S'ᵀ``, with ``A_U`` the middle edges among the
        contacts' other neighbours ``U``; as ``A_U`` is symmetric, only its upper triangle ``T``
        is multiplied: ``S'·A_U·S'ᵀ = V + Vᵀ`` with ``V = S'·T·S'ᵀ``.
        """
        upper = self._upper_edges()
        inside, through = self.inside, self.middle[self.brokers[self.local]].astype(np.float64)
        if weights is not None:
            s = self.weighted(s, weights)
            st = s.T.tocsr()
            middle_contact = self.entry_is_contact & self.middle[self.sub.indices]
            inside = np.bincount(
                self.entry_slot[middle_contact],
                weights=weights[self.sub.indices[middle_contact]],
                minlength=len(self.inside),
            )
            through = through * weights[self.brokers[self.local]]
        if (
            len(self.d) == 1 and len(self.contacts) <= _DENSE_SLOTS
        ):  # one broker: (T S'ᵀ) dense, then a sparse-dense product
            v = np.asarray(s @ (upper @ st).toarray())
            walks = (v + v.T).ravel()[self.cell]
        else:
            v = ((s @ upper) @ st).tocsr()
            walks = self.gather(v + v.T)
        through_broker = (inside[self.si] + inside[self.sj]) * through
        return (walks + through_broker).astype(np.float32)

    def _upper_edges(self) -> sp.csr_matrix:
        """The upper triangle of ``A_U`` (K, K): the connections among the neighbours of one
        broker's contacts.
        """
        width = max(len(self.keys), 1)
        if len(self.keys) == 0:
            return sp.csr_matrix((width, width), dtype=np.float32)
        if (
            len(self.d) == 1 and self.upper is not None
        ):  # members are sorted: the triangle restricted is the restricted triangle
            return self.upper[self.members][:, self.members]
        indptr, indices = self.adjacency.indptr, self.adjacency.indices
        ux, ur = self.members, self.keys // self.n
        deg = (indptr[ux + 1] - indptr[ux]).astype(np.int64)
        ex = np.repeat(np.arange(len(ux)), deg)
        wanted = ur[ex] * self.n + indices[_ranges(indptr[ux].astype(np.int64), deg)]
        ey = np.minimum(np.searchsorted(self.keys, wanted), len(self.keys) - 1)
        hit = (
            (self.keys[ey] == wanted)
            & (ey > ex)
            & self.middle[ux[ex]]
            & self.middle[self.members[ey]]
        )
        return sp.csr_matrix(
            (np.ones(int(hit.sum()), dtype=np.float32), (ex[hit], ey[hit])), shape=(width, width)
        )


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + c) for s, c in zip(starts, counts)])``, vectorised."""
    counts = np.asarray(counts, dtype=np.int64)
    before = np.cumsum(counts) - counts
    return np.repeat(np.asarray(starts, dtype=np.int64) - before, counts) + np.arange(
        int(counts.sum()), dtype=np.int64
    )

"""Broker introductions: which of my contacts should I introduce to each other?

A *broker* C knows both sides: for C the candidates are the pairs (A, B) of C's own contacts who
are not connected to each other. Each pair is scored by the fitted model's reciprocal acceptance
model (both A and B must want the meeting), the same score that ranks ordinary slates, then
adjusted, like :class:`recsys.BridgeBonusReranker`, in favour of pairs that bridge two
communities and pairs in which one side has a small network:

.. math:: \\mathrm{broker\\_score}(A, B) = \\exp\\big(\\log p(A, B)
          + w_\\mathrm{bridge}\\,[c(A) \\ne c(B)]
          + w_\\mathrm{small}\\,[\\min(d_A, d_B) < s]\\big)

where ``p`` is the reciprocal acceptance score, ``c`` the community of the training graph,
``d`` the number of connections and ``s`` = ``small_network``. Lists respect the recipients'
capacity (the optional member column ``capacity``, else ``default_capacity``): in a batch, no
member is proposed in more pairs than their capacity across all brokers of the batch. Members
who opted out of introductions (``open_to_intros`` false) are never proposed. No sensitive
attribute is read anywhere here.

Scoring 125,000 pairs one by one through :meth:`PairFeatures.transform` takes seconds; here the
raw overlaps of all of a broker's contacts come from a handful of sparse products of the
contacts' rows (``S·Sᵀ`` for common contacts, ``S·A·Sᵀ`` for walks of length three, ``I·Iᵀ`` for
shared interests), block-diagonal over a batch of brokers (:mod:`recsys._broker._features`);
they become feature columns through the same table as every other path
(:func:`recsys._features.features_from_overlaps`) and are scored by the same acceptance model.

Modules: ``_ranker`` (the :class:`BrokerRanker`, its lists and pledges), ``_features`` (the
block products), ``_pairs`` (the capacity rounds over pair lists), ``_evaluation`` (held-out
recall and the common-neighbour baseline).
"""

from recsys._broker._evaluation import common_neighbour_broker_pairs, evaluate_broker
from recsys._broker._pairs import assign_pairs
from recsys._broker._ranker import (
    BrokerRanker,
    TooFewContactsError,
    fill_pledges,
    rank_introductions_to_make,
)

__all__ = [
    "BrokerRanker",
    "TooFewContactsError",
    "assign_pairs",
    "common_neighbour_broker_pairs",
    "evaluate_broker",
    "fill_pledges",
    "rank_introductions_to_make",
]

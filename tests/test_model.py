import json
import mmap

import numpy as np
import pytest

from recsys import (
    FEATURE_NAMES,
    FORMAT_VERSION,
    ModelFormatError,
    load_model,
    reciprocal,
    save_model,
)


def test_rank_shapes_exclusions_and_determinism(fitted):
    model, train, _ = fitted
    rows = np.arange(0, train.n_members, 9)
    ids, scores = model.rank(rows, k=15)
    assert ids.shape == scores.shape == (len(rows), 15)
    assert ids.dtype == np.int32 and scores.dtype == np.float32
    for r, member in enumerate(rows):
        real = ids[r][ids[r] >= 0]
        assert member not in real
        assert not np.isin(real, train.adjacency[member].indices).any()
        assert len(set(real.tolist())) == len(real)
    again, _ = model.rank(rows, k=15)
    assert np.array_equal(ids, again)


def test_rank_rejects_bad_rows(fitted):
    model, train, _ = fitted
    with pytest.raises(IndexError, match="outside"):
        model.rank([train.n_members], k=5)
    with pytest.raises(ValueError, match="k must be"):
        model.rank([0], k=0)


def test_reciprocal_score_is_symmetric(fitted):
    model, train, _ = fitted
    rng = np.random.default_rng(0)
    u = rng.integers(0, train.n_members, 300)
    v = rng.integers(0, train.n_members, 300)
    s_uv = model.acceptance_.reciprocal_score(model.features_.transform(u, v))
    s_vu = model.acceptance_.reciprocal_score(model.features_.transform(v, u))
    np.testing.assert_allclose(s_uv, s_vu, rtol=1e-5)
    assert reciprocal(np.array([0.9]), np.array([0.1]))[0] < 0.2  # one-sided interest scores low


def test_features_never_include_sensitive_attributes():
    assert not any("gender" in f or "sensitive" in f for f in FEATURE_NAMES)


def test_acceptance_model_learns_from_split_off_connections(fitted):
    model, _, _ = fitted
    assert model.n_training_positives_ > 50
    coef = dict(zip(FEATURE_NAMES, model.acceptance_.coef_))
    assert (
        coef["log_adamic_adar"] + coef["log_common_contacts"] + coef["log_resource_allocation"] > 0
    )


def test_learned_pipeline_recovers_held_out_connections(fitted):
    from recsys import AdamicAdarCandidates, heldout_matrix
    from recsys.metrics import recall_at_k

    model, train, heldout = fitted
    rows = np.unique(heldout.ravel())
    relevant = heldout_matrix(heldout, train.n_members)[rows]
    ours = np.nanmean(recall_at_k(model.rank(rows, k=20, rerank=False)[0], relevant, k=20))
    base = np.nanmean(
        recall_at_k(AdamicAdarCandidates().fit(train).candidates(rows, 20)[0], relevant, k=20)
    )
    assert ours > 0.1
    assert ours >= 0.9 * base


def test_explain_gives_reasons(fitted):
    model, train, _ = fitted
    ids, _ = model.rank([3], k=10)
    others = ids[0][ids[0] >= 0]
    reasons = model.explain(3, others)
    assert len(reasons) == len(others)
    for other, why in zip(others, reasons):
        assert set(why) == {
            "shared_interests",
            "n_shared_interests",
            "mutual_contacts",
            "n_mutual_contacts",
            "bridges_communities",
            "summary",
        }
        shared = np.intersect1d(
            train.member_interests[3].indices, train.member_interests[other].indices
        )
        assert why["n_shared_interests"] == len(shared)
        mutual = np.intersect1d(train.adjacency[3].indices, train.adjacency[other].indices)
        assert why["n_mutual_contacts"] == len(mutual)
        assert set(why["mutual_contacts"]) <= set(train.member_ids[mutual].tolist())


def test_save_load_round_trip(fitted, tmp_path):
    model, train, _ = fitted
    path = save_model(model, tmp_path / "model", config={"note": "test"})
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION and manifest["config"] == {"note": "test"}
    assert not list(path.glob("*.pkl")) and not list(path.glob("*.pickle"))
    for digest in manifest["files"].values():
        assert len(digest) == 64
    loaded = load_model(path)
    rows = np.arange(0, train.n_members, 13)
    a_ids, a_scores = model.rank(rows, k=10)
    b_ids, b_scores = loaded.rank(rows, k=10)
    assert np.array_equal(a_ids, b_ids)
    np.testing.assert_allclose(a_scores, b_scores, rtol=1e-6)
    # the saved model holds no sensitive attribute
    members = __import__("pandas").read_parquet(path / "members.parquet")
    assert "gender" not in members.columns


def _as_format_2(path):
    """Rewrite a saved model in the format 2 layout: the graph and the interests zipped
    (``.npz``, the graph without its values), no ``connections.npy``."""
    import hashlib

    manifest = json.loads((path / "manifest.json").read_text())
    for name, with_data in (("adjacency", False), ("member_interests", True)):
        arrays = {part: np.load(path / f"{name}.{part}.npy") for part in ("indptr", "indices")}
        n_cols = manifest["n_members"] if name == "adjacency" else manifest["n_interests"]
        arrays["shape"] = np.array([manifest["n_members"], n_cols], dtype=np.int64)
        if with_data:
            arrays["data"] = np.load(path / f"{name}.data.npy")
        np.savez(path / f"{name}.npz", **arrays)
        for part in ("indptr", "indices", "data"):
            (path / f"{name}.{part}.npy").unlink()
            manifest["files"].pop(f"{name}.{part}.npy")
        manifest["files"][f"{name}.npz"] = hashlib.sha256(
            (path / f"{name}.npz").read_bytes()
        ).hexdigest()
    (path / "connections.npy").unlink()
    manifest["files"].pop("connections.npy")
    manifest["format_version"] = 2
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_format_2_models_load_and_mapped_models_rank_the_same(fitted, tmp_path):
    """Format 3 stores the arrays as plain .npy so that processes can map one copy; a format 2
    model (zipped arrays) still loads, mapped or not, and every way ranks the same slates."""
    model, train, _ = fitted
    rows = np.arange(0, train.n_members, 7)
    want_ids, want_scores = model.rank_batch(rows, 10)
    path = save_model(model, tmp_path / "model")
    mapped = load_model(path, mmap=True)

    def on_a_mapping(array):
        while array is not None and not isinstance(array, (np.memmap, mmap.mmap)):
            array = getattr(array, "base", None)
        return array is not None

    net = mapped.network_
    for array in (net.adjacency.indices, net.member_interests.data, mapped.member_factors_):
        assert on_a_mapping(array) and not array.flags.writeable  # read-only pages, shared
    old = save_model(model, tmp_path / "old")
    _as_format_2(old)
    for loaded in (mapped, load_model(old), load_model(old, mmap=True)):
        ids, scores = loaded.rank_batch(rows, 10)
        np.testing.assert_array_equal(ids, want_ids)
        np.testing.assert_allclose(scores, want_scores, rtol=1e-6)
        np.testing.assert_array_equal(loaded.network_.connections, mapped.network_.connections)
    # mapped files are verified too, unless the caller vouches for them
    factors = np.load(path / "member_factors.npy")
    np.save(path / "member_factors.npy", factors * 2)
    with pytest.raises(ModelFormatError, match="checksum mismatch for member_factors.npy"):
        load_model(path, mmap=True)
    assert load_model(path, mmap=True, verify=False).member_factors_[0, 0] == 2 * factors[0, 0]


def test_a_model_saved_before_the_least_exposed_places_loads_without_them(fitted, tmp_path):
    model, train, _ = fitted
    path = save_model(model, tmp_path / "model")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format_version"] = 1  # saved by a build from before the places existed
    for key in ("floor_slots", "floor_depth"):
        manifest["params"].pop(key)
        manifest["rerank_params"].pop(key)
    (path / "manifest.json").write_text(json.dumps(manifest))
    old = load_model(path)
    assert old.floor_slots is None and old._floor_slots(20) == 0 and old._floor_depth(20) == 40
    rows = np.arange(train.n_members)
    head, _ = old.rank_batch(rows, k=10)
    assert (head >= 0).mean() > 0.9


def test_floor_depth_outside_the_preference_list_is_refused(small_network):
    from recsys import IntroductionRecommender

    with pytest.raises(ValueError, match="floor_depth must be between 2 and 6"):
        IntroductionRecommender(floor_depth=8).fit(small_network)


def test_corrupt_model_is_refused(fitted, tmp_path):
    model, _, _ = fitted
    path = save_model(model, tmp_path / "model")
    factors = np.load(path / "member_factors.npy")
    factors[0, 0] += 1.0
    np.save(path / "member_factors.npy", factors)
    with pytest.raises(ModelFormatError, match="checksum mismatch for member_factors.npy"):
        load_model(path)


def test_a_file_replaced_while_loading_is_refused(fitted, tmp_path, monkeypatch):
    """The bytes parsed are the bytes checked: a file swapped after the manifest was read fails its
    checksum.
    """
    from recsys import _persist

    path = save_model(fitted[0], tmp_path / "model")
    real = _persist._read_manifest

    def then_replace(root):
        manifest = real(root)
        factors = np.load(path / "member_factors.npy")
        np.save(path / "member_factors.npy", factors * 2)  # a writer replaces the file mid-load
        return manifest

    monkeypatch.setattr(_persist, "_read_manifest", then_replace)
    with pytest.raises(ModelFormatError, match="checksum mismatch for member_factors.npy"):
        load_model(path)


def test_missing_or_foreign_model_is_refused(tmp_path):
    with pytest.raises(ModelFormatError, match="no model directory"):
        load_model(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFormatError, match="no manifest"):
        load_model(tmp_path / "empty")


def test_save_is_atomic_on_failure(fitted, tmp_path, monkeypatch):
    model, _, _ = fitted
    path = save_model(model, tmp_path / "model")
    before = json.loads((path / "manifest.json").read_text())

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "save", boom)
    with pytest.raises(RuntimeError):
        save_model(model, tmp_path / "model")
    # the old model is intact and no temporary directory is left behind: beside the model only
    # its one published version and the publishers' lock
    assert json.loads((path / "manifest.json").read_text()) == before
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[:-1] == [".model.lock", path.resolve().name] and names[-1] == "model"
    load_model(path)


def test_past_introductions_train_the_acceptance_model_without_leaking(small_network):
    import pandas as pd

    from recsys import IntroductionRecommender, holdout_split
    from recsys._fitting import introduction_pairs

    train, heldout = holdout_split(small_network, fraction=0.1, seed=3)
    rng = np.random.default_rng(0)
    kept = train.connections[rng.choice(len(train.connections), 40, replace=False)]
    declined = rng.integers(0, train.n_members, size=(40, 2))
    declined = declined[declined[:, 0] != declined[:, 1]]
    intro = pd.DataFrame(
        {
            "member_a": np.concatenate([kept[:, 0], declined[:, 0], heldout[:10, 0]]).astype(
                np.int32
            ),
            "member_b": np.concatenate([kept[:, 1], declined[:, 1], heldout[:10, 1]]).astype(
                np.int32
            ),
            "accepted": np.concatenate([np.ones(40), np.zeros(len(declined)), np.ones(10)]).astype(
                np.int8
            ),
            "created_at": np.nan,
            "broker": -1,
        }
    )
    from dataclasses import replace

    with_intro = replace(train, introductions=intro)
    model = IntroductionRecommender(pool_size=60, als_iterations=2, tune_rerank=False)
    model.fit(with_intro)
    features, labels = introduction_pairs(with_intro, model.features_)
    # the 10 accepted introductions that are held-out connections never become labels
    assert len(labels) == 40 + len(declined) and labels.sum() == 40


def test_als_seed_seeds_the_embeddings_only():
    """``candidates.als.seed`` reaches implicit's ALS: another seed, other factors; the default
    follows random_state.
    """
    from recsys import IntroductionRecommender, synthetic_network

    net = synthetic_network(300, seed=0)

    def fit(**kw):
        return IntroductionRecommender(
            pool_size=30, als_iterations=2, tune_rerank=False, random_state=3, **kw
        ).fit(net)

    default, same, other = fit(), fit(als_seed=3), fit(als_seed=4)
    np.testing.assert_array_equal(default.member_factors_, same.member_factors_)
    assert not np.allclose(default.member_factors_, other.member_factors_)


def test_unavailable_members_leave_every_pool(fitted):
    model = fitted[0]
    rows = np.arange(40)
    ids, scores = model.rank(rows, k=8)
    none = np.zeros(model.network_.n_members, dtype=bool)
    same_ids, same_scores = model.rank(rows, k=8, unavailable=none)
    np.testing.assert_array_equal(ids, same_ids)
    np.testing.assert_array_equal(scores, same_scores)
    # take out each slate's first choice: none of them comes back, and the slates still fill
    gone = np.zeros_like(none)
    gone[ids[:, 0][ids[:, 0] >= 0]] = True
    got, _ = model.rank(rows, k=8, unavailable=gone)
    assert not gone[got[got >= 0]].any()
    assert (got >= 0).sum() >= (ids >= 0).sum() - len(
        rows
    )  # a pool deeper than the slate refills it
    with pytest.raises(ValueError, match="one entry per member"):
        model.rank(rows, k=8, unavailable=none[:-1])


def test_a_version_1_model_is_migrated_explicitly(fitted, tmp_path):
    """A manifest of format 1 from before the additive bonus, the three-hop cut and the slate
    size loads with the behaviour it was saved with, and says so in its migrated manifest."""
    model, train, _ = fitted
    path = save_model(model, tmp_path / "model")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format_version"] = 1
    for key in ("three_hop_middles", "slate_size"):
        manifest["params"].pop(key)
    for key in ("bonus", "score_scale", "floor_slots", "floor_depth"):
        manifest["rerank_params"].pop(key)
    manifest.pop("training")
    (path / "manifest.json").write_text(json.dumps(manifest))
    old = load_model(path)
    assert old.manifest_["format_version"] == FORMAT_VERSION
    assert old.three_hop_middles == 0 and old.slate_size == 20
    assert old.rerank_params_["bonus"] == "log" and old.rerank_params_["score_scale"] == 1.0
    assert old.reranker_.bridge_.bonus == "log"
    ids, _ = old.rank(np.arange(20), k=5)
    assert (ids >= 0).any()


@pytest.mark.parametrize("version", [FORMAT_VERSION + 1, "3", None])
def test_a_format_version_this_build_cannot_read_is_refused(fitted, tmp_path, version):
    path = save_model(fitted[0], tmp_path / "model")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format_version"] = version
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFormatError, match="format version"):
        load_model(path)


def test_fitted_state_does_not_change_after_fit(fitted):
    """Hyper-parameters set after fit change nothing until the next fit, and the setting a model
    ranks with can only be changed in a copy."""
    model, train, _ = fitted
    rows = np.arange(0, train.n_members, 11)
    before = model.rank(rows, k=10)
    params = model.get_params()
    try:
        model.set_params(rerank=False, bridge_weight=3.0, pool_size=5)
        after = model.rank(rows, k=10, rerank=True)
        np.testing.assert_array_equal(before[0], after[0])
    finally:
        model.set_params(**params)
    with pytest.raises(TypeError):
        model.rerank_params_["floor_slots"] = 4
    copy = model.with_setting(bridge_weight=0.0, rerank=False)
    assert copy.rerank_params_["bridge_weight"] == 0.0 and copy.rerank is False
    assert (
        model.rerank_params_["bridge_weight"] != 0.0 or model.rerank_params_ == copy.rerank_params_
    )
    plain = model.rank(rows, k=10, rerank=False)
    np.testing.assert_array_equal(copy.rank(rows, k=10)[0], plain[0])


def test_ppr_source_joins_the_pool_and_survives_a_save(tmp_path):
    """``n_ppr`` adds personalized PageRank to the merged pool (its bit in the source flags);
    the saved parameters rebuild it on load, and a model saved without it keeps it off."""
    from recsys import (
        SOURCE_BITS,
        IntroductionRecommender,
        PersonalizedPageRankCandidates,
        synthetic_network,
    )

    net = synthetic_network(300, seed=0)
    model = IntroductionRecommender(
        pool_size=40, n_ppr=30, als_iterations=2, tune_rerank=False, random_state=0
    ).fit(net)
    assert isinstance(model.sources_["ppr"], PersonalizedPageRankCandidates)
    rows = np.arange(20)
    _, bits = model.pool(rows)
    assert ((bits & SOURCE_BITS["ppr"]) > 0).any()
    loaded = load_model(save_model(model, tmp_path / "model"))
    assert "ppr" in loaded.sources_
    np.testing.assert_array_equal(loaded.rank(rows, k=10)[0], model.rank(rows, k=10)[0])
    off = IntroductionRecommender(pool_size=40, als_iterations=2, tune_rerank=False).fit(net)
    assert "ppr" not in off.sources_
    with pytest.raises(ValueError, match="n_ppr"):
        IntroductionRecommender(n_ppr=-1).fit(net)

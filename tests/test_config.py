import pydantic
import pytest

from training.config import ConfigError, apply_overrides, load_config


def test_defaults_follow_design():
    c = load_config(None)
    assert c.split.holdout_fraction == 0.1 and c.evaluation.k == 20
    assert c.rerank.enabled is True and c.rerank.plus_one == "pledged"
    assert c.mlflow.tracking_uri == "sqlite:///mlflow.db" and c.mlflow.experiment == "plusone"
    assert c.data.sensitive_attributes == () and c.data.min_group_size == 20


def test_overrides_are_typed_as_yaml():
    c = load_config(
        None,
        overrides=[
            "rerank.enabled=false",
            "evaluation.k=10",
            "data.sensitive_attributes=[gender, region]",
        ],
    )
    assert c.rerank.enabled is False and c.evaluation.k == 10
    assert c.data.sensitive_attributes == ("gender", "region")


@pytest.mark.parametrize(
    "item, message",
    [
        ("rerank.bogus=1", "rerank.bogus: unknown key"),
        ("nosuch.key=1", "nosuch.key: unknown key"),
        ("rerank=1", "is a section"),
        ("evaluation.k", "expected KEY=VALUE"),
    ],
)
def test_bad_overrides(item, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides=[item])


def test_bad_values_name_the_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("evaluation:\n  k: 0\nrerank:\n  plus_one: sometimes\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "evaluation.k" in str(err.value) and "rerank.plus_one" in str(err.value)
    path.write_text("split:\n  holdout: 0.2\n")
    with pytest.raises(ConfigError, match="split.holdout: unknown key"):
        load_config(path)


def test_config_is_frozen():
    c = load_config(None)
    with pytest.raises(pydantic.ValidationError):
        c.evaluation.k = 5


def test_apply_overrides_does_not_mutate():
    raw = {"evaluation": {"k": 5}}
    out = apply_overrides(raw, ["evaluation.k=7"])
    assert raw == {"evaluation": {"k": 5}} and out == {"evaluation": {"k": 7}}


def test_bound_attribute_must_be_a_sensitive_attribute():
    with pytest.raises(
        ConfigError,
        match=r"rerank.bound_attribute 'gender' must be one of data.sensitive_attributes \(none\)",
    ):
        load_config(None, overrides=["rerank.bound_attribute=gender"])
    config = load_config(
        None, overrides=["rerank.bound_attribute=gender", "data.sensitive_attributes=[gender]"]
    )
    assert config.rerank.bound_attribute == "gender"

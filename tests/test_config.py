import dataclasses

import pytest

from l2l.config import (PRESETS, SMALL, cache_key, config_hash, from_dict, preset, replace,
                        to_dict)


@pytest.mark.parametrize("scale", sorted(PRESETS))
def test_round_trip(scale):
    cfg = preset(scale)
    assert from_dict(to_dict(cfg)) == cfg
    assert config_hash(from_dict(to_dict(cfg))) == config_hash(cfg)


def test_hash_is_stable_and_sensitive():
    assert config_hash(preset("small")) == config_hash(preset("small"))
    assert config_hash(preset("small")) != config_hash(preset("small", alpha=0.2))
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    assert len(config_hash(SMALL)) == 12


def test_overrides_flat_sectioned_and_top_level():
    cfg = preset("small", seed=3, alpha=0.25, train__steps=7, forget_classes=[0, 1])
    assert cfg.seed == 3 and cfg.unlearn.alpha == 0.25 and cfg.train.steps == 7
    assert cfg.data.forget_classes == (0, 1)  # lists become tuples
    assert dataclasses.is_dataclass(cfg) and cfg.scale == "small"


def test_env_scale_wins(monkeypatch):
    monkeypatch.setenv("L2L_SCALE", "smoke")
    assert preset("small").scale == "smoke"


@pytest.mark.parametrize("kwargs, message", [
    ({"alpah": 0.1}, "unknown config field 'alpah'; did you mean alpha"),
    ({"steps": 3}, "ambiguous; use one of train__steps, unlearn__steps"),
    ({"nope__steps": 3}, "unknown config field"),
    ({"alpha": "big"}, "takes a number"),
    ({"forget_classes": (0, 5)}, "overlap"),
    ({"mask": "circle"}, "unlearn.mask"),
    ({"device": "tpu"}, "device must be"),
    ({"split": "pixel"}, "data.split"),
])
def test_bad_overrides_are_clear(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        preset("small", **kwargs)


def test_unknown_scale():
    with pytest.raises(ValueError, match="unknown scale 'huge'; choose one of smoke, small, paper"):
        preset("huge")


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        SMALL.seed = 1  # type: ignore[misc]


def test_from_dict_rejects_unknown_fields():
    d = to_dict(SMALL)
    d["unlearn"]["beta"] = 1
    with pytest.raises(ValueError, match="unknown unlearn config fields"):
        from_dict(d)


def test_cache_key_picks_parts():
    cfg = preset("small")
    key = cache_key(cfg, "data", "train")
    assert set(key) == {"scale", "seed", "data", "train"}
    # unlearning hyper-parameters do not invalidate the trained original
    assert cache_key(replace(cfg, alpha=0.5), "data", "train") == key
    with pytest.raises(ValueError, match="unknown config part"):
        cache_key(cfg, "optimizer")


def test_tokenizer_adversarial_keys_only_when_set_and_must_be_non_negative():
    cfg = preset("smoke", family="vqgan")
    assert "tokenizer_adversarial" not in cache_key(cfg, "train")["train"]  # old keys stay valid
    on = replace(cfg, train__tokenizer_adversarial=0.5)
    assert cache_key(on, "train")["train"]["tokenizer_adversarial"] == 0.5
    with pytest.raises(ValueError, match="tokenizer_adversarial must be >= 0"):
        preset("smoke", family="vqgan", train__tokenizer_adversarial=-1.0)

"""Every model family is registered once (l2l.models.FAMILIES) and the code asks the registry."""

import pytest
import torch

from l2l import config
from l2l.models import FAMILIES, build_model, family, frozen_part
from l2l.unlearn.ops import FamilyOps, ops_for


def test_the_registry_holds_exactly_the_config_families():
    assert tuple(FAMILIES) == config.FAMILIES
    for name, fam in FAMILIES.items():
        assert fam.name == name and build_model(name, "smoke").family == name


@pytest.mark.parametrize("name", config.FAMILIES)
def test_each_family_record_drives_ops_frozen_part_and_official_loading(name, smoke_cfg):
    model = build_model(name, "smoke")
    assert family(model) is FAMILIES[name]
    ops = ops_for(model, smoke_cfg)
    assert isinstance(ops, FamilyOps) and type(ops).__name__ == FAMILIES[name].ops
    part = frozen_part(model)
    assert (part is not None) == (name == "vqgan")
    fam = FAMILIES[name]
    assert (fam.load_official is None) == (fam.official_source == "") == (name == "autoencoder")
    if fam.load_official is not None:  # the layout the dry run writes loads back strictly
        twin = build_model(name, "smoke")
        state = model.state_dict()
        fam.load_official(twin, {fam.checkpoint_key: state} if fam.checkpoint_key else state)
        for k, v in twin.state_dict().items():
            assert torch.equal(v, state[k]), k


def test_unknown_family_is_one_clear_error():
    with pytest.raises(ValueError, match="unknown model family 'gan'; choose one of mae, vqgan"):
        family("gan")
    with pytest.raises(ValueError, match="unknown model family None"):
        family(torch.nn.Linear(2, 2))


def test_only_the_mae_draws_a_training_mask_ratio(smoke_cfg):
    gen = torch.Generator().manual_seed(0)
    lo, hi = smoke_cfg.train.mask_ratio
    assert lo <= FAMILIES["mae"].train_kwargs(smoke_cfg, gen)["mask_ratio"] <= hi
    state = gen.get_state()
    for name in ("vqgan", "diffusion", "autoencoder"):
        assert FAMILIES[name].train_kwargs(smoke_cfg, gen) == {}
    assert torch.equal(gen.get_state(), state)  # no random draw: the other families' runs keep their keys


def test_unlearn_config_groups_partition_its_fields_in_order():
    import dataclasses

    names = [f.name for f in dataclasses.fields(config.UnlearnConfig)]
    grouped = [n for g in config.UNLEARN_GROUPS.values() for n in g]
    assert grouped == names  # every field in exactly one group, groups in field order
    assert config.UNLEARN_GROUPS["li2024, li2024-proxy and the baselines"] == ("alpha", "noise_type")

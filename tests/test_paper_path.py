"""The paper-scale path: streaming images, the synthetic paper-layout DATA_ROOT of the dry run,
the CIFAR-10 reader, the COCO / Places proxies and Li et al.'s released metric protocol."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from l2l import official
from l2l.config import FAMILIES, PRESETS, for_family, preset, replace
from l2l.data import FileImages, coco, load_data, read_image, split_data, take
from l2l.dryrun import write_data_root
from l2l.experiments.store import retain_set
from l2l.preflight import missing_inputs
from l2l.pretrained import load_pretrained


@pytest.fixture(scope="module")
def dry_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("dry")
    write_data_root(root)
    return root


def _dry(root, family: str = "mae", **kw):
    return replace(for_family(PRESETS["paper-dry"], family), data_root=str(root), **kw)


def _jpeg(path, h, w, value):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), value, dtype=np.uint8)).save(path, quality=95)


def test_file_images_index_like_tensors_and_read_in_order(tmp_path):
    files = [tmp_path / f"{i}.jpg" for i in range(6)]
    for i, f in enumerate(files):
        _jpeg(f, 40, 60, 40 * i)
    images = FileImages(files, 16, workers=2)
    assert len(images) == 6 and images.shape == (6, 3, 16, 16)
    assert images[2].dtype == torch.uint8 and images[2].shape == (3, 16, 16)
    sub = images[torch.tensor([True, False, True, False, False, True])]
    assert isinstance(sub, FileImages) and sub.files == (files[0], files[2], files[5])
    assert images[1:3].files == tuple(files[1:3])
    batch = take(images, torch.tensor([5, 0, 5]))
    assert batch.shape == (3, 3, 16, 16) and batch.dtype == torch.float32
    means = batch.mean(dim=(1, 2, 3)) * 255
    assert means.tolist() == pytest.approx([200, 0, 200], abs=3)
    assert torch.equal(next(iter(images.loader(6))), images.read(torch.arange(6)))
    with pytest.raises(IndexError, match="boolean index of length 2"):
        images[torch.tensor([True, False])]


def test_read_image_resizes_the_short_side_and_centre_crops(tmp_path):
    from PIL import Image

    arr = np.zeros((40, 80, 3), dtype=np.uint8)
    arr[:, 20:60] = 255  # the centre square is white, the sides black
    Image.fromarray(arr).save(tmp_path / "a.png")
    x = read_image(tmp_path / "a.png", 20)
    assert x.shape == (3, 20, 20) and x.float().mean() > 250


def test_dry_root_is_laid_out_like_the_paper_data(dry_root):
    cfg = _dry(dry_root)
    assert missing_inputs(cfg) == []
    sel = official.unlearn_selection(cfg.data.train_per_class)
    wnid = official.imagenet_classes()[0]
    assert all((dry_root / "imagenet" / p).is_file() for p in sel[wnid])
    first_test = next(p for p, w in official.imagenet_test_list() if w == wnid)
    assert (dry_root / "imagenet" / first_test).is_file()
    assert (dry_root / "places365" / "train" / "b" / "badlands").is_dir()
    for family in ("mae", "vqgan", "diffusion"):
        load_pretrained(_dry(dry_root, family))  # official layouts, strictly loaded


def test_dry_splits_follow_the_official_lists_and_stream(dry_root):
    images, split = load_data(_dry(dry_root))
    assert isinstance(images.x_train, FileImages) and isinstance(split.forget, FileImages)
    assert len(split.forget) == len(split.retain) == 100 * 2  # 100 classes x train_per_class
    assert len(split.forget_test) == len(split.retain_test) == 100
    assert len(split.proxy) == 800  # the other ImageNet classes, proxy_per_class each
    assert split.forget.files[0].parent.name == official.imagenet_classes()[0]
    places = load_data(_dry(dry_root, "diffusion"))[1]
    assert places.retain.files[0].parent.name == "badlands"  # retain id 0
    assert places.forget.files[0].parent.name == "archive"  # forget id 0
    assert len(places.proxy) == 265 * 1


def test_cifar10_reader_reads_the_release_pickles(dry_root):
    images, split = load_data(_dry(dry_root, "autoencoder"))
    assert images.x_train.shape == (200, 3, 32, 32) and images.x_train.dtype == torch.uint8
    assert images.class_names[0] == "airplane" and set(images.y_test.tolist()) == set(range(10))
    assert (split.forget_labels == 0).all() and len(split.forget) == 20
    with open(dry_root / "cifar10" / "cifar-10-batches-py" / "data_batch_1", "rb") as fh:
        first = pickle.load(fh, encoding="latin1")
    assert torch.equal(images.x_train[0].flatten(), torch.from_numpy(first["data"][0]))


def test_missing_cifar_file_is_named(dry_root, tmp_path):
    cfg = _dry(tmp_path, "autoencoder")
    with pytest.raises(FileNotFoundError, match="data_batch_1.*cifar-10-batches-py"):
        load_data(cfg)


def test_coco_proxy_takes_the_first_images_and_names_a_short_folder(dry_root):
    cfg = _dry(dry_root, retain_source="proxy", proxy="coco")
    split = split_data(load_data(cfg)[0], cfg.data)
    with pytest.raises(FileNotFoundError, match="needs 200 images in .*coco, found 8"):
        retain_set(split, cfg)
    got = coco(cfg, 3)
    assert [f.name for f in got.files] == ["000000000000.jpg", "000000000001.jpg",
                                           "000000000002.jpg"]


def test_places_proxy_pool_takes_proxy_per_class(dry_root):
    cfg = _dry(dry_root, "diffusion", proxy_per_class=1, train_per_class=2)
    split = load_data(cfg)[1]
    assert len(split.retain) == 50 * 2 and len(split.proxy) == 265 * 1


def test_every_paper_recipe_has_a_dry_twin_with_the_same_data_and_checkpoint_files():
    for family in FAMILIES:
        paper, dry = for_family(preset("paper"), family), for_family(PRESETS["paper-dry"], family)
        assert dry.data.dataset == paper.data.dataset, family
        assert dry.data.forget_classes == paper.data.forget_classes, family
        assert dry.data.retain_classes == paper.data.retain_classes, family
        assert dry.model.checkpoint == paper.model.checkpoint, family
        assert dry.unlearn.lam_rule == paper.unlearn.lam_rule, family
    assert for_family(preset("paper"), "autoencoder").model.checkpoint == ""


# ----------------------------------------------------------------------------- metric protocol
def test_released_is_preprocessing_uses_cifar_normalisation_and_299_px():
    from l2l.protocol import CIFAR_MEAN, CIFAR_STD, is_preprocess

    x = torch.full((2, 3, 64, 48), 0.5)
    out = is_preprocess("inception_tv_released", x)
    assert out.shape == (2, 3, 299, 299)
    expected = [(0.5 - m) / s for m, s in zip(CIFAR_MEAN, CIFAR_STD)]
    assert out[0, :, 100, 100].tolist() == pytest.approx(expected, abs=1e-5)
    std = is_preprocess("inception_tv", x)
    assert std.shape == (2, 3, 299, 299)
    assert std[0, 0, 10, 10].item() == pytest.approx((0.5 - 0.485) / 0.229, abs=1e-5)
    assert is_preprocess("places_resnet50", x).shape == (2, 3, 224, 224)


@pytest.mark.parametrize("name", ["inception_tv_released", "places_resnet50"])
def test_is_networks_load_the_placed_layout_and_give_probabilities(tmp_path, name):
    from l2l.io import CheckpointError
    from l2l.protocol import FILES, build_is_network, is_network

    cfg = preset("smoke", data_root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match=FILES[name]):
        is_network(name, cfg, device="cpu")
    torch.manual_seed(0)
    state = build_is_network(name).state_dict()
    path = tmp_path / "checkpoints" / FILES[name]
    path.parent.mkdir()
    if name == "places_resnet50":  # the CSAIL file: a DataParallel state dict in a dict
        torch.save({"epoch": 90, "arch": "resnet50",
                    "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    else:
        torch.save(state, path)
    ext = is_network(name, cfg, device="cpu")
    feats, probs = ext.run(torch.rand(2, 3, 32, 32))
    assert probs.shape == (2, 365 if name == "places_resnet50" else 1000)
    assert probs.sum(axis=1) == pytest.approx([1.0, 1.0])
    assert ext.provenance()["weights_sha256"] and "preprocess" in ext.provenance()
    torch.save({"fc.weight": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match="is not the"):
        is_network(name, cfg, device="cpu")


def test_full_resolution_reference_reads_each_file_at_its_own_size(tmp_path):
    from l2l.extractors import Extractor
    from l2l.protocol import full_resolution_features

    sizes = []

    def run(x):
        sizes.append(tuple(x.shape[-2:]))
        return x.mean(dim=(2, 3)).double().numpy(), None

    for i, (h, w) in enumerate([(40, 60), (50, 30)]):
        _jpeg(tmp_path / f"{i}.jpg", h, w, 100)
    feats = full_resolution_features([tmp_path / "0.jpg", tmp_path / "1.jpg"],
                                     Extractor("probe", run))
    assert sizes == [(40, 60), (50, 30)] and feats.shape == (2, 3)
    assert feats == pytest.approx(np.full((2, 3), 100 / 255), abs=0.01)


def test_protocol_fields_are_validated():
    with pytest.raises(ValueError, match="unknown eval.is_network 'resnet'"):
        preset("smoke", is_network="resnet")
    with pytest.raises(ValueError, match="eval.fid_reference must be one of"):
        preset("smoke", fid_reference="cropped")
    paper = preset("paper")
    assert paper.eval.is_network == "inception_tv_released"
    assert paper.eval.fid_reference == "full_resolution"
    assert for_family(paper, "diffusion").eval.is_network == "places_resnet50"
    assert for_family(paper, "diffusion").eval.fid_reference == "matched"


# ----------------------------------------------------------------------------- bf16
def test_bf16_runs_the_passes_in_bfloat16_and_is_part_of_the_cache_key():
    from l2l import dist
    from l2l.config import cache_key, key_dict
    from l2l.data import make_mask
    from l2l.evaluation import complete
    from l2l.models import build_model

    fp32, bf16 = preset("smoke", device="cpu"), preset("smoke", device="cpu", precision="bf16")
    assert "precision" not in cache_key(fp32, "train") and "precision" not in key_dict(fp32)
    assert cache_key(bf16, "train")["precision"] == "bf16" and key_dict(bf16)["precision"] == "bf16"
    with pytest.raises(ValueError, match="precision must be 'fp32' or 'bf16', got 'fp16'"):
        preset("smoke", precision="fp16")
    torch.manual_seed(0)
    model = build_model("mae", "smoke")
    seen = []
    call = dist.objective(model, "bf16")
    loss = call(lambda m: (seen.append(torch.is_autocast_enabled("cpu"))
                           or m.training_loss(torch.rand(2, 3, 32, 32),
                                              generator=torch.Generator().manual_seed(0))))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert seen == [True] and torch.is_autocast_enabled("cpu") is False
    x = torch.rand(3, 3, 32, 32)
    out = complete(model, x, make_mask("centre_half", 32), bf16)
    ref = complete(model, x, make_mask("centre_half", 32), fp32)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    assert 0 < (out - ref).abs().max() < 0.2  # bf16 rounding, not a different model


def test_reduced_palette_sampler_is_a_labelled_config_field():
    from l2l.config import cache_key
    from l2l.models import model_for

    paper = for_family(preset("paper"), "diffusion")
    assert paper.model.sample_steps == 0
    from l2l.models.diffusion import SIZES
    assert SIZES["places2"].sample_steps == 2000  # the released sampler by default
    reduced = preset("smoke", family="diffusion", sample_steps=3)
    assert model_for(reduced).spec.sample_steps == 3
    assert cache_key(reduced, "model")["model"]["sample_steps"] == 3
    assert "sample_steps" not in cache_key(preset("smoke", family="diffusion"), "model")["model"]
    with pytest.raises(ValueError, match="for the diffusion family only"):
        preset("smoke", family="mae", sample_steps=3)

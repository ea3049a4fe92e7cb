import numpy as np
import pytest
import torch

from l2l.config import preset
from l2l.data import (ImageSet, from_pm1, imagenet_denormalize, imagenet_normalize, load_data,
                      make_mask, make_photos, split_data, tile_layout, to_float, to_pm1, to_uint8)


@pytest.fixture(scope="module")
def photos() -> ImageSet:
    return make_photos(preset("smoke").data, seed=0)


def test_shapes_ranges_labels(photos):
    d = preset("smoke").data
    n_tr, n_te = d.n_classes * d.train_per_class, d.n_classes * d.test_per_class
    assert photos.x_train.shape == (n_tr, 3, 32, 32) and photos.x_train.dtype == torch.uint8
    assert photos.x_test.shape == (n_te, 3, 32, 32)
    assert torch.bincount(photos.y_train).tolist() == [d.train_per_class] * d.n_classes
    assert torch.bincount(photos.y_test).tolist() == [d.test_per_class] * d.n_classes
    x = to_float(photos.x_train)
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.std() > 0.1  # real pixels, not constant


def test_deterministic_for_a_seed():
    d = preset("smoke").data
    a, b, c = make_photos(d, seed=1), make_photos(d, seed=1), make_photos(d, seed=2)
    assert torch.equal(a.x_train, b.x_train) and not torch.equal(a.x_train, c.x_train)


def test_test_tiles_spread_and_disjoint(photos):
    side, test = tile_layout(427, 640, 5)
    assert side == 85 and test.shape == (5, 7)
    assert test.any(axis=1).all()  # a test tile in every row
    assert 0.1 < test.mean() < 0.3


def test_held_out_regions_disjoint(photos):
    # Per class, no pixel of a test crop is a pixel of any training crop.
    for label in range(10):
        boxes_tr = photos.box_train[photos.y_train == label]
        boxes_te = photos.box_test[photos.y_test == label]
        h = int(max(boxes_tr[:, 2].max(), boxes_te[:, 2].max()))
        w = int(max(boxes_tr[:, 3].max(), boxes_te[:, 3].max()))
        cover = np.zeros((h, w), dtype=bool)
        for y0, x0, y1, x1 in boxes_tr.tolist():
            cover[y0:y1, x0:x1] = True
        for y0, x0, y1, x1 in boxes_te.tolist():
            assert not cover[y0:y1, x0:x1].any()


def test_class_split_disjoint(photos):
    cfg = preset("smoke")
    split = split_data(photos, cfg.data)
    n = cfg.data.train_per_class
    assert len(split.forget) == len(split.retain) == 5 * n
    assert set(split.forget_labels.tolist()) == set(cfg.data.forget_classes)
    assert set(split.retain_labels.tolist()) == set(cfg.data.retain_classes)
    assert len(split.proxy) == 0
    assert len(split.forget_test) == 5 * cfg.data.test_per_class


def test_proxy_split_uses_other_classes(photos):
    cfg = preset("smoke", forget_classes=(0, 1), retain_classes=(2, 3))
    split = split_data(photos, cfg.data)
    assert len(split.proxy) == 6 * cfg.data.train_per_class
    # the proxy retain set draws no sample from the forget or retain classes
    other = (photos.y_train >= 4)
    assert torch.equal(split.proxy, photos.x_train[other])
    used = torch.cat([split.forget, split.retain]).flatten(1)
    assert not (split.proxy.flatten(1)[:, None] == used[None]).all(-1).any()


def test_sample_split(photos):
    cfg = preset("smoke", split="sample", forget_fraction=0.25)
    split = split_data(photos, cfg.data, seed=0)
    n = len(photos.y_train)
    assert len(split.forget) == round(0.25 * n) and len(split.forget) + len(split.retain) == n
    assert len(set(split.forget_labels.tolist())) > 1  # samples from many classes
    again = split_data(photos, cfg.data, seed=0)
    assert torch.equal(split.forget_index, again.forget_index)


def test_mask_geometry():
    half, quarter = make_mask("centre_half", 32), make_mask("centre_quarter", 32)
    assert half.shape == (1, 1, 32, 32) and half.sum() == 16 * 16 and quarter.sum() == 8 * 8
    assert half[0, 0, 8:24, 8:24].all() and half[0, 0, 7, :].sum() == 0
    assert quarter[0, 0, 12:20, 12:20].all()
    out4 = make_mask("outpaint_4", 32)  # band of 4 px on every side
    assert out4[0, 0, 4:28, 4:28].sum() == 0 and out4.sum() == 32 * 32 - 24 * 24
    assert make_mask("outpaint_4", 256).sum() == 256 * 256 - 192 * 192  # 8k px at 256 (testpaint.py)


@pytest.mark.parametrize("size", [32, 256])
def test_outpainting_band_width_for_every_k(size):
    for k in range(1, 14):
        band = int(size * k / 32)  # k px at 32 px, 8k px at 256 px (i2i_mage testpaint.py)
        m = make_mask(f"outpaint_{k}", size)[0, 0]
        inner = size - 2 * band
        assert m.sum() == size * size - inner * inner, k
        assert m[:band].all() and m[-band:].all() and m[:, :band].all() and m[:, -band:].all()
        assert m[band:size - band, band:size - band].sum() == 0


def test_centre_crop_sizes():
    for k in range(1, 16):
        m = make_mask(f"centre_{k}", 32)[0, 0]
        side = round(32 * k / 16)
        lo = (32 - side) // 2
        assert m.sum() == side * side and m[lo:lo + side, lo:lo + side].all(), k
    assert torch.equal(make_mask("centre_8", 32), make_mask("centre_half", 32))
    assert torch.equal(make_mask("centre_4", 256), make_mask("centre_quarter", 256))


@pytest.mark.parametrize("name, message", [("circle", "unknown mask"), ("outpaint_14", "1..13"),
                                           ("centre_16", "1..15"), ("centre_0", "1..15")])
def test_bad_mask(name, message):
    with pytest.raises(ValueError, match=message):
        make_mask(name, 32)


def test_converters_round_trip():
    x = torch.rand(2, 3, 8, 8)
    assert torch.allclose(from_pm1(to_pm1(x)), x)
    assert torch.allclose(imagenet_denormalize(imagenet_normalize(x)), x, atol=1e-6)
    assert (to_float(to_uint8(x)) - x).abs().max() <= 0.5 / 255 + 1e-6


def test_unknown_dataset_and_missing_imagenet(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        load_data(preset("smoke", dataset="mnist"))
    with pytest.raises(FileNotFoundError, match="ImageNet-1K not found"):
        load_data(preset("paper", data_root=str(tmp_path)))


def test_missing_cifar10_names_the_folder(tmp_path):
    cfg = preset("paper", dataset="cifar10", image_size=32, n_classes=10, forget_classes=(0,),
                 retain_classes=tuple(range(1, 10)), data_root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        load_data(cfg)


def test_spread_keeps_every_class_of_a_class_ordered_set():
    from l2l.data import spread, take_spread

    labels = torch.arange(10).repeat_interleave(80)  # 10 classes in order, 80 rows each
    idx = spread(len(labels), 50)
    assert len(idx) == 50 and len(set(idx.tolist())) == 50
    assert idx[0] == 0 and idx[-1] == len(labels) - 1
    assert torch.bincount(labels[idx], minlength=10).tolist() == [5] * 10
    assert spread(7, 50).tolist() == list(range(7))
    x = torch.randint(0, 256, (12, 3, 4, 4), dtype=torch.uint8)
    assert torch.equal(take_spread(x, 100), x.float() / 255)


def test_models_metrics_and_poisoning_do_not_import_data_loading():
    import subprocess
    import sys

    code = ("import sys, l2l.poison, l2l.models, l2l.metrics, l2l.losses; "
            "print('l2l.data' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # l2l.images holds what they need (no data <-> poison cycle)

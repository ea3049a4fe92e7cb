"""Li et al.'s official lists (l2l.official) and the paper-scale loader built on them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch

from l2l import official
from l2l.config import preset
from l2l.data import load_data, official_files

SPEC = json.loads((Path(__file__).parent / "data" / "spec_class_lists.json").read_text())


def test_imagenet_split_equals_the_spec_class_lists():
    classes = official.imagenet_classes()
    assert len(classes) == 200 and list(classes) == sorted(classes)
    assert list(classes[:100]) == SPEC["imagenet_forget"]
    assert list(classes[100:]) == SPEC["imagenet_retain"]


def test_places_order_matches_the_spec():
    classes = official.places_classes()
    assert len(classes) == len(set(classes)) == 365
    assert list(classes[:50]) == SPEC["places_retain"] and classes[0] == "/b/badlands"
    assert list(classes[50:100]) == SPEC["places_forget"] and classes[50] == "/a/archive"
    assert official.places_folder("/d/desert/sand") == "d/desert/sand"


def test_test_list_has_50_images_of_every_class():
    counts = Counter(w for _, w in official.imagenet_test_list())
    assert len(counts) == 200 and set(counts.values()) == {50}
    assert set(counts) == set(official.imagenet_classes())


def test_unlearning_selection_takes_100_of_the_released_120_by_a_seeded_rule():
    full = official.unlearn_selection(120)
    assert len(full) == 200 and {len(v) for v in full.values()} == {120}
    assert all(p.startswith(f"train/{w}/") for w, v in full.items() for p in v)
    paper = official.unlearn_selection()
    assert {len(v) for v in paper.values()} == {100}
    assert all(set(paper[w]) <= set(full[w]) for w in full)
    assert paper == official.unlearn_selection(100)  # deterministic
    assert paper != official.unlearn_selection(100, seed=1)
    with pytest.raises(ValueError, match="per_class must be 1..120"):
        official.unlearn_selection(121)


def test_places_val_table_covers_every_class():
    val = official.places_val_list()
    counts = Counter(c for _, c in val)
    assert len(val) == 36_500 and len(counts) == 365 and set(counts.values()) == {100}


def _jpeg(path: Path, value: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (20, 30), (value,) * 3).save(path)


def test_imagenet_loader_reads_the_listed_files_and_names_the_missing_ones(tmp_path):
    cfg = preset("paper", data_root=str(tmp_path), image_size=16, n_classes=2,
                 train_per_class=3, test_per_class=2, forget_classes=(0,), retain_classes=(1,),
                 proxy_per_class=0)
    (tmp_path / "imagenet" / "train").mkdir(parents=True)
    (tmp_path / "imagenet" / "val").mkdir()
    with pytest.raises(FileNotFoundError, match=r"10 image\(s\) of the official lists are missing"):
        official_files(cfg)
    selection = official.unlearn_selection(3)
    wnids = official.imagenet_classes()[:2]
    for i, w in enumerate(wnids):
        for p in selection[w]:
            _jpeg(tmp_path / "imagenet" / p, 10 + i)
    tests = [(p, w) for p, w in official.imagenet_test_list() if w in wnids]
    for p, w in tests[:2] + [t for t in tests if t[1] == wnids[1]][:2]:
        _jpeg(tmp_path / "imagenet" / p, 100 + wnids.index(w))
    images, split = load_data(cfg)
    assert images.class_names == wnids
    assert images.y_train.tolist() == [0, 0, 0, 1, 1, 1] and images.y_test.tolist() == [0, 0, 1, 1]
    assert images.x_train.shape == (6, 3, 16, 16) and images.x_train.dtype == torch.uint8
    assert images.x_train[4].float().mean().item() == pytest.approx(11, abs=0.5)
    assert len(split.forget) == 3 and len(split.retain) == 3


def test_places_loader_uses_the_authors_order_and_the_flat_val_folder(tmp_path):
    root = tmp_path / "places365"
    classes = official.places_classes()[:3]
    for i, name in enumerate(classes):
        for j in range(2):
            _jpeg(root / "train" / official.places_folder(name) / f"{j:08d}.jpg", 40 * i + j)
    val = [(f, c) for f, c in official.places_val_list() if c in classes]
    for f, c in val:
        _jpeg(root / "val" / f, 200 + classes.index(c))
    cfg = preset("paper", dataset="places365", data_root=str(tmp_path), image_size=16,
                 n_classes=3, train_per_class=2, test_per_class=1, forget_classes=(1,),
                 retain_classes=(0,), proxy_per_class=0)
    images, split = load_data(cfg)
    assert images.class_names == classes and classes[0] == "/b/badlands"
    assert images.y_train.tolist() == [0, 0, 1, 1, 2, 2] and images.y_test.tolist() == [0, 1, 2]
    assert images.x_test[2].float().mean().item() == pytest.approx(202, abs=0.5)
    assert len(split.forget) == 2 and len(split.retain) == 2 and len(split.proxy) == 2
    with pytest.raises(FileNotFoundError, match="holds 2 images; the config needs 3"):
        load_data(preset("paper", dataset="places365", data_root=str(tmp_path), image_size=16,
                         n_classes=3, train_per_class=3, test_per_class=1, forget_classes=(1,),
                         retain_classes=(0,), proxy_per_class=0))
    with pytest.raises(FileNotFoundError, match="Places-365 not found"):
        load_data(preset("paper", dataset="places365", data_root=str(tmp_path / "none")))


def test_preflight_names_every_missing_input_in_one_error(tmp_path):
    from l2l import preflight

    cfg = preset("paper", data_root=str(tmp_path))
    problems = preflight.missing_inputs(cfg)
    text = "\n".join(problems)
    for what in ("[data: imagenet", "[data: places365", "[data: cifar10", "[checkpoint: mae]",
                 "[checkpoint: vqgan]", "[checkpoint: diffusion]",
                 "[IS network: inception_tv_released, for mae]",
                 "[IS network: places_resnet50, for diffusion]"):
        assert what in text, what
    assert "inception_v3_google-0cc3c7bd.pth" in text and "resnet50_places365.pth.tar" in text
    assert "[checkpoint: autoencoder]" not in text  # the AutoEncoder is trained, not loaded
    assert "ImageNet-1K not found" in text and "data_batch_1" in text
    with pytest.raises(FileNotFoundError, match=rf"{len(problems)} input\(s\) missing"):
        preflight.check(cfg)
    with pytest.raises(SystemExit, match="checkpoint: mae"):
        preflight.main(["--scale", "paper", "--data-root", str(tmp_path)])


def test_imagenet_proxy_pool_is_the_other_800_classes(tmp_path):
    root = tmp_path / "imagenet"
    wnids = official.imagenet_classes()[:2]
    for i, w in enumerate(wnids):
        for p in official.unlearn_selection(1)[w]:
            _jpeg(root / p, 10 + i)
    for p, w in [t for t in official.imagenet_test_list() if t[1] in wnids][::50]:
        _jpeg(root / p, 90)
    others = [f"n9{j:07d}" for j in range(800)]  # not official wnids
    for j, w in enumerate(others):
        _jpeg(root / "train" / w / "a.JPEG", j % 200)
    cfg = preset("paper", data_root=str(tmp_path), image_size=8, n_classes=2, train_per_class=1,
                 test_per_class=1, forget_classes=(0,), retain_classes=(1,), proxy_per_class=1)
    images, split = load_data(cfg)
    assert images.class_names[:2] == wnids and images.class_names[2:] == tuple(others)
    assert images.y_train.tolist() == [0, 1] + list(range(2, 802))
    assert len(split.proxy) == 800 and len(split.forget) == 1 and len(split.retain) == 1
    assert preset("paper").data.proxy_per_class == 13  # ceil(r 100 N / 800), r = 1, N = 100
    (root / "train" / others[0] / "a.JPEG").unlink()
    with pytest.raises(FileNotFoundError, match="holds 0 images; the proxy pool needs 1"):
        load_data(cfg)

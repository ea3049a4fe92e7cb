"""Li et al.'s official data lists (``l2l/official_lists/``, source and commit in its README).

Paper-scale splits come from these lists, never from directory order (the released code's lists):

* ImageNet-1K (VQ-GAN, MAE): the 200 classes of ``imagenet_img_r_folder_dict.yaml`` in id order,
  forget = ids 0-99, retain = ids 100-199; test images = ``imagenet_test_full_test.csv`` (50
  validation images per class); training images = the released unlearning selection of 120 per
  class, of which the paper's 100 are taken by ``unlearn_selection`` (120 as an option);
* Places-365 (diffusion): the authors' class order ``places365_class_order.txt``, retain = lines
  1-50, forget = lines 51-100, proxy pool = lines 101-365; the validation images keep their flat
  release layout and get their class from ``places365_val.txt``.
"""

from __future__ import annotations

import csv
import json
import random
from functools import lru_cache
from pathlib import Path

LISTS = Path(__file__).resolve().parent / "official_lists"
N_FORGET = 100  # ImageNet ids 0-99 / Places lines 51-100
PLACES_RETAIN, PLACES_FORGET = range(0, 50), range(50, 100)  # 0-based positions in class order
SELECTION_SEED = 0


def _lines(name: str) -> list[str]:
    return [line.strip() for line in (LISTS / name).read_text().splitlines() if line.strip()]


@lru_cache(maxsize=None)
def imagenet_classes() -> tuple[str, ...]:
    """The 200 wnids in id order (id = position): forget = the first 100, retain = the rest."""
    ids = json.loads((LISTS / "imagenet_img_r_folder_dict.yaml").read_text())
    order = sorted(ids, key=ids.get)
    if [ids[w] for w in order] != list(range(len(order))):
        raise ValueError("imagenet_img_r_folder_dict.yaml: ids are not 0..N-1")
    return tuple(order)


@lru_cache(maxsize=None)
def imagenet_test_list() -> tuple[tuple[str, str], ...]:
    """The 10,000 test images as (path relative to the ImageNet root, wnid), in file order."""
    return tuple((p, p.split("/")[1]) for p in _lines("imagenet_test_full_test.csv"))


@lru_cache(maxsize=None)
def _selection_120() -> dict[str, list[str]]:
    """wnid -> the released 120 training images (paths relative to the ImageNet root)."""
    out: dict[str, list[str]] = {}
    with (LISTS / "imagenet_unlearn_train_120.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            path = row["imgs"].split("imagenet1k/", 1)[-1]  # drop the authors' ../dataset/ root
            out.setdefault(path.split("/")[1], []).append(path)
    return out


def unlearn_selection(per_class: int = 100, *, seed: int = SELECTION_SEED) -> dict[str, list[str]]:
    """wnid -> ``per_class`` training images of the released selection (paths relative to the
    ImageNet root). 120 returns the released lists as they are; fewer (the paper's 100) are a
    seeded sample of them: for each class in id order, ``random.Random(seed + class id)``
    shuffles the class's 120 paths sorted by name and the first ``per_class`` are kept, in name
    order. Deterministic across machines and Python versions."""
    released = _selection_120()
    if not 1 <= per_class <= 120:
        raise ValueError(f"per_class must be 1..120 (the released selection), got {per_class}")
    out = {}
    for cid, wnid in enumerate(imagenet_classes()):
        paths = released[wnid]
        if per_class == len(paths):
            out[wnid] = list(paths)
            continue
        names = sorted(paths)
        random.Random(seed + cid).shuffle(names)
        out[wnid] = sorted(names[:per_class])
    return out


@lru_cache(maxsize=None)
def places_classes() -> tuple[str, ...]:
    """The 365 Places classes in the authors' order (e.g. "/b/badlands" first): retain =
    positions 0-49, forget = 50-99, proxy pool = 100-364."""
    return tuple(_lines("places365_class_order.txt"))


def places_folder(name: str) -> str:
    """The release's folder of a class: "/b/badlands" -> "b/badlands"."""
    return name.strip("/")


@lru_cache(maxsize=None)
def places_val_list() -> tuple[tuple[str, str], ...]:
    """(validation file name, class name) for the 36,500 Places365 validation images; the
    index in ``places365_val.txt`` is the standard category order, i.e. the alphabetically
    sorted class names (Places365's ``categories_places365.txt``)."""
    standard = sorted(places_classes())
    out = []
    for line in _lines("places365_val.txt"):
        name, idx = line.split()
        out.append((name, standard[int(idx)]))
    return tuple(out)

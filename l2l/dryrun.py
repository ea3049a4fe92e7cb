"""A synthetic ``DATA_ROOT`` laid out exactly like the paper's, for the ``paper-dry`` scale.

``write_data_root(root)`` writes, for what the ``paper-dry`` preset reads (``l2l.config``):

* ``imagenet/train/<wnid>/<file>`` for the files of Li et al.'s unlearning selection of the 200
  official classes, ``imagenet/val/<wnid>/<file>`` for the first entries of each class in the
  official test list, and 800 further class folders (synthetic wnids ``n99xxxxxx``: l2l ships only
  the 200 official ones) holding the proxy pool;
* ``places365/train/<l>/<class>/<n>.jpg`` for the 365 classes of the authors' order and the
  validation images named by ``places365_val.txt`` flat in ``places365/val/``;
* ``cifar10/cifar-10-batches-py/`` (five training batches, the test batch, ``batches.meta`` in the
  release's pickle format; a few images per class);
* ``coco/`` (a few images, the COCO proxy option);
* ``checkpoints/`` with the official file names of the paper preset, holding randomly initialised
  models of the dry sizes in the official key layouts (MAE / MAGE: ``{"model": state}``;
  Palette: the Network's ``denoise_fn.*`` state).

Images are small random smooth JPEGs of random aspect ratio (so resizing and centre-cropping run
as on real photos), a different colour field per class; deterministic for a seed. Nothing here
is meaningful data: the dry run checks that the paper path executes.

    python -m l2l.dryrun /tmp/l2l-dry          # then: make paper-dry DATA_ROOT=/tmp/l2l-dry
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np
import torch

from l2l import official
from l2l.config import FAMILIES, PRESETS, RunConfig, for_family, replace
from l2l.data import CIFAR_TRAIN

DRY = "paper-dry"
OTHER_IMAGENET = 800  # ImageNet-1K classes outside the official 200
CIFAR_PER_CLASS = (4, 2)  # training images per class in each of the 5 batches, test images
COCO_IMAGES = 8


def _jpeg(path: Path, cls: int, rng: np.random.Generator) -> None:
    """A smooth random image of about 40-64 px of class colour ``cls``, saved as JPEG."""
    from PIL import Image  # a torchvision dependency

    h, w = (int(v) for v in rng.integers(40, 65, size=2))
    base = np.random.default_rng(cls).uniform(40, 215, size=3)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    field = np.stack([base[c] + 40 * np.sin(6 * (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1))
                                              + rng.uniform(0, 6)) for c in range(3)], axis=-1)
    img = np.clip(field + rng.normal(0, 8, size=field.shape), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, quality=90)


def _imagenet(root: Path, cfg: RunConfig, rng: np.random.Generator) -> int:
    d = cfg.data
    classes = official.imagenet_classes()
    n = 0
    for i, paths in enumerate(official.unlearn_selection(d.train_per_class).values()):
        for p in paths:
            _jpeg(root / p, i, rng)
            n += 1
    seen: dict[str, int] = {}
    for p, wnid in official.imagenet_test_list():
        if seen.get(wnid, 0) < d.test_per_class:
            _jpeg(root / p, classes.index(wnid), rng)
            seen[wnid] = seen.get(wnid, 0) + 1
            n += 1
    for j in range(OTHER_IMAGENET if d.proxy_per_class else 0):
        wnid = f"n99{j:06d}"
        for k in range(d.proxy_per_class):
            _jpeg(root / "train" / wnid / f"{wnid}_{k}.JPEG", 200 + j, rng)
            n += 1
    (root / "val").mkdir(parents=True, exist_ok=True)
    return n


def _places(root: Path, cfg: RunConfig, rng: np.random.Generator) -> int:
    d = cfg.data
    per = max(d.train_per_class, d.proxy_per_class)
    n = 0
    for i, name in enumerate(official.places_classes()):
        for k in range(per):
            _jpeg(root / "train" / official.places_folder(name) / f"{k + 1:08d}.jpg", i, rng)
            n += 1
    index = {c: i for i, c in enumerate(official.places_classes())}
    seen: dict[str, int] = {}
    for name, cls in official.places_val_list():
        if seen.get(cls, 0) < d.test_per_class:
            _jpeg(root / "val" / name, index[cls], rng)
            seen[cls] = seen.get(cls, 0) + 1
            n += 1
    return n


def _cifar10(root: Path, rng: np.random.Generator) -> int:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    per_batch, per_test = CIFAR_PER_CLASS

    def batch(per_class: int, label: str) -> dict[str, object]:
        labels = [c for c in range(10) for _ in range(per_class)]
        colours = np.random.default_rng(7).uniform(30, 225, size=(10, 3, 1, 1))
        x = colours[labels] + rng.normal(0, 25, size=(len(labels), 3, 32, 32))
        return {"batch_label": label, "labels": labels,
                "data": np.clip(x, 0, 255).astype(np.uint8).reshape(len(labels), -1),
                "filenames": [f"synthetic_{label}_{i}.png" for i in range(len(labels))]}

    for i, name in enumerate(CIFAR_TRAIN):
        (folder / name).write_bytes(pickle.dumps(batch(per_batch, f"training batch {i + 1} of 5")))
    (folder / "test_batch").write_bytes(pickle.dumps(batch(per_test, "testing batch 1 of 1")))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
             "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps(
        {"label_names": names, "num_cases_per_batch": 10 * per_batch, "num_vis": 3072}))
    return 10 * (5 * per_batch + per_test)


def _checkpoints(root: Path, cfg: RunConfig, seed: int) -> list[str]:
    from l2l.models import build_model
    from l2l.models import family as family_of

    written = []
    for k, family in enumerate(FAMILIES):
        fcfg = for_family(cfg, family)
        if not fcfg.model.checkpoint or fcfg.model.checkpoint in written:
            continue
        torch.manual_seed(seed + k)
        state = build_model(family, fcfg.model.size).state_dict()
        path = root / fcfg.model.checkpoint
        path.parent.mkdir(parents=True, exist_ok=True)
        key = family_of(family).checkpoint_key
        torch.save({key: state} if key else state, path)
        written.append(fcfg.model.checkpoint)
    return written


def write_data_root(root: str | Path, *, seed: int = 0) -> dict[str, int]:
    """Write the synthetic paper-layout ``DATA_ROOT`` the ``paper-dry`` preset reads; returns
    the number of files written per part."""
    root = Path(root).resolve()
    cfg = replace(PRESETS[DRY], data_root=str(root))  # not preset(): no $L2L_* override
    rng = np.random.default_rng(seed)
    counts = {"imagenet": _imagenet(root / "imagenet", for_family(cfg, "mae"), rng),
              "places365": _places(root / "places365", for_family(cfg, "diffusion"), rng),
              "cifar10": _cifar10(root / "cifar10", rng)}
    for i in range(COCO_IMAGES):
        _jpeg(root / "coco" / f"{i:012d}.jpg", 1000 + i, rng)
    counts["coco"] = COCO_IMAGES
    counts["checkpoints"] = len(_checkpoints(root, cfg, seed))
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m l2l.dryrun",
                                     description="write the synthetic DATA_ROOT of SCALE=paper-dry")
    parser.add_argument("root")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    counts = write_data_root(args.root, seed=args.seed)
    print(f"paper-dry DATA_ROOT written to {args.root}: "
          + ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()

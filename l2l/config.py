"""Run configuration: frozen dataclasses, the smoke / small / paper presets and a stable hash.

Every notebook builds its config with ``preset(SCALE, seed=..., device=..., data_root=...)``.
The environment variable ``L2L_SCALE`` (if set) wins over the ``scale`` argument, so that CI can
run every notebook at smoke scale exactly as committed (``L2L_SCALE=smoke pytest --nbmake``);
``L2L_DATA_ROOT`` likewise wins over ``data_root`` (the paper-dry run's synthetic data root).

Overrides are keyword arguments: a field name that exists in exactly one section
(``alpha=0.25``), a top-level field (``seed=1``), or ``section__field`` (``train__steps=10``).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

SCALES = ("smoke", "small", "paper", "paper-dry")
SECTIONS = ("data", "model", "train", "unlearn", "eval")


@dataclass(frozen=True)
class DataConfig:
    """Images, classes and the forget/retain split.

    ``photos`` is the offline small-scale set (crops of photographs shipped inside scikit-image
    and scikit-learn, one photo = one class); ``imagenet`` is read from ``data_root`` at paper
    scale (Li et al.'s ImageNet-1K split, from the released lists in ``l2l/official_lists``).
    """

    dataset: str = "photos"
    image_size: int = 32
    n_classes: int = 10
    train_per_class: int = 800
    test_per_class: int = 100
    forget_classes: tuple[int, ...] = (0, 1, 2, 3, 4)
    retain_classes: tuple[int, ...] = (5, 6, 7, 8, 9)
    split: str = "class"  # "class": forget = forget_classes | "sample": random training samples
    forget_fraction: float = 0.1  # share of the training set forgotten when split == "sample"
    poison: bool = False  # plant the backdoor (l2l.poison) in the sample-level forget images
    tile_grid: int = 5  # photos are cut into tile_grid tiles along the short side
    crop_scale: tuple[float, float] = (0.5, 1.0)  # crop side as a fraction of the tile side
    # seed of the photo crops and of the sample-level split; -1 = the run's ``seed``. Set it to
    # vary only the training seed over one data set (the AutoEncoder study's 3 seeds).
    sample_seed: int = -1
    # Li et al.'s proxy pool at paper scale (their "Ours (Proxy D_R)" rows; the released code's
    # pools, README "Proxy retain set"): ImageNet = training images of each of the other 800
    # classes (class ids after the official 200), 0 = none; Places-365 =
    # images of each proxy-pool class (positions 100-364; the released 200), 0 = train_per_class
    proxy_per_class: int = 0


@dataclass(frozen=True)
class ModelConfig:
    """Which generator family and size. ``checkpoint``: an official weight file under
    ``data_root`` (paper scale; ``l2l.pretrained``), checked against ``checkpoint_sha256`` when
    that is set and its sha256 recorded either way."""

    family: str = "mae"
    size: str = "tiny"
    checkpoint: str = ""
    checkpoint_sha256: str = ""
    # a retrained reference (retain data only) in the official layout, placed by the user: the
    # paper preset trains nothing, so without it the retrain rows are not available there
    retrain_checkpoint: str = ""
    # diffusion only: sampler steps at test time, 0 = the size's own (``places2``: the released
    # 2000); fewer respace the same schedule, a reduced protocol labelled by this field in every
    # sidecar's config
    sample_steps: int = 0


@dataclass(frozen=True)
class TrainConfig:
    """Training of the original and retrain generators and of the domain feature network.

    Defaults are the MAE recipe that learns on 2 CPU cores (measured by l2l's CPU prototype):
    AdamW, 5 % warm-up + cosine, batch 64, a mask ratio drawn per step from U(0.25, 0.75).
    """

    steps: int = 1200
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    warmup: float = 0.05  # fraction of the steps
    mask_ratio: tuple[float, float] = (0.25, 0.75)
    classifier_steps: int = 600
    classifier_lr: float = 2e-3
    tokenizer_steps: int = 0  # VQ-GAN only: the tokenizer is trained first, then frozen
    tokenizer_lr: float = 2e-3
    # scale of the tokenizer's adaptive PatchGAN term (l2l.models.vqgan.train_tokenizer; 0: L2 only)
    tokenizer_adversarial: float = 0.0


@dataclass(frozen=True)
class UnlearnConfig:
    """Unlearning: every method behind ``l2l.unlearn.unlearn``. The fields come in three groups
    (``UNLEARN_GROUPS``): the loop and the data every method uses, Li et al.'s forget term (their
    Eq. 10 and the four baselines), and Varshney & Torra's two stages. A method ignores the other
    methods' groups.

    ``batch_size`` is per subset: each step sees ``batch_size`` forget and ``batch_size``
    retain images (balanced halves: l2l's choice, README "Decisions and deviations"). ``mask`` is
    T during unlearning: ``"random"`` = MAE random masking at ``mask_ratio`` (l2l's choice for the
    MAE, which Li et al.'s released code lacks), ``"centre"`` = the
    test-time centre hole. Student and teacher passes always share the mask.
    """

    # ---- every method: the loop, T and the data
    method: str = "li2024"
    lr: float = 5e-5
    steps: int = 300
    batch_size: int = 64
    weight_decay: float = 0.05
    warmup: float = 0.05
    grad_clip: float = 3.0
    mask: str = "random"
    mask_ratio: float = 0.75
    retain_source: str = "real"  # "real" | "proxy" (the set named by ``proxy``)
    # Li et al.'s proxy retain set ("Ours (Proxy D_R)"): "other_classes" = training images of
    # classes outside forget and retain (seen by the original; ImageNet's other 800 classes);
    # "unseen_photos" = crops of photos the original never saw (the COCO analog; small scale,
    # l2l.data.unseen_photos); "coco" = as many images as there are forget images, the first
    # in name order of ``<data_root>/coco/`` (paper scale; Li et al.'s COCO option, l2l.data.coco)
    proxy: str = "other_classes"
    # the share of the real retain images unlearning sees (evenly spaced over the set, so every
    # class keeps its share): the retain-amount study of notebook 33; 1 = all
    retain_fraction: float = 1.0
    # the unlearning run's seed is cfg.seed + SEED_STRIDE * seed_offset (batches, T, noise): the
    # original is trained once with cfg.seed and unlearned with several seeds (Tables 1-3)
    seed_offset: int = 0
    log_every: int = 10
    # ---- Li et al. (li2024, li2024-proxy) and the four baselines: the forget term
    alpha: float = 0.1
    # Li et al.'s noise input (the released ``--noise_type``): "normal" = Gaussian with the
    # batch's mean and std, "uniform" = U[0, 1) per pixel, "constant" = the batch mean everywhere
    # (``l2l.unlearn.ops.noise_image``; also Noisy Label's target on the image families;
    # diffusion: Li et al.'s pure-noise channels only, see ``ops.DiffusionOps``)
    noise_type: str = "normal"
    # ---- Varshney & Torra (varshney2025, varshney2025-stage1). The paper publishes no recipe:
    # every value is l2l's choice, README "Unlearning methods"
    ga_params: str = "all"  # stage 1 updates "all" parameters (encoder + decoder) or "encoder"
    ga_lr: float = 1e-3  # plain SGD ascent step size
    ga_clip: float = 1.0  # global gradient-norm clip of the ascent
    ga_batch_size: int = 64
    ga_max_steps: int = 500  # T_max
    ga_check_every: int = 10  # k: evaluate the forget distance d every k steps
    lam: float = 0.0  # lambda when > 0; 0 = set by ``lam_rule``
    # how lambda = 0 is set (l2l's choice): "retrain" = d(original, retrained model) on
    # the forget probe (the run store calibrates it where a retrained model exists), "kappa_e0"
    # = kappa * e0 with e0 the original's hole MSE on a retain probe (no retrained model needed)
    lam_rule: str = "retrain"
    kappa: float = 1.0
    probe_size: int = 64  # P_f: fixed forget images on which d is measured (centre hole)
    ft_steps: int = -1  # stage 2 steps; -1 = ``steps`` (Li et al.'s budget); 0 = stage 1 alone
    ft_lr: float = 1e-4  # stage 2 Adam learning rate
    ft_hinge: float = 0.0  # stage 2 keep-OOD weight on max(0, L_forget at stop - L_forget)
    dp_sigma: float = 0.0  # std of the Gaussian added to every final parameter ((eps, delta))


# The groups of UnlearnConfig (in field order): which methods read which fields.
UNLEARN_GROUPS: dict[str, tuple[str, ...]] = {
    "every method": ("method", "lr", "steps", "batch_size", "weight_decay", "warmup", "grad_clip",
                     "mask", "mask_ratio", "retain_source", "proxy", "retain_fraction",
                     "seed_offset", "log_every"),
    "li2024, li2024-proxy and the baselines": ("alpha", "noise_type"),
    "varshney2025": ("ga_params", "ga_lr", "ga_clip", "ga_batch_size", "ga_max_steps",
                     "ga_check_every", "lam", "lam_rule", "kappa", "probe_size", "ft_steps",
                     "ft_lr", "ft_hinge", "dp_sigma"),
}


@dataclass(frozen=True)
class EvalConfig:
    """How completions are scored: feature extractor, hole, bootstrap."""

    extractor: str = "domain"  # small CNN trained on the small data set (cached)
    # Li et al.'s released protocol (l2l.protocol): the network of the IS ("" = the extractor's
    # own class outputs) and the reference of the full-image FID ("matched" | "full_resolution")
    is_network: str = ""
    fid_reference: str = "matched"
    hole: str = "centre_half"  # see l2l.data.make_mask
    n_boot: int = 50
    n_samples_figure: int = 6


@dataclass(frozen=True)
class RunConfig:
    """Everything a notebook run depends on. ``device="auto"``: CUDA if available, else CPU."""

    scale: str = "small"
    seed: int = 0
    device: str = "auto"
    data_root: str = "../data"
    num_workers: int = 0
    # "bf16": the passes of training, unlearning and generation under torch.autocast(bfloat16)
    # (a GPU option; losses, optimiser states and metric features stay float32); "fp32": none
    precision: str = "fp32"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    unlearn: UnlearnConfig = field(default_factory=UnlearnConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


# Small scale: Li et al. with 150 steps of 32 + 32 images at lr 1e-4 (measured on the photo set:
# forget hole FID x2.6, retain +10 %, in 5 % of the MAE's retraining time; l2l's CPU prototype's
# 300 steps of 64 + 64 at 5e-5 gave x2.7 / +14.6 % at 4x the cost).
# Varshney & Torra at small scale: stage 2 with the keep-OOD hinge (weight 1, Adam 3e-4, 450
# steps). Without it retention undid decoupling (forget distance back to ~0, forget hole MSE =
# original's); with it the forget-test hole MSE rises above the retrain reference's at a few %
# of retain MSE (README, results/small/forgetting_gap.csv; sensitive on the MAE).
# The photo set has no class outside forget and retain, so the proxy retain set is crops of
# photos the original never saw (the COCO analog of Li et al.'s proxy; l2l.data.unseen_photos).
SMALL = RunConfig(unlearn=UnlearnConfig(steps=150, batch_size=32, lr=1e-4, ft_hinge=1.0,
                                        ft_lr=3e-4, ft_steps=450, proxy="unseen_photos"))

SMOKE = RunConfig(
    scale="smoke",
    data=DataConfig(train_per_class=24, test_per_class=8),
    model=ModelConfig(size="smoke"),
    train=TrainConfig(steps=12, batch_size=16, classifier_steps=12),
    unlearn=UnlearnConfig(steps=4, batch_size=8, log_every=2, ga_batch_size=8, ga_max_steps=6,
                          ga_check_every=2, probe_size=8, proxy="unseen_photos"),
    eval=EvalConfig(n_boot=4, n_samples_figure=2),
)

# Paper scale: ImageNet-1K at 224 px with an official MAE checkpoint placed under data_root
# (l2l's choices, README "Decisions and deviations"; the MAE is not in Li et al.'s released code):
# ViT-L/16 GAN-loss weights, 100 training images per class (Li et al.'s number), alpha 0.2,
# lr 5e-5, 64 + 64 images per step for about 6 epochs of the 10k forget images.
PAPER = RunConfig(
    scale="paper",
    device="auto",
    num_workers=8,
    data=DataConfig(
        dataset="imagenet",
        image_size=224,
        n_classes=200,
        train_per_class=100,
        test_per_class=50,
        forget_classes=tuple(range(100)),
        retain_classes=tuple(range(100, 200)),
        # the released proxy set "other 800 classes" at r = 1, N = 100: ceil(r 100 N / 800)
        proxy_per_class=13,
    ),
    model=ModelConfig(size="large", checkpoint="checkpoints/mae_visualize_vit_large_ganloss.pth"),
    train=TrainConfig(steps=0),
    unlearn=UnlearnConfig(alpha=0.2, steps=940, log_every=20, lam_rule="kappa_e0"),
    eval=EvalConfig(extractor="inception", is_network="inception_tv_released",
                    fid_reference="full_resolution", n_boot=20, n_samples_figure=8),
)

# Paper-dry: the paper code path, executed on CPU in minutes on the synthetic DATA_ROOT that
# ``python -m l2l.dryrun DIR`` writes (``make paper-dry``, part of ``make test``): the paper's data
# sets read through Li et al.'s official lists and the streaming loader, official-layout
# checkpoints, proxy pools, the kappa * e0 lambda rule and worker threads, with smoke-size models
# at 32 px, a few images per class and smoke step counts. It checks that the paper path runs, not
# what it measures: the synthetic images and random checkpoints mean nothing. Scores use the
# domain network (the Inception / CLIP extractors have their own tests; clean-fid's Inception on
# 2 CPU cores would dominate the run).
PAPER_DRY = RunConfig(
    scale="paper-dry",
    num_workers=2,
    data=dataclasses.replace(PAPER.data, image_size=32, train_per_class=2, test_per_class=1,
                             proxy_per_class=1),
    model=dataclasses.replace(PAPER.model, size="smoke"),
    train=SMOKE.train,
    unlearn=dataclasses.replace(SMOKE.unlearn, alpha=PAPER.unlearn.alpha, proxy="other_classes",
                                lam_rule=PAPER.unlearn.lam_rule),
    eval=dataclasses.replace(SMOKE.eval, fid_reference="full_resolution"),
)

PRESETS = {"smoke": SMOKE, "small": SMALL, "paper": PAPER, "paper-dry": PAPER_DRY}

FAMILIES = ("mae", "vqgan", "diffusion", "autoencoder")
EXTRACTORS = ("domain", "inception", "clip")  # l2l.extractors
PROXIES = ("other_classes", "unseen_photos", "coco")  # UnlearnConfig.proxy
LAMBDA_RULES = ("retrain", "kappa_e0")  # UnlearnConfig.lam_rule
# Fields added after results were cached: left out of ``cache_key`` while at these values, so
# that every run cached before they existed (which ran as if they had them) stays valid.
KEY_STABLE_DEFAULTS = {("unlearn", "lam_rule"): "retrain", ("data", "sample_seed"): -1,
                       ("data", "proxy_per_class"): 0,
                       ("unlearn", "retain_fraction"): 1.0, ("unlearn", "noise_type"): "normal",
                       ("eval", "is_network"): "", ("eval", "fid_reference"): "matched",
                       ("model", "sample_steps"): 0, ("model", "retrain_checkpoint"): "",
                       ("train", "tokenizer_adversarial"): 0.0}
NOISE_TYPES = ("normal", "uniform", "constant")  # UnlearnConfig.noise_type
IS_NETWORKS = ("inception_tv_released", "inception_tv", "places_resnet50")  # l2l.protocol
FID_REFERENCES = ("matched", "full_resolution")  # EvalConfig.fid_reference, l2l.protocol
SEED_STRIDE = 10007  # unlearning seed = cfg.seed + SEED_STRIDE * unlearn.seed_offset

# Per-family recipes, applied by ``for_family`` on top of a preset: model size and the training
# recipe of the original / retrain generators. MAE's recipe is the preset itself.
FAMILY_RECIPES: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {
        "mae": {},
        "vqgan": {"model__size": "smoke", "train__tokenizer_steps": 8},
        "diffusion": {"model__size": "smoke"},
        "autoencoder": {"model__size": "smoke"},
    },
    "small": {
        "mae": {},
        # MAGE "small" (l2l.models.mage.SIZES): the 8 x 8-token tokenizer trained 2000 steps
        # of 64 with the adversarial term at scale 0.5 (about 9 min on one thread), then the
        # masked-token transformer 2400 steps of 64 at lr 1e-3 (about 12 min). The earlier
        # "tiny" (L2-only tokenizer, one "mean" decoding pass) was chosen for hole MSE and
        # filled holes with a flat blur: hole FID 1.2-1.3x the mean fill's on the test crops.
        "vqgan": {"model__size": "small", "train__tokenizer_steps": 2000,
                  "train__tokenizer_adversarial": 0.5, "train__steps": 2400},
        # Palette "tiny" (l2l.models.diffusion.SIZES, where the choice is measured): 1500 steps
        # of 64 at lr 2e-3, about 6.5 min on one thread
        "diffusion": {"model__size": "tiny", "train__steps": 1500, "train__lr": 2e-3,
                      "train__weight_decay": 0.0},
        # the paper-scale AE recipe (l2l's choice) uses Adam lr 1e-3, batch 128, 30 epochs; here
        # 4000 steps of 64 at lr 2e-3 (32 epochs, about 3 min on one thread) on centre holes of
        # every size (l2l.models.autoencoder.SIZES["small"], where the choice is measured)
        "autoencoder": {"model__size": "small", "train__steps": 4000, "train__lr": 2e-3,
                        "train__weight_decay": 0.0, "train__betas": (0.9, 0.999)},
    },
    "paper": {
        "mae": {},
        "vqgan": {"model__size": "base", "model__checkpoint": "checkpoints/mage-vitb-1600.pth",
                  "data__image_size": 256},
        "diffusion": {"model__size": "places2", "model__checkpoint": "checkpoints/16_Network.pth",
                      "data__dataset": "places365", "data__image_size": 256,
                      "data__n_classes": 365, "data__forget_classes": tuple(range(50, 100)),
                      "data__retain_classes": tuple(range(50)), "data__test_per_class": 100,
                      "data__proxy_per_class": 200, "eval__is_network": "places_resnet50",
                      "eval__fid_reference": "matched"},
        "autoencoder": {"model__size": "cifar10", "model__checkpoint": "",
                        "data__dataset": "cifar10", "data__image_size": 32, "data__n_classes": 10,
                        "data__forget_classes": (0,), "data__retain_classes": tuple(range(1, 10)),
                        "data__train_per_class": 5000, "data__test_per_class": 1000,
                        "train__steps": 11730, "train__batch_size": 128, "train__lr": 1e-3,
                        "train__weight_decay": 0.0, "train__betas": (0.9, 0.999),
                        # CIFAR-10 has no class outside forget + retain: the proxy rows use
                        # the unseen photos, as at small scale
                        "unlearn__proxy": "unseen_photos",
                        "eval__is_network": "", "eval__fid_reference": "matched"},
    },
}


# Paper-dry recipes: the paper recipes' data sets, splits and checkpoint files at the dry sizes.
FAMILY_RECIPES["paper-dry"] = {
    "mae": {},
    "vqgan": {"model__size": "smoke", "model__checkpoint": "checkpoints/mage-vitb-1600.pth"},
    "diffusion": {"model__size": "smoke", "model__checkpoint": "checkpoints/16_Network.pth",
                  "data__dataset": "places365", "data__n_classes": 365,
                  "data__forget_classes": tuple(range(50, 100)),
                  "data__retain_classes": tuple(range(50)), "eval__fid_reference": "matched"},
    "autoencoder": {"model__size": "smoke", "model__checkpoint": "", "data__dataset": "cifar10",
                    "data__n_classes": 10, "data__forget_classes": (0,),
                    "data__retain_classes": tuple(range(1, 10)), "data__proxy_per_class": 0,
                    "unlearn__proxy": "unseen_photos", "eval__fid_reference": "matched"},
}


def _field_index() -> dict[str, list[str]]:
    """Map each field name to the sections that define it ("" = top level)."""
    index: dict[str, list[str]] = {}
    for f in dataclasses.fields(RunConfig):
        if f.name in SECTIONS:
            for g in dataclasses.fields(f.default_factory()):  # type: ignore[misc]
                index.setdefault(g.name, []).append(f.name)
        else:
            index.setdefault(f.name, []).append("")
    return index


def _coerce(value: Any, default: Any, name: str) -> Any:
    """Lists become tuples; numbers keep their kind; anything else must match the default's type."""
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"config field {name!r} takes a tuple, got {value!r}")
        return tuple(value)
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        if not isinstance(value, type(default)):
            raise TypeError(f"config field {name!r} takes {type(default).__name__}, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"config field {name!r} takes a number, got {value!r}")
    if isinstance(default, float):
        return float(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise TypeError(f"config field {name!r} takes an integer, got {value!r}")
        return int(value)
    return value


def replace(cfg: RunConfig, **overrides: Any) -> RunConfig:
    """Return ``cfg`` with overrides applied (names as in the module docstring)."""
    index = _field_index()
    top: dict[str, Any] = {}
    per_section: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for key, value in overrides.items():
        if "__" in key:
            section, name = key.split("__", 1)
            if section not in SECTIONS or section not in index.get(name, []):
                raise ValueError(f"unknown config field {key!r}")
        else:
            owners = index.get(key)
            if owners is None:
                close = difflib.get_close_matches(key, list(index), n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise ValueError(f"unknown config field {key!r}{hint}")
            if len(owners) > 1:
                options = ", ".join(f"{s}__{key}" for s in owners)
                raise ValueError(f"config field {key!r} is ambiguous; use one of {options}")
            section, name = owners[0], key
        if section == "":
            top[name] = _coerce(value, getattr(cfg, name), name)
        else:
            sub = getattr(cfg, section)
            per_section[section][name] = _coerce(value, getattr(sub, name), f"{section}.{name}")
    if "scale" in top:
        raise ValueError("change the scale with preset(scale), not as an override")
    sections = {s: dataclasses.replace(getattr(cfg, s), **kw) for s, kw in per_section.items() if kw}
    return validate(dataclasses.replace(cfg, **top, **sections))


def preset(scale: str = "small", **overrides: Any) -> RunConfig:
    """The preset for ``scale`` with overrides; ``$L2L_SCALE`` (if set) replaces ``scale`` and
    ``$L2L_DATA_ROOT`` (if set) the ``data_root`` override.

    Args:
        scale: "smoke" (tests, seconds), "small" (CPU, offline, minutes), "paper" (GPU) or
            "paper-dry" (the paper path on a synthetic DATA_ROOT, ``l2l.dryrun``).
        **overrides: field overrides, e.g. ``seed=1``, ``alpha=0.25``, ``train__steps=10``.

    Returns:
        A frozen, validated ``RunConfig``.
    """
    env = os.environ.get("L2L_SCALE")
    if env and env != scale:
        # said once per call, on stderr: a notebook's SCALE parameter is being overridden
        warnings.warn(f"L2L_SCALE={env} overrides scale={scale!r} (unset L2L_SCALE to use it)",
                      stacklevel=2)
    scale = env or scale
    if scale not in PRESETS:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    if os.environ.get("L2L_DATA_ROOT"):  # the paper-dry test's synthetic DATA_ROOT
        overrides["data_root"] = os.environ["L2L_DATA_ROOT"]
    from l2l.runtime import fix_threads

    fix_threads()  # every computation of a notebook at the one thread count (l2l.runtime)
    return replace(PRESETS[scale], **overrides)


def for_family(cfg: RunConfig, family: str) -> RunConfig:
    """``cfg`` switched to ``family`` with that family's recipe for ``cfg.scale``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")
    return replace(cfg, family=family, **FAMILY_RECIPES[cfg.scale][family])


def validate(cfg: RunConfig) -> RunConfig:
    """Reject configs that cannot run, with a message naming the field."""
    d, u = cfg.data, cfg.unlearn
    for section in ("",) + SECTIONS:
        sub = getattr(cfg, section) if section else cfg
        for f in dataclasses.fields(sub):
            value = getattr(sub, f.name)
            values = value if isinstance(value, tuple) else (value,)
            if any(isinstance(v, float) and not math.isfinite(v) for v in values):
                name = f"{section}.{f.name}" if section else f.name
                raise ValueError(f"config field {name} must be finite, got {value!r}")
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or cfg.seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {cfg.seed!r}")
    if cfg.scale not in PRESETS:
        raise ValueError(f"unknown scale {cfg.scale!r}; choose one of {', '.join(SCALES)}")
    if cfg.device not in ("auto", "cpu", "cuda") and not cfg.device.startswith("cuda:"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {cfg.device!r}")
    if cfg.precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be 'fp32' or 'bf16', got {cfg.precision!r}")
    if cfg.model.family not in FAMILIES:
        raise ValueError(f"unknown model family {cfg.model.family!r}; choose one of {', '.join(FAMILIES)}")
    if cfg.eval.extractor not in EXTRACTORS:
        raise ValueError(f"unknown eval.extractor {cfg.eval.extractor!r}; choose one of "
                         f"{', '.join(EXTRACTORS)}")
    if cfg.model.sample_steps < 0 or (cfg.model.sample_steps and cfg.model.family != "diffusion"):
        raise ValueError(f"model.sample_steps must be 0 (the size's own) or, for the diffusion "
                         f"family only, >= 1; got {cfg.model.sample_steps} for "
                         f"{cfg.model.family!r}")
    if cfg.eval.is_network not in ("",) + IS_NETWORKS:
        raise ValueError(f"unknown eval.is_network {cfg.eval.is_network!r}; choose '' (the "
                         f"extractor's own class outputs) or one of {', '.join(IS_NETWORKS)}")
    if cfg.eval.fid_reference not in FID_REFERENCES:
        raise ValueError(f"eval.fid_reference must be one of {', '.join(FID_REFERENCES)}, got "
                         f"{cfg.eval.fid_reference!r}")
    if d.split not in ("class", "sample"):
        raise ValueError(f"data.split must be 'class' or 'sample', got {d.split!r}")
    classes = set(range(d.n_classes))
    if not set(d.forget_classes) <= classes or not set(d.retain_classes) <= classes:
        raise ValueError(f"forget/retain classes must lie in 0..{d.n_classes - 1}")
    if d.split == "class" and (not d.forget_classes or not d.retain_classes):
        raise ValueError("data.forget_classes and data.retain_classes must each name at least "
                         "one class")
    if set(d.forget_classes) & set(d.retain_classes):
        raise ValueError("data.forget_classes and data.retain_classes overlap")
    if d.poison and d.split != "sample":
        raise ValueError("data.poison needs data.split = 'sample' (the poisoned images are "
                         "the forget set)")
    if d.proxy_per_class < 0:
        raise ValueError(f"data.proxy_per_class must be >= 0, got {d.proxy_per_class}")
    if d.sample_seed < -1:
        raise ValueError(f"data.sample_seed must be -1 (= seed) or >= 0, got {d.sample_seed}")
    if not 0 < d.forget_fraction < 1:
        raise ValueError(f"data.forget_fraction must be in (0, 1), got {d.forget_fraction}")
    if u.mask not in ("random", "centre"):
        raise ValueError(f"unlearn.mask must be 'random' or 'centre', got {u.mask!r}")
    if u.retain_source not in ("real", "proxy"):
        raise ValueError(f"unlearn.retain_source must be 'real' or 'proxy', got {u.retain_source!r}")
    if u.proxy not in PROXIES:
        raise ValueError(f"unlearn.proxy must be one of {', '.join(PROXIES)}, got {u.proxy!r}")
    if u.seed_offset < 0:
        raise ValueError(f"unlearn.seed_offset must be >= 0, got {u.seed_offset}")
    if u.ga_params not in ("all", "encoder"):
        raise ValueError(f"unlearn.ga_params must be 'all' or 'encoder', got {u.ga_params!r}")
    if u.lam < 0 or u.kappa <= 0 or u.dp_sigma < 0 or u.ga_check_every < 1:
        raise ValueError("unlearn.lam, dp_sigma must be >= 0, kappa > 0, ga_check_every >= 1")
    if u.lam_rule not in LAMBDA_RULES:
        raise ValueError(f"unlearn.lam_rule must be one of {', '.join(LAMBDA_RULES)}, got "
                         f"{u.lam_rule!r}")
    if u.noise_type not in NOISE_TYPES:
        raise ValueError(f"unlearn.noise_type must be one of {', '.join(NOISE_TYPES)}, got "
                         f"{u.noise_type!r}")
    if not 0 < u.retain_fraction <= 1:
        raise ValueError(f"unlearn.retain_fraction must be in (0, 1], got {u.retain_fraction}")
    if u.ft_steps < -1:
        raise ValueError(f"unlearn.ft_steps must be -1 (= steps), 0 or more, got {u.ft_steps}")
    if u.alpha < 0 or u.lr <= 0 or u.steps < 0:
        raise ValueError("unlearn.alpha must be >= 0, unlearn.lr > 0 and unlearn.steps >= 0")
    if cfg.train.tokenizer_adversarial < 0:
        raise ValueError(f"train.tokenizer_adversarial must be >= 0, got "
                         f"{cfg.train.tokenizer_adversarial}")
    return cfg


def to_dict(cfg: RunConfig) -> dict[str, Any]:
    """Plain JSON-able dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


# Fields added after whole configs (``key_dict``) keyed cached tables: left out of those keys
# while at these values, so that the tables cached before they existed stay valid.
# The defaults come from KEY_STABLE_DEFAULTS (one table of values); a field added later goes
# into both (or only here when ``cache_key`` never holds it, as ``precision``).
FULL_KEY_STABLE_DEFAULTS = {k: KEY_STABLE_DEFAULTS[k] for k in (
    ("eval", "is_network"), ("eval", "fid_reference"), ("model", "sample_steps"),
    ("model", "retrain_checkpoint"), ("train", "tokenizer_adversarial"))} | {
    (None, "precision"): "fp32"}


def key_dict(cfg: RunConfig) -> dict[str, Any]:
    """``to_dict(cfg)`` as a cache key: the ``FULL_KEY_STABLE_DEFAULTS`` fields dropped while at
    their default."""
    d = to_dict(cfg)
    for (section, name), default in FULL_KEY_STABLE_DEFAULTS.items():
        where = d if section is None else d[section]
        if where.get(name) == default:
            del where[name]
    return d


def from_dict(d: dict[str, Any]) -> RunConfig:
    """Inverse of ``to_dict``; unknown keys raise ``ValueError``."""
    d = dict(d)
    sections = {}
    kinds = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig,
             "unlearn": UnlearnConfig, "eval": EvalConfig}
    for name, kind in kinds.items():
        sub = d.pop(name, {})
        known = {f.name: f.default for f in dataclasses.fields(kind)}
        extra = set(sub) - set(known)
        if extra:
            raise ValueError(f"unknown {name} config fields: {sorted(extra)}")
        sections[name] = kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in sub.items()})
    extra = set(d) - {f.name for f in dataclasses.fields(RunConfig)}
    if extra:
        raise ValueError(f"unknown config fields: {sorted(extra)}")
    return validate(RunConfig(**d, **sections))


def config_hash(obj: RunConfig | dict[str, Any], length: int = 12) -> str:
    """Stable short sha256 of a config (or any JSON-able dict), independent of key order."""
    d = to_dict(obj) if isinstance(obj, RunConfig) else obj
    blob = json.dumps(d, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def cache_key(cfg: RunConfig, *parts: str) -> dict[str, Any]:
    """The sub-config an artefact depends on, e.g. ``cache_key(cfg, "data", "model", "train")``.

    Always includes the scale and the seed; device, workers and data root are left out because
    they do not change what is computed (up to floating-point non-determinism), and so are the
    ``KEY_STABLE_DEFAULTS`` fields while at their default.
    """
    full = to_dict(cfg)
    key = {"scale": cfg.scale, "seed": cfg.seed}
    if cfg.precision != "fp32":  # bf16 changes what is computed
        key["precision"] = cfg.precision
    for part in parts:
        if part not in full:
            raise ValueError(f"unknown config part {part!r}")
        key[part] = {k: v for k, v in full[part].items()
                     if KEY_STABLE_DEFAULTS.get((part, k), object()) != v}
    return key


def data_seed(cfg: RunConfig) -> int:
    """The seed of the data (photo crops, sample-level split): ``data.sample_seed`` or, when
    it is -1, the run's ``seed``."""
    return cfg.seed if cfg.data.sample_seed < 0 else cfg.data.sample_seed


def unlearn_seed(cfg: RunConfig) -> int:
    """The seed of an unlearning run's random draws: ``cfg.seed`` for ``seed_offset`` 0 (so
    single-seed runs are unchanged), a distinct stream for every further offset."""
    return cfg.seed + SEED_STRIDE * cfg.unlearn.seed_offset


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when available, else ``"cpu"``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available")
    return device

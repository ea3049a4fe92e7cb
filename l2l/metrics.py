"""Metrics for completed images: FID, IS and per-pair cosine on full images and hole crops.

Li et al. score completions with FID (clean-fid, Inception-V3), IS and a per-pair CLIP image
cosine, each on the forget and the retain test set (Li et al. 2024, Tables 1-2; released scripts
``eval.py``, ``eval365.py``, ``clip_embed.py``). At small scale the
feature network is ``DomainClassifier`` (no download); the Frechet distance itself is always
clean-fid's ``fid_from_feats`` / ``frechet_distance``. Because 75 % of a centre-inpainted image
is untouched context, every feature metric is also reported on the hole only: the bounding box
of the hole cropped and resized back to H x W (l2l's choice: its CPU prototype found full-image
metrics insensitive).

Pure functions of images, features and probabilities: the networks that make features live in
``l2l.extractors``, the reference fills in ``l2l.evaluation``.

Conventions: images float [N, 3, H, W] in [0, 1]; masks float [1 or N, 1, H, W] with
1 = hole, 0 = known; features float64 numpy [N, D]; class probabilities float64 [N, K].
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable
from importlib import metadata
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import rel_entr

from l2l.images import to_float

try:  # installed with scikit-learn (pinned in requirements.txt)
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - only slower without it
    threadpool_limits = None

IS_SPLITS = 10
KID_SUBSETS = 100
REGIONS = ("full", "hole")


# ----------------------------------------------------------------------------- FID
def _quiet_sqrtm(fn: Callable[..., Any], *args: Any) -> float:
    # clean-fid 0.1.35 calls scipy.linalg.sqrtm(..., disp=False), deprecated in SciPy 1.17;
    # silence exactly that warning and nothing else. One BLAS thread: on 2 CPU cores sqrtm of
    # a 128 x 128 matrix took ~10 ms single-threaded against 90-300 ms with 2 threads, which
    # matters because each bootstrap replicate is one more sqrtm.
    one_thread = (threadpool_limits(limits=1, user_api="blas") if threadpool_limits
                  else contextlib.nullcontext())
    with one_thread, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"The `disp` argument is deprecated",
                                category=DeprecationWarning)
        return float(fn(*args))


def fid_from_features(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (clean-fid).

    Args:
        feats_a: float [N, D]. feats_b: float [M, D]; N, M > 1 (the covariance needs two rows).

    Returns:
        FID >= 0 (up to round-off), in squared feature units.
    """
    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need [N, D] and [M, D] features, got {a.shape} and {b.shape}")
    if min(len(a), len(b)) < 2:
        raise ValueError("FID needs at least two samples per set")
    from cleanfid.fid import fid_from_feats  # imports torchvision: only when needed

    return _quiet_sqrtm(fid_from_feats, a, b)


def frechet_gaussian(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
    """Frechet distance ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2) (clean-fid).

    Args:
        mu1, mu2: means float [D]. sigma1, sigma2: covariances float [D, D] (PSD).
    """
    from cleanfid.fid import frechet_distance

    args = (np.asarray(v, np.float64) for v in (mu1, sigma1, mu2, sigma2))
    return _quiet_sqrtm(frechet_distance, *args)


# ----------------------------------------------------------------------------- KID
def kid_from_features(feats_a: np.ndarray, feats_b: np.ndarray, *, num_subsets: int = 100,
                      max_subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (clean-fid's ``kernel_distance``), mean and std over subsets.

    Unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / D + 1)^3 on random subsets
    of m = min(N, M, max_subset_size) rows of each set (Binkowski et al. 2018). clean-fid's
    ``kernel_distance`` draws its subsets from NumPy's global RNG and returns only the mean, so
    it is called once per subset (``num_subsets=1``) under ``np.random.seed(seed)``: the mean of
    these values is exactly ``kernel_distance(a, b, num_subsets)`` after the same seeding, and
    their spread gives the std (as StyleGAN's and torch-fidelity's KID report). The global RNG
    state is restored afterwards. Unlike FID, a finite-sample KID can be slightly negative;
    for two equal sets it is O(1/m), not exactly 0 (the cross term keeps its diagonal).

    Args:
        feats_a: float [N, D]. feats_b: float [M, D]; min(N, M) >= 2.
        num_subsets: subsets drawn. max_subset_size: cap on m. seed: subset RNG seed.

    Returns:
        (mean, std) in the features' units (not x 1000); std is ddof=1, nan if num_subsets < 2.
    """
    from cleanfid.fid import kernel_distance

    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need [N, D] and [M, D] features, got {a.shape} and {b.shape}")
    if min(len(a), len(b), max_subset_size) < 2 or num_subsets < 1:
        raise ValueError("KID needs at least two samples per set and one subset")
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        values = [kernel_distance(a, b, num_subsets=1, max_subset_size=max_subset_size)
                  for _ in range(num_subsets)]
    finally:
        np.random.set_state(state)
    std = float(np.std(values, ddof=1)) if num_subsets > 1 else math.nan
    return float(np.mean(values)), std


# ----------------------------------------------------------------------------- IS and cosine
def inception_score(probs: np.ndarray, splits: int = IS_SPLITS) -> tuple[float, float]:
    """Inception Score exp(E_x KL(p(y|x) || p(y))), mean and std over ``splits`` chunks.

    As in the paper's IS (10 splits, std over splits), with p(y) the chunk's marginal.

    Args:
        probs: class probabilities float [N, K], rows sum to 1. splits: 1 <= splits <= N.

    Returns:
        (mean, std) over chunks, each score in [1, K]: 1 for constant predictions, K for
        confident predictions spread evenly over the K classes.
    """
    p = np.asarray(probs, np.float64)
    if p.ndim != 2 or not 1 <= splits <= len(p):
        raise ValueError(f"need probs [N, K] and 1 <= splits <= N, got {p.shape}, {splits}")
    scores = []
    for chunk in np.array_split(p, splits):
        marginal = chunk.mean(axis=0, keepdims=True)  # [1, K]
        kl = rel_entr(chunk, marginal).sum(axis=1)  # [n]; 0 * log 0 = 0
        scores.append(math.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def pair_cosine(feats_a: np.ndarray, feats_b: np.ndarray) -> np.ndarray:
    """Per-pair cosine similarity float64 [N] in [-1, 1] of rows a_i, b_i, both float [N, D].

    The small-scale analog of the paper's CLIP score (image-image cosine per pair; released
    ``clip_embed.py``). A zero vector has cosine 0 with everything.
    """
    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"need two [N, D] arrays of one shape, got {a.shape} and {b.shape}")
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cos = (a * b).sum(axis=1) / np.maximum(norms, 1e-12)
    return np.clip(cos, -1.0, 1.0)


# ----------------------------------------------------------------------------- hole geometry
def hole_box(mask: torch.Tensor) -> tuple[int, int, int, int]:
    """Bounding box (top, left, bottom, right) of the union of holes; bottom/right exclusive.

    Args:
        mask: float [B or 1, 1, H, W] (or [H, W]), 1 = hole.

    >>> m = torch.zeros(1, 1, 8, 8); m[..., 2:6, 3:5] = 1; hole_box(m)
    (2, 3, 6, 5)
    """
    union = (mask > 0.5).reshape(-1, *mask.shape[-2:]).any(dim=0)  # [H, W]
    rows, cols = union.any(dim=1).nonzero().flatten(), union.any(dim=0).nonzero().flatten()
    if len(rows) == 0:
        raise ValueError("mask has no hole pixels")
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def hole_crop(x: torch.Tensor, mask: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """The hole's bounding box of every image, resized to ``size`` x ``size``.

    What "hole-only" metrics show the feature network (bilinear with antialias).

    Args:
        x: float [B, 3, H, W] in [0, 1]. mask: float [B or 1, 1, H, W], 1 = hole.
        size: output side; default H.

    Returns:
        float [B, 3, size, size] in [0, 1].
    """
    top, left, bottom, right = hole_box(mask)
    crop = to_float(x)[..., top:bottom, left:right]
    size = size or x.shape[-2]
    if crop.shape[-2:] == (size, size):
        return crop.clone()
    out = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False,
                        antialias=True)
    return out.clamp(0.0, 1.0)


def hole_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error inside the hole, per image.

    Args:
        pred, target: float [B, 3, H, W] in [0, 1]. mask: float [B or 1, 1, H, W], 1 = hole.

    Returns:
        float [B] in [0, 1]: sum over hole pixels and channels / (3 * hole pixels).
    """
    m = (mask > 0.5).to(pred.dtype).expand(pred.shape[0], 1, *pred.shape[-2:])
    sq = (to_float(pred) - to_float(target)) ** 2 * m  # [B, 3, H, W]; outside hole -> 0
    count = m.sum(dim=(1, 2, 3)) * pred.shape[1]
    if (count == 0).any():
        raise ValueError("an image has no hole pixels")
    return sq.sum(dim=(1, 2, 3)) / count


def psnr_from_mse(mse: float, max_value: float = 1.0) -> float:
    """PSNR in dB, 10 log10(max_value^2 / mse); ``inf`` for mse == 0.

    >>> psnr_from_mse(0.01)
    20.0
    """
    return math.inf if mse <= 0 else 10.0 * math.log10(max_value**2 / mse)


# ----------------------------------------------------------------------------- uncertainty
def bootstrap_std(stat: Callable[[np.ndarray], float], n: int, n_boot: int, seed: int) -> float:
    """Bootstrap standard deviation of a statistic of ``n`` paired items.

    Each replicate draws ``n`` indices with replacement (``np.random.default_rng(seed)``) and
    evaluates ``stat(indices)``; the caller indexes every paired array with the same indices.

    Args:
        stat: int64 indices [n] -> float. n: items. n_boot: replicates. seed: RNG seed.

    Returns:
        Sample std (ddof=1) of the replicates; ``nan`` when ``n_boot < 2`` (bootstrap off).
    """
    if n_boot < 2:
        return math.nan
    rng = np.random.default_rng(seed)
    values = [stat(rng.integers(0, n, size=n)) for _ in range(n_boot)]
    return float(np.std(values, ddof=1))


# ----------------------------------------------------------------------------- metric row
FeatureFn = Callable[[torch.Tensor], tuple[np.ndarray, "np.ndarray | None"]]


def kid_subset_size(n: int) -> int:
    """KID subset size: clean-fid's 1000, but at most half the set, so that with a few hundred
    images the subsets differ (with m = N every subset is the whole set and the std is 0)."""
    return max(2, min(1000, n // 2))


def _feature_fn(extractor: Any) -> FeatureFn:
    """``extractor.run_rows`` of an ``l2l.extractors.Extractor`` (split over the processes under
    torchrun), or ``run`` of any object with one."""
    if hasattr(extractor, "run_rows"):
        return extractor.run_rows
    if hasattr(extractor, "run"):
        return extractor.run
    raise TypeError(f"need an l2l.extractors.Extractor (a trained DomainClassifier becomes one "
                    f"through get_extractor('domain', net=...)), got {type(extractor).__name__}")


def completion_metrics(outputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor,
                       extractor: Any, *, n_boot: int, seed: int,
                       full_reference: np.ndarray | None = None) -> dict[str, float]:
    """The metric row of one model on one test set (Li et al.'s FID / IS / CLIP, small-scale analog).

    For region in ("full", "hole") ("hole" = ``hole_crop`` resized to H x W):
    ``fid_{region}`` (outputs' vs targets' features), ``kid_{region}`` (clean-fid's KID on
    subsets of ``kid_subset_size(N)``, std over subsets), ``is_{region}`` (outputs' class
    probabilities; 10 splits, ``N // 2`` when N < 20; nan when the extractor has no class
    outputs) and ``cos_{region}`` (mean per-pair cosine); ``fid_*_std`` and ``cos_*_std`` are
    bootstrap stds over pairs (the same indices in both sets; one ``seed``, so every metric sees
    the same replicates), ``is_*_std`` is the std over IS splits as in the paper. Also
    ``mse_hole`` (mean per-image hole MSE), ``mse_hole_std`` (bootstrap), ``psnr_hole`` (of
    ``mse_hole``) and ``n_images``.

    Args:
        outputs: completed images float [N, 3, H, W] in [0, 1].
        targets: ground truth of the same inputs, paired by index, float [N, 3, H, W] in [0, 1].
        mask: float [1 or N, 1, H, W], 1 = hole.
        extractor: an ``l2l.extractors.Extractor`` (it runs on its own device).
        n_boot: bootstrap replicates (< 2: stds are nan). seed: bootstrap and KID-subset seed.
        full_reference: features [N, D] of the targets' files at full resolution, paired by
            index (Li et al.'s released ImageNet FID, ``l2l.protocol``): ``fid_full`` is taken
            against them and the matched one is kept as ``fidmatched_full``.

    Returns:
        dict of floats; FID and KID in squared feature units, MSE in [0, 1] units, PSNR in dB.
    """
    if outputs.shape != targets.shape:
        raise ValueError(f"outputs {tuple(outputs.shape)} and targets {tuple(targets.shape)}")
    run = _feature_fn(extractor)
    n, size = len(outputs), outputs.shape[-2]
    splits = min(IS_SPLITS, max(1, n // 2))
    row: dict[str, float] = {}
    for region in REGIONS:
        out, tgt = to_float(outputs), to_float(targets)
        if region == "hole":
            out, tgt = hole_crop(out, mask, size), hole_crop(tgt, mask, size)
        fa, pa = run(out)
        fb = extractor.features(tgt) if hasattr(extractor, "features") else run(tgt)[0]
        cos = pair_cosine(fa, fb)
        row[f"fid_{region}"] = fid_from_features(fa, fb)
        row[f"fid_{region}_std"] = bootstrap_std(
            lambda i: fid_from_features(fa[i], fb[i]), n, n_boot, seed)
        if region == "full" and full_reference is not None:
            if len(full_reference) != n:
                raise ValueError(f"full_reference has {len(full_reference)} rows for {n} images")
            row["fidmatched_full"], row["fidmatched_full_std"] = row["fid_full"], row["fid_full_std"]
            row["fid_full"] = fid_from_features(fa, full_reference)
            row["fid_full_std"] = bootstrap_std(
                lambda i: fid_from_features(fa[i], full_reference[i]), n, n_boot, seed)
        row[f"kid_{region}"], row[f"kid_{region}_std"] = kid_from_features(
            fa, fb, num_subsets=KID_SUBSETS, max_subset_size=kid_subset_size(n), seed=seed)
        row[f"is_{region}"], row[f"is_{region}_std"] = (
            inception_score(pa, splits) if pa is not None else (math.nan, math.nan))
        row[f"cos_{region}"] = float(cos.mean())
        row[f"cos_{region}_std"] = bootstrap_std(lambda i: float(cos[i].mean()), n, n_boot, seed)
    mse = hole_mse(to_float(outputs), to_float(targets), mask.to(outputs.device)).double()
    mse = mse.cpu().numpy()
    row["mse_hole"] = float(mse.mean())
    row["mse_hole_std"] = bootstrap_std(lambda i: float(mse[i].mean()), n, n_boot, seed)
    row["psnr_hole"] = psnr_from_mse(row["mse_hole"])
    row["n_images"] = float(n)
    return row


def metric_provenance(extractor: Any, *, n_images: int, image_size: int, n_boot: int,
                      seed: int) -> dict[str, Any]:
    """How ``completion_metrics`` numbers were made, for result sidecars: the extractor's own
    provenance (name, weights and sha256, resize, input size), implementations, image count and
    size, bootstrap, seed and package versions."""
    versions = {}
    for pkg in ("torch", "numpy", "scipy", "clean-fid"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    s = f"{image_size}x{image_size}"
    return {
        **extractor.provenance(),
        "fid_impl": f"clean-fid {versions['clean-fid']} fid_from_feats",
        "kid_impl": f"clean-fid {versions['clean-fid']} kernel_distance, {KID_SUBSETS} subsets "
                    f"of {kid_subset_size(n_images)} pairs (min(1000, N // 2)), mean and std "
                    "over subsets",
        "is_impl": f"exp(E KL(p(y|x) || p(y))), {IS_SPLITS} splits (N // 2 if N < 20), "
                   "std over splits; nan when the extractor has no class outputs",
        "cos_impl": "mean per-pair cosine of extractor features (analog of CLIP image cosine)",
        "regions": {"full": f"whole {s} image",
                    "hole": f"bounding box of the hole, resized to {s} bilinear antialias"},
        "bootstrap": "pairs resampled with replacement, same indices in both sets, std ddof=1",
        "n_images": n_images,
        "image_size": image_size,
        "n_boot": n_boot,
        "seed": seed,
        "versions": versions,
    }

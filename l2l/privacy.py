"""Privacy and forgetting audits: membership inference, OOD AUROC, backdoor success, t-SNE.

Varshney & Torra's audit and metrics (l2l's choices; the paper's abstract gives no details) and
Li et al.'s t-SNE panel (Li et al. 2024, Fig. 4): a loss-threshold membership-inference attack
(forget-train vs unseen test images), an AUROC of a reconstruction-error detector separating
forget-class from retain-class test images, the backdoor success rate (BSR) of triggered test
inputs, and a 2-D t-SNE of embeddings. The
loss everywhere is the per-image hole MSE of the model's completion under the test hole
(``cfg.eval.hole``), the same quantity as ``l2l.metrics.hole_mse``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch

from l2l.config import RunConfig
from l2l.images import make_mask, take
from l2l.evaluation import complete
from l2l.metrics import hole_mse
from l2l.poison import add_trigger, backdoor_success


def _auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(score of a positive > score of a negative) + 0.5 P(tie) (sklearn's ROC AUC)."""
    pos, neg = np.asarray(positive, np.float64).ravel(), np.asarray(negative, np.float64).ravel()
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("both score sets need at least one value")
    if not (np.isfinite(pos).all() and np.isfinite(neg).all()):
        raise ValueError("scores must be finite")
    from sklearn.metrics import roc_auc_score  # scikit-learn loads in ~2 s: only when needed

    labels = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    return float(roc_auc_score(labels, np.r_[pos, neg]))


def mia_auc(member_losses: np.ndarray, nonmember_losses: np.ndarray) -> float:
    """AUC of the loss-threshold membership-inference attack (Yeom et al. 2018).

    The attacker predicts "member" when the loss is below a threshold; the AUC over all
    thresholds is P(loss of a member < loss of a non-member) (ties count half). 0.5 = the
    attacker cannot tell (the target after unlearning: the retrained model's AUC, l2l's choice);
    1 = every member has a lower loss than every non-member.

    Args:
        member_losses: float [N] (e.g. forget-train images). nonmember_losses: float [M]
            (unseen test images). Per-image losses, e.g. ``per_sample_loss``.

    Returns:
        AUC in [0, 1].
    """
    return _auroc(-np.asarray(member_losses, np.float64), -np.asarray(nonmember_losses, np.float64))


def ood_auroc(scores_in: np.ndarray, scores_out: np.ndarray) -> float:
    """AUROC of a score-threshold OOD detector: higher score = out-of-distribution.

    For Varshney & Torra's OOD score, ``scores_out`` are reconstruction errors of forget-class
    test images and ``scores_in`` those of retain-class test images (l2l's choice); the
    "realistic" target of unlearning is the retrained model's AUROC, not 1.

    Args:
        scores_in: float [N] (in-distribution). scores_out: float [M] (OOD).

    Returns:
        P(score_out > score_in) + 0.5 P(tie), in [0, 1]; 0.5 = no separation.
    """
    return _auroc(scores_out, scores_in)


@torch.no_grad()
def per_sample_loss(model: Any, images: Any, cfg: RunConfig, *,
                    hole: str | None = None) -> np.ndarray:
    """Per-image hole MSE of the model's completion under the test hole.

    Args:
        model: a family model or a reference fill name (see ``l2l.evaluation.complete``).
        images: uint8 [N, 3, S, S] or float in [0, 1], or an indexable data set of such images.
        cfg: run config (device, seed of sampled completions, ``eval.hole``).
        hole: mask name; default ``cfg.eval.hole``.

    Returns:
        float64 [N], in [0, 1] units.
    """
    x = take(images, torch.arange(len(images)))
    mask = make_mask(hole or cfg.eval.hole, x.shape[-1])
    out = complete(model, x, mask, cfg)
    return hole_mse(out, x, mask).double().numpy()


@torch.no_grad()
def backdoor_success_rate(model: Any, clean_test_images: Any, cfg: RunConfig, *,
                          hole: str | None = None) -> float:
    """Backdoor success rate (BSR, l2l's audit metric): the fraction of held-out images whose
    completion, with the trigger added and the test hole masked, is closer (hole MSE) to the
    target colour than to the true hole content (``l2l.poison.backdoor_success``).

    Args:
        model: a family model or a reference fill name. clean_test_images: untriggered test
            images, uint8 [N, 3, S, S] or float in [0, 1], or an indexable data set.
        cfg: run config. hole: mask name; default ``cfg.eval.hole`` (the poisoning hole).

    Returns:
        BSR in [0, 1].
    """
    hole = hole or cfg.eval.hole
    x = take(clean_test_images, torch.arange(len(clean_test_images)))
    mask = make_mask(hole, x.shape[-1])
    out = complete(model, add_trigger(x), mask, cfg)
    return float(backdoor_success(out, x, hole).double().mean())


def tsne_embed(features: np.ndarray, perplexity: float = 20.0, seed: int = 0, *,
               learning_rate: float = 125.0, early_exaggeration: float = 4.0,
               max_iter: int = 1000) -> np.ndarray:
    """2-D t-SNE of embeddings (Li et al. 2024, Fig. 4: their T-SNE figure), scikit-learn.

    Defaults follow the released script (van der Maaten's reference ``tsne.py``): perplexity 20,
    1000 iterations, early exaggeration 4, random initialisation (no PCA), and its step size
    eta = 500, which is ``learning_rate=125`` here: scikit-learn's gradient carries the factor 4
    of the t-SNE gradient that ``tsne.py`` leaves out (sklearn's docs: its learning rate is 4x
    that of other implementations). With eta = 500 in sklearn units, 60 points already blew up
    to coordinates ~1e3 with mixed clusters. scikit-learn still differs in the exaggeration
    length (250 iterations, not 100) and its Barnes-Hut gradient; coordinates are
    seed-dependent in any case, so only the grouping is comparable.

    Args:
        features: float [N, D]; N > 3 * perplexity is advisable (sklearn needs N > perplexity).
        perplexity: effective number of neighbours. seed: initialisation seed.

    Returns:
        float64 [N, 2].
    """
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or len(f) <= perplexity:
        raise ValueError(f"need features [N, D] with N > perplexity, got {f.shape}, {perplexity}")
    from sklearn.manifold import TSNE

    tsne = TSNE(n_components=2, perplexity=perplexity, early_exaggeration=early_exaggeration,
                learning_rate=learning_rate, max_iter=max_iter, init="random",
                random_state=seed)
    return tsne.fit_transform(f).astype(np.float64)


def tsne_groups(features: dict[str, np.ndarray], seed: int = 0) -> pd.DataFrame:
    """One t-SNE of several groups of embeddings (in the dict's order) at perplexity 20, or
    (N - 1) / 3 for N < 61 points: a DataFrame of x, y and the group name of each point."""
    f = np.concatenate(list(features.values()))
    xy = tsne_embed(f, perplexity=min(20.0, (len(f) - 1) / 3), seed=seed)
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "group": np.repeat(
        list(features), [len(v) for v in features.values()])})


# ----------------------------------------------------------------------------- (epsilon, delta)
def gaussian_epsilon(sigma: float, sensitivity: float, delta: float = 1e-5) -> dict[str, Any]:
    """The epsilon the Gaussian mechanism gives for noise ``sigma`` and L2 ``sensitivity``:
    sigma = Delta sqrt(2 ln(1.25 / delta)) / epsilon solved for epsilon (Dwork & Roth 2014,
    Thm. A.1), i.e. epsilon = Delta sqrt(2 ln(1.25 / delta)) / sigma.

    That theorem holds for epsilon < 1 only; ``valid`` says whether it does. With Delta the
    *measured* distance between unlearned and retrained weights this is an empirical reading,
    not a guarantee (the true sensitivity is a sup over data sets), and never the paper's
    (epsilon, delta): Varshney & Torra 2025 state the guarantee in their abstract; its constants
    are not published.

    Returns:
        {"epsilon", "delta", "sigma", "sensitivity", "valid"}; epsilon = inf for sigma = 0.
    """
    if sigma < 0 or sensitivity < 0 or not 0 < delta < 1:
        raise ValueError(f"need sigma >= 0, sensitivity >= 0 and 0 < delta < 1, got sigma="
                         f"{sigma}, sensitivity={sensitivity}, delta={delta}")
    c = math.sqrt(2 * math.log(1.25 / delta))
    eps = math.inf if sigma == 0 else sensitivity * c / sigma
    return {"epsilon": eps, "delta": delta, "sigma": sigma, "sensitivity": sensitivity,
            "valid": bool(eps < 1)}


@torch.no_grad()
def parameter_distance(a: torch.nn.Module, b: torch.nn.Module) -> float:
    """L2 norm of the difference of two models' parameters (same architecture), over every
    parameter (a frozen, shared MAGE tokenizer contributes zero)."""
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    if pa.keys() != pb.keys():
        raise ValueError("the two models have different parameters")
    total = sum(float(((pa[k].detach().double() - pb[k].detach().double().to(pa[k].device)) ** 2)
                      .sum()) for k in pa)
    return math.sqrt(total)

"""Estimators for Li et al.'s theory as small pure functions (NumPy, PyTorch).

The method's argument behind Li et al.'s Eq. 10, as l2l reconstructs it: maximising a divergence
on the forget set is unbounded; the mutual information between forget inputs and outputs is
removed by matching the outputs of noise; by the data-processing inequality and the KL of two
Gaussians with a shared covariance, an L2 loss on encoder embeddings bounds the output KL. Notebook
``34_p1_theory`` checks each step numerically with these functions:

* ``gaussian_kl`` / ``mc_gaussian_kl``: KL(N(mu0, S) || N(mu1, S)) in closed form and by
  Monte Carlo; ``kl_eigen_bounds``: the isotropic surrogate's bounds for an anisotropic S;
* ``knn_kl``: the k-nearest-neighbour KL divergence estimator of Wang, Kulkarni & Verdu (2009);
* ``ksg_mi``: the Kraskov-Stoegbauer-Grassberger mutual information estimator (2004, estimator 1);
* ``gaussian_mi``, ``discrete_kl``: closed forms the estimators are tested against.

All return nats. Inputs are float arrays [N, d] (a 1-D array is one dimension).
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["gaussian_kl", "mc_gaussian_kl", "kl_eigen_bounds", "knn_kl", "ksg_mi",
           "gaussian_mi", "discrete_kl"]


def _as2d(x) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    if t.ndim == 1:
        t = t[:, None]
    if t.ndim != 2 or len(t) < 2:
        raise ValueError(f"expected samples [N >= 2, d], got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError("samples contain NaN or inf")
    return t


def gaussian_kl(mu0, mu1, cov) -> float:
    """KL(N(mu0, cov) || N(mu1, cov)) = (mu0 - mu1)^T cov^-1 (mu0 - mu1) / 2 (shared covariance;
    ``cov`` a scalar variance sigma^2, a vector of variances or a full [d, d] matrix). For
    ``cov = sigma^2`` it is ||mu0 - mu1||^2 / (2 sigma^2): Li et al.'s L2 loss up to a scale."""
    d = torch.as_tensor(np.asarray(mu0), dtype=torch.float64) - torch.as_tensor(
        np.asarray(mu1), dtype=torch.float64)
    c = torch.as_tensor(np.asarray(cov), dtype=torch.float64)
    if c.ndim <= 1:
        if (c <= 0).any():
            raise ValueError("variances must be > 0")
        return float((d * d / c).sum() / 2)
    return float(d @ torch.linalg.solve(c, d) / 2)


def mc_gaussian_kl(mu0, mu1, cov, *, n: int = 100_000, seed: int = 0) -> float:
    """Monte-Carlo KL(N(mu0, cov) || N(mu1, cov)) = mean over z ~ N(mu0, cov) of
    log p(z) - log q(z) (``n`` samples, ``seed``), for a full or diagonal covariance."""
    mu0 = torch.as_tensor(np.asarray(mu0), dtype=torch.float64)
    mu1 = torch.as_tensor(np.asarray(mu1), dtype=torch.float64)
    c = torch.as_tensor(np.asarray(cov), dtype=torch.float64)
    full = c if c.ndim == 2 else torch.diag(c.expand(len(mu0)) if c.ndim else c.repeat(len(mu0)))
    p = torch.distributions.MultivariateNormal(mu0, covariance_matrix=full)
    q = torch.distributions.MultivariateNormal(mu1, covariance_matrix=full)
    torch.manual_seed(seed)
    z = p.sample((n,))
    return float((p.log_prob(z) - q.log_prob(z)).mean())


def kl_eigen_bounds(mu0, mu1, cov) -> tuple[float, float]:
    """(||dmu||^2 / (2 l_max), ||dmu||^2 / (2 l_min)) with l the eigenvalues of ``cov`` [d, d]:
    the range in which the Gaussian KL lies when plain L2 stands in for the Mahalanobis form
    (l2l's derivation, not a claim of the paper)."""
    d = torch.as_tensor(np.asarray(mu0), dtype=torch.float64) - torch.as_tensor(
        np.asarray(mu1), dtype=torch.float64)
    eig = torch.linalg.eigvalsh(torch.as_tensor(np.asarray(cov), dtype=torch.float64))
    sq = float(d @ d)
    return sq / (2 * float(eig.max())), sq / (2 * float(eig.min()))


def _kth_distance(a: torch.Tensor, b: torch.Tensor, k: int, *, exclude_self: bool) -> torch.Tensor:
    """Euclidean distance from every row of ``a`` to its k-th nearest row of ``b`` (in chunks)."""
    out = []
    for i in range(0, len(a), 2048):
        d = torch.cdist(a[i:i + 2048], b)
        if exclude_self:
            d[torch.arange(len(d)), torch.arange(i, i + len(d))] = math.inf
        out.append(d.kthvalue(k, dim=1).values)
    return torch.cat(out)


def knn_kl(x, y, *, k: int = 1) -> float:
    """KL(P || Q) from samples x ~ P [n, d] and y ~ Q [m, d] (Wang, Kulkarni & Verdu 2009):

        D = d / n * sum_i log(nu_k(i) / rho_k(i)) + log(m / (n - 1)),

    rho_k(i) the distance from x_i to its k-th nearest neighbour among the other x, nu_k(i) to its
    k-th nearest y. Consistent for continuous densities; ties (atoms, e.g. a quantiser's output)
    break it: use ``discrete_kl`` there."""
    x, y = _as2d(x), _as2d(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same dimension, got {x.shape[1]} and {y.shape[1]}")
    if not 1 <= k < min(len(x), len(y)):
        raise ValueError(f"k must be in 1..{min(len(x), len(y)) - 1}, got {k}")
    rho = _kth_distance(x, x, k, exclude_self=True)
    nu = _kth_distance(x, y, k, exclude_self=False)
    if (rho == 0).any() or (nu == 0).any():
        raise ValueError("repeated samples (zero neighbour distance): the k-NN estimator needs "
                         "continuous data")
    n, m, d = len(x), len(y), x.shape[1]
    return float(d * torch.log(nu / rho).mean() + math.log(m / (n - 1)))


def ksg_mi(x, y, *, k: int = 3) -> float:
    """I(X; Y) from paired samples x [N, dx], y [N, dy] (Kraskov, Stoegbauer & Grassberger 2004,
    estimator 1, max-norm):

        I = psi(k) + psi(N) - mean_i [psi(n_x(i) + 1) + psi(n_y(i) + 1)],

    eps(i) the max-norm distance to the k-th neighbour in the joint space, n_x(i) / n_y(i) the
    number of other points strictly closer than eps(i) in each marginal. Clipped at 0."""
    x, y = _as2d(x), _as2d(y)
    if len(x) != len(y):
        raise ValueError(f"x and y must be paired, got {len(x)} and {len(y)} samples")
    n = len(x)
    if not 1 <= k < n:
        raise ValueError(f"k must be in 1..{n - 1}, got {k}")
    nx, ny, eps_all = [], [], []
    for i in range(0, n, 1024):
        dx = torch.cdist(x[i:i + 1024], x, p=math.inf)
        dy = torch.cdist(y[i:i + 1024], y, p=math.inf)
        joint = torch.maximum(dx, dy)
        rows = torch.arange(len(joint))
        joint[rows, torch.arange(i, i + len(joint))] = math.inf
        eps = joint.kthvalue(k, dim=1).values[:, None]
        nx.append((dx < eps).sum(1) - 1)  # minus the point itself (distance 0 < eps)
        ny.append((dy < eps).sum(1) - 1)
        eps_all.append(eps)
    nx, ny = torch.cat(nx).double(), torch.cat(ny).double()
    psi = torch.special.digamma
    mi = (psi(torch.tensor(float(k))) + psi(torch.tensor(float(n)))
          - (psi(nx + 1) + psi(ny + 1)).mean())
    return max(float(mi), 0.0)


def gaussian_mi(rho: float) -> float:
    """I(X; Y) of a bivariate normal with correlation ``rho``: -log(1 - rho^2) / 2."""
    if not -1 < rho < 1:
        raise ValueError(f"rho must be in (-1, 1), got {rho}")
    return -0.5 * math.log(1 - rho * rho)


def discrete_kl(p, q) -> float:
    """KL(p || q) of two probability vectors (p_i > 0 needs q_i > 0, else inf)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.shape != q.shape or (p < 0).any() or (q < 0).any():
        raise ValueError("p and q must be non-negative vectors of one shape")
    p, q = p / p.sum(), q / q.sum()
    on = p > 0
    if (q[on] == 0).any():
        return math.inf
    return float((p[on] * np.log(p[on] / q[on])).sum())

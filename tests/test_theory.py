"""l2l.theory: each estimator against its closed form (stated tolerances), and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from l2l import theory


def test_gaussian_kl_is_the_scaled_squared_distance():
    mu0, mu1 = np.zeros(3), np.array([1.0, 2.0, 2.0])  # ||dmu||^2 = 9
    assert theory.gaussian_kl(mu0, mu1, 4.0) == pytest.approx(9 / 8)
    assert theory.gaussian_kl(mu0, mu1, np.eye(3) * 4.0) == pytest.approx(9 / 8)
    assert theory.gaussian_kl(mu0, mu1, np.array([1.0, 4.0, 4.0])) == pytest.approx(0.5 + 1)
    with pytest.raises(ValueError, match="variances must be > 0"):
        theory.gaussian_kl(mu0, mu1, 0.0)


@pytest.mark.parametrize("d,sigma,dist", [(2, 0.5, 1.0), (16, 2.0, 3.0)])
def test_monte_carlo_kl_is_on_the_line(d, sigma, dist):
    mu1 = np.zeros(d)
    mu1[0] = dist
    exact = dist ** 2 / (2 * sigma ** 2)
    mc = theory.mc_gaussian_kl(np.zeros(d), mu1, sigma ** 2, n=20_000, seed=1)
    # MC std of log p - log q is dist / sigma; 20k samples: 5 standard errors
    assert mc == pytest.approx(exact, abs=5 * dist / sigma / math.sqrt(20_000))


def test_anisotropic_kl_lies_inside_the_eigenvalue_bounds():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    cov = q @ np.diag([0.5, 1.0, 1.5, 2.0]) @ q.T
    mu1 = rng.normal(size=4)
    lo, hi = theory.kl_eigen_bounds(np.zeros(4), mu1, cov)
    kl = theory.gaussian_kl(np.zeros(4), mu1, cov)
    assert lo < kl < hi
    assert lo == pytest.approx(float(mu1 @ mu1) / 4) and hi == pytest.approx(float(mu1 @ mu1))


@pytest.mark.parametrize("dim,shift", [(1, 1.0), (2, 1.5)])
def test_knn_kl_estimates_the_gaussian_kl(dim, shift):
    rng = np.random.default_rng(dim)
    x = rng.normal(size=(4000, dim))
    y = rng.normal(size=(4000, dim)) + np.r_[shift, np.zeros(dim - 1)]
    exact = shift ** 2 / 2  # 0.5 and 1.125 nats
    assert theory.knn_kl(x, y, k=5) == pytest.approx(exact, abs=0.1)
    assert abs(theory.knn_kl(x, rng.normal(size=(4000, dim)), k=5)) < 0.05  # same law: ~0


def test_knn_kl_refuses_atoms_and_bad_shapes():
    x = np.repeat(np.arange(10.0), 10)
    with pytest.raises(ValueError, match="continuous data"):
        theory.knn_kl(x, x + 0.5)
    with pytest.raises(ValueError, match="same dimension"):
        theory.knn_kl(np.zeros((5, 1)), np.ones((5, 2)))
    with pytest.raises(ValueError, match="NaN"):
        theory.knn_kl(np.array([0.0, np.nan, 1.0]), np.arange(3.0))


@pytest.mark.parametrize("rho", [0.0, 0.6, 0.9])
def test_ksg_mi_estimates_the_gaussian_mi(rho):
    rng = np.random.default_rng(3)
    x = rng.normal(size=2000)
    y = rho * x + math.sqrt(1 - rho ** 2) * rng.normal(size=2000)
    exact = theory.gaussian_mi(rho)  # 0, 0.223, 0.830 nats
    assert theory.ksg_mi(x, y, k=3) == pytest.approx(exact, abs=0.05)


def test_ksg_mi_needs_paired_samples():
    with pytest.raises(ValueError, match="paired"):
        theory.ksg_mi(np.zeros(5), np.zeros(6))


def test_discrete_kl_closed_form():
    assert theory.discrete_kl([0.5, 0.5], [0.25, 0.75]) == pytest.approx(
        0.5 * math.log(2) + 0.5 * math.log(2 / 3))
    assert theory.discrete_kl([0.5, 0.5], [1.0, 0.0]) == math.inf
    assert theory.discrete_kl([1, 2], [1, 2]) == 0.0

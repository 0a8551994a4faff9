"""Spectral diagnostics of an EGOP: stable rank (Eq. 3), density beta, normalized spectra, principal angles.

References:
  egop.md Sec. 3 (stable rank, Eq. 3 and footnote 3; density beta; Thm. 3's factor sr_f / (beta d)), Figs. 2, 6, 7
  (normalized spectra); notes §4 [REC] (the rebuilt forms of Eq. 3 and beta).
"""
from __future__ import annotations

import math
from typing import NamedTuple

from .. import backend, validate
from .estimate import EgopResult


#: stable_rank forms: "nuclear" = sum sqrt(lambda_i) / sqrt(lambda_1) (Eq. 3 as rebuilt, notes §4 [REC,
#: confident]); "frobenius" = sum lambda_i / lambda_1 (the numerical-linear-algebra stable rank of G; NOT Eq. 3).
STABLE_RANK_FORMS = ("nuclear", "frobenius")

#: leading_density forms: "squared" = ||v||_1^2 / d (notes §4 [REC]); "l1" = ||v||_1 / sqrt(d) (the less likely reading).
DENSITY_FORMS = ("squared", "l1")


def stable_rank(eigenvalues, *, form: str = "nuclear"):
    """Stable rank of the EGOP, Eq. (3): sr_f = sum_i sqrt(lambda_i) / sqrt(lambda_1) (``form="nuclear"``).

    References: egop.md Sec. 3, Eq. (3) and footnote 3; notes §4 [REC, confident]: the square roots make it
    ||G||_* / ||G||_op of the scaled bundle; 1 for rank one, d for a flat spectrum.
    ``form="frobenius"``: sum lambda_i / lambda_1 = ||G||_F^2 / ||G||_2^2, the usual numerical stable rank (not Eq. 3).

    Args: eigenvalues (d,) >= 0 (any order; |lambda| <= 4 d u lambda_1, rounding of an exact zero by the
      numerical-rank rule ``validate.zero_tolerance``, counts as 0), not all zero.
    Returns: 0-d array in the input's dtype.
    """
    validate.one_of(form, "form", STABLE_RANK_FORMS)
    lam, xp = _spectrum(eigenvalues)
    lam1 = xp.max(lam)
    if form == "nuclear":
        return xp.sum(xp.sqrt(lam)) / xp.sqrt(lam1)
    return xp.sum(lam) / lam1


def leading_density(v, *, form: str = "squared"):
    """Density beta of the leading eigenvector: ||v||_1^2 / d in [1/d, 1] (notes §4 [REC]).

    beta -> 1 for a maximally dense unit v (|v_i| = 1/sqrt(d)); about 2/pi for v uniform on the sphere;
    1/d for a coordinate vector. ``form="l1"``: ||v||_1 / sqrt(d) (the less likely reading; = sqrt of the other).

    Args: v (d,) unit vector (normalized here if it is not). Returns: 0-d array.
    """
    validate.one_of(form, "form", DENSITY_FORMS)
    xp = validate.float_array(v, "v", ndim=1)
    validate.finite(v, "v", xp=xp)
    d = v.shape[0]
    nrm = xp.linalg.vector_norm(v)
    if d == 0 or float(nrm) == 0.0:
        raise ValueError("v: expected a non-zero vector")
    l1 = xp.sum(xp.abs(v / nrm))
    return l1 * l1 / d if form == "squared" else l1 / math.sqrt(d)


def density_measure(eigenvalues, V):
    """max_k (lambda_k / lambda_1) * ||v_k||_1^2 / d, the general measure after Thm. 3 (notes §4 [REC]).

    Args: eigenvalues (d,) descending >= 0; V (d, d) with v_k = V[:, k]. Returns: 0-d array.
    """
    lam, xp = _spectrum(eigenvalues)
    validate.matrix(V, "V", xp=xp)
    d = lam.shape[0]
    if V.shape[0] != d or V.shape[1] != d:
        raise ValueError(f"V: expected shape ({d}, {d}), got {tuple(V.shape)}")
    l1 = xp.sum(xp.abs(V), axis=0) / xp.linalg.vector_norm(V, axis=0)
    return xp.max(lam / xp.max(lam) * l1 * l1 / d)


def normalized_spectrum(eigenvalues):
    """lambda_i / lambda_1, sorted descending (the quantity of the paper's Figs. 2, 6, 7). Returns (d,)."""
    lam, xp = _spectrum(eigenvalues)
    return xp.flip(xp.sort(lam)) / xp.max(lam)


class EgopDiagnostics(NamedTuple):
    """Scalar summaries of an EGOP spectrum (Python floats)."""

    d: int
    M: int | None
    stable_rank: float          # Eq. (3), "nuclear" form
    stable_rank_frobenius: float
    beta: float                 # ||v_1||_1^2 / d
    density_measure: float      # max_k lambda_k/lambda_1 ||v_k||_1^2 / d
    gain: float                 # sr_f / (beta d): the factor in Thm. 3's reparameterized bound (< 1 means a gain)
    lambda_1: float


def diagnostics(result: EgopResult) -> EgopDiagnostics:
    """Stable rank, density beta, the general density measure and Thm. 3's factor sr_f / (beta d)."""
    lam, V = result.eigenvalues, result.V
    d = int(lam.shape[0])
    sr = float(stable_rank(lam))
    beta = float(leading_density(V[:, 0]))
    return EgopDiagnostics(
        d=d, M=None if result.grads is None else int(result.grads.shape[1]), stable_rank=sr,
        stable_rank_frobenius=float(stable_rank(lam, form="frobenius")), beta=beta,
        density_measure=float(density_measure(lam, V)), gain=sr / (beta * d), lambda_1=float(lam[0]),
    )


def principal_angles(A, B):
    """Principal angles (radians, ascending) between range(A) and range(B); A (d, k), B (d, l) orthonormal columns.

    cos(theta_i) = s_i(A^T B), computed from the SVD and clipped to [0, 1]. For subspace comparison when
    eigenvalues cluster: by Davis-Kahan, sin(theta_max) <= ||E - E_hat||_2 / gap.
    Returns: (min(k, l),) array.
    """
    xp = validate.matrix(A, "A")
    validate.matrix(B, "B", xp=xp)
    if A.shape[0] != B.shape[0]:
        raise ValueError(f"B: expected {A.shape[0]} rows like A, got {B.shape[0]}")
    r = min(A.shape[1], B.shape[1])
    if r == 0:
        return xp.zeros((0,), dtype=A.dtype, device=backend.device(A))
    AtB = xp.matrix_transpose(A) @ B
    cos = xp.clip(xp.linalg.svdvals(AtB), 0.0, 1.0)                          # descending
    sin = xp.sort(xp.clip(xp.linalg.svdvals(B - A @ AtB), 0.0, 1.0))[:r]     # ascending, the r smallest
    th_c = xp.acos(cos)                                                        # ascending
    th_s = xp.asin(sin)
    # acos loses half the digits for small angles (theta ~ sqrt(2 (1 - cos))), asin for angles near pi/2
    return xp.where(th_s < math.pi / 4, th_s, th_c)


def _spectrum(eigenvalues):
    """Validate a spectrum (1-D, finite, >= -tau, not all zero); return it with |lambda| <= tau set to 0, and xp.

    tau = 4 d u max|lambda| is the numerical-rank rule (``validate.zero_tolerance``): an eigenvalue that small is
    an exact zero as far as eigh can tell, so it must not count towards a stable rank or a density (in float32 a
    rank-one EGOP's d - 1 rounding eigenvalues of ~d u lambda_1 would add ~d sqrt(d u) to Eq. (3)'s sum of roots).
    """
    xp = validate.float_array(eigenvalues, "eigenvalues", ndim=1)
    validate.finite(eigenvalues, "eigenvalues", xp=xp)
    d = eigenvalues.shape[0]
    if d == 0:
        raise ValueError("eigenvalues: expected a non-empty spectrum")
    top = float(xp.max(xp.abs(eigenvalues)))
    low = float(xp.min(eigenvalues))
    tol = validate.zero_tolerance(top, n=d, dtype=eigenvalues.dtype)
    if low < -tol:
        raise ValueError(f"eigenvalues: expected >= 0 (a PSD spectrum), but min = {low:.3g} < -tol = {-tol:.3g}")
    if top == 0.0:
        raise ValueError("eigenvalues: all zero (no leading eigenvalue to normalize by)")
    return xp.where(eigenvalues <= tol, xp.zeros_like(eigenvalues), eigenvalues), xp

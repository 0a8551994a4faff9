"""Sampling helpers: the sampling distribution rho of Algorithm 1, and every random draw of :mod:`krad_ref.egop`.

References:
  egop.md Sec. 2 (Algorithm 1 "requires a user-specified sampling distribution"), Sec. 6 ("EGOP is estimated with
  a standard Gaussian"); notes §3, §5; errata 2 (a rotation-invariant rho for Lemma 14's equivariance).

Randomness. Only the *sampling helpers* (this module: :func:`gaussian_sampler`, :func:`rng_from_seed`; and, through
:func:`standard_normal`, the Gaussian test matrices of :func:`~krad_ref.egop.partial.randomized_leading_basis` and
the random completion of :func:`~krad_ref.egop.partial.partial_basis`) draw random numbers, with NumPy's
``Generator`` (PCG64) seeded by the caller's ``seed`` (an int or a ``numpy.random.Generator``), in float64, then
cast with ``xp.asarray`` to the requested namespace, dtype and device. Everything else is array-API code with no
NumPy. A caller who wants its own random numbers passes samples (:func:`~krad_ref.egop.estimate.egop_from_samples`)
or gradients (:func:`~krad_ref.egop.estimate.egop_from_gradients`).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

from .. import backend, validate

Array = Any


def rng_from_seed(seed):
    """A ``numpy.random.Generator`` from ``seed`` (an int >= 0, or a Generator, returned as is).

    Sampling helper; the Generator comes from :func:`krad_ref.backend.rng`, which owns the NumPy import.
    ``None`` is refused: every random draw in krad_ref is reproducible from a seed.

    Raises:
      TypeError: ``seed`` is neither an integer nor a ``numpy.random.Generator``.
      ValueError: a negative integer.
    """
    return backend.rng(seed)


def standard_normal(rng, shape, *, dtype=None, device=None, xp):
    """Sampling helper: iid N(0, 1) of ``shape``, drawn by NumPy in float64 from ``rng`` (seed or Generator),
    then cast to ``xp`` / ``dtype`` (default float64) / ``device`` with ``xp.asarray``."""
    Z = rng_from_seed(rng).standard_normal(shape)
    return xp.asarray(Z, dtype=xp.float64 if dtype is None else dtype, device=device)


def uniform(rng, shape, low: float = 0.0, high: float = 1.0, *, dtype=None, device=None, xp):
    """Sampling helper: iid U(low, high) of ``shape`` (NumPy, float64), cast like :func:`standard_normal`."""
    Z = rng_from_seed(rng).uniform(low, high, size=shape)
    return xp.asarray(Z, dtype=xp.float64 if dtype is None else dtype, device=device)


class Sampler(NamedTuple):
    """A sampling distribution rho for :func:`estimate_egop`: ``draw(M, rng) -> X`` of shape (M, d).

    Any callable with the signature ``sampler(M, rng) -> (M, d) array`` works where a Sampler is expected;
    ``rng`` is the ``numpy.random.Generator`` made from the caller's seed. This NamedTuple adds a name and d.
    """

    draw: Callable[[int, Any], Array]   # (M, rng) -> (M, d) array in the sampler's namespace and dtype
    d: int                              # dimension of one sample
    name: str                           # e.g. "gaussian(mean, scale=1)"

    def __call__(self, M, rng):
        return self.draw(M, rng)


def gaussian_sampler(mean, scale=1.0, *, d: int | None = None, dtype=None, xp=None) -> Sampler:
    """rho = N(mean, scale^2 I_d): the isotropic Gaussian of the paper's convex experiments (scale = 1, mean 0).

    Sampling helper (NumPy draws, cast to the namespace). A rotation-invariant rho (mean 0) is what Lemma 14's
    equivariance needs (errata 2); Assumption 1 also wants scale >= ||x_star|| (notes §5).

    References: egop.md Sec. 2, Sec. 6 ("EGOP is estimated with a standard Gaussian"); notes §3, §5.

    Args:
      mean: (d,) real floating array (its namespace, dtype and device are used), or a real number (then ``d``,
        ``xp`` and optionally ``dtype`` (default float64) must be given).
      scale: standard deviation c > 0 of each coordinate (float), or a (d,) array of per-coordinate standard
        deviations (a diagonal, non-isotropic Gaussian; for block distributions such as Xavier init).
    Returns:
      a :class:`Sampler` drawing X (M, d) with rows x_k = mean + scale * z_k, z_k ~ N(0, I_d).
    """
    if hasattr(mean, "shape") and hasattr(mean, "dtype"):
        xp = validate.float_array(mean, "mean", ndim=1)
        validate.finite(mean, "mean", xp=xp)
        if d is not None and d != mean.shape[0]:
            raise ValueError(f"d: {d} does not match mean's length {mean.shape[0]}")
        d = int(mean.shape[0])
        if dtype is not None and dtype != mean.dtype:
            raise TypeError(f"dtype: {backend.dtype_name(dtype)} does not match mean's {backend.dtype_name(mean.dtype)}")
        mean_arr = mean
    else:
        m0 = validate.real_scalar(mean, "mean")
        if d is None or xp is None:
            raise TypeError("gaussian_sampler: a scalar mean needs d= and xp=")
        d = validate.positive_int(d, "d")
        dtype = xp.float64 if dtype is None else dtype
        mean_arr = xp.full((d,), m0, dtype=dtype)
    dtype, dev = mean_arr.dtype, backend.device(mean_arr)
    if hasattr(scale, "shape") and hasattr(scale, "dtype"):
        validate.float_array(scale, "scale", ndim=1, xp=xp)
        validate.finite(scale, "scale", xp=xp)
        if scale.shape[0] != d:
            raise ValueError(f"scale: expected shape ({d},), got {tuple(scale.shape)}")
        if bool(xp.any(scale <= 0)):
            raise ValueError("scale: expected positive standard deviations")
        scale_v = xp.astype(scale, dtype)
        label = "diag"
    else:
        scale_v = validate.real_scalar(scale, "scale", low=0.0, low_open=True)
        label = f"{scale_v:g}"

    def draw(M, rng):
        M = validate.positive_int(M, "M")
        Z = standard_normal(rng, (M, d), dtype=dtype, device=dev, xp=xp)
        return mean_arr[None, :] + scale_v * Z

    return Sampler(draw=draw, d=d, name=f"gaussian(d={d}, scale={label})")


def _draw(sampler, M, seed):
    """Call the sampler (M, rng) and check it returned an (M, d) array."""
    M = validate.positive_int(M, "M")
    if not callable(sampler):
        raise TypeError(f"sampler: expected a callable (M, rng) -> (M, d) array, got {type(sampler).__name__}")
    rng = rng_from_seed(seed)
    X = sampler(M, rng)
    validate.matrix(X, "sampler output")
    if X.shape[0] != M:
        raise ValueError(f"sampler output: expected {M} rows (one sample per row), got shape {tuple(X.shape)}")
    return X

"""Mode products and mode Gram matrices against einsum on NumPy, run under every array namespace.

Values are compared with rtol = 8 * d * u(float64): each entry is a d-term inner product (d <= 5 here),
whose rounding error is at most d * u times the sum of absolute products (Higham Sec. 3.1); the factor 8
leaves room for tensordot's summation order.
"""
from __future__ import annotations

import numpy as np
import pytest

from krad_ref import backend, modes

U64 = 2.0**-53


def _arr(xp, a):
    return xp.asarray(a)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_mode_product_matches_einsum(xp, rng):
    X = rng.standard_normal((2, 3, 4))
    for k, spec in enumerate(("ij,jab->iab", "ij,ajb->aib", "ij,abj->abi")):
        M = rng.standard_normal((5, X.shape[k]))
        got = backend.to_numpy(modes.mode_product(_arr(xp, X), _arr(xp, M), k))
        np.testing.assert_allclose(got, np.einsum(spec, M, X), rtol=8 * 5 * U64, atol=8 * 5 * U64 * np.abs(X).max())


def test_matrix_modes_are_left_and_right_products(xp, rng):
    G, L, R = rng.standard_normal((3, 4)), rng.standard_normal((3, 3)), rng.standard_normal((4, 4))
    got = backend.to_numpy(modes.multi_mode_product(_arr(xp, G), [_arr(xp, L), _arr(xp, R)]))
    np.testing.assert_allclose(got, L @ G @ R.T, rtol=1e-14, atol=1e-13)  # two 4-term products: ~8 u
    # (R kron L) vec(G) = vec(L G R^T), vec column-major (KrADagrad Sec. 2.1)
    np.testing.assert_allclose(got.reshape(-1, order="F"), np.kron(R, L) @ G.reshape(-1, order="F"),
                               rtol=1e-13, atol=1e-12)


def test_mode_gram_matches_unfolding(xp, rng):
    X = rng.standard_normal((2, 3, 4))
    for k in range(3):
        unfold = np.moveaxis(X, k, 0).reshape(X.shape[k], -1)
        got = backend.to_numpy(modes.mode_gram(_arr(xp, X), k))
        np.testing.assert_allclose(got, unfold @ unfold.T, rtol=8 * 12 * U64, atol=8 * 12 * U64 * 12)
    g = rng.standard_normal(5)
    np.testing.assert_allclose(backend.to_numpy(modes.mode_gram(_arr(xp, g), 0)), np.outer(g, g), rtol=0, atol=0)


def test_skip_and_identity_entries(xp, rng):
    X = rng.standard_normal((2, 3))
    M0 = rng.standard_normal((2, 2))
    got = backend.to_numpy(modes.multi_mode_product(_arr(xp, X), [_arr(xp, M0), None]))
    np.testing.assert_allclose(got, M0 @ X, rtol=1e-15, atol=1e-15)
    same = backend.to_numpy(modes.multi_mode_product(_arr(xp, X), [_arr(xp, M0), None], skip=(0,)))
    np.testing.assert_array_equal(same, X)


def test_bad_inputs(xp, rng):
    X = _arr(xp, rng.standard_normal((2, 3)))
    with pytest.raises(ValueError, match="M: expected shape"):
        modes.mode_product(X, _arr(xp, np.eye(2)), 1)
    with pytest.raises(ValueError, match="k: mode 2 out of range"):
        modes.mode_product(X, _arr(xp, np.eye(2)), 2)
    with pytest.raises(TypeError, match="k: expected an integer"):
        modes.mode_gram(X, 0.5)
    with pytest.raises(ValueError, match="mats: expected 2"):
        modes.multi_mode_product(X, [None])
    with pytest.raises(ValueError, match="Y: shape"):
        modes.cross_gram(X, _arr(xp, np.ones((3, 2))), 0)

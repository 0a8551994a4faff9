"""Kronecker approximations of an EGOP basis: V ~ V1 kron V2 for a matrix parameter (m, n).

References:
  egop.md Sec. 5 ("a Kronecker-product factorization, where one finds matrices ... such that"), App. B; notes §9
  [REC]; errata 23 (our Kronecker-factored EGOP basis is not the paper's), errata 15 (row-major flattening: V1 acts
  on the output index, V2 on the input index; package docstring).
  Van Loan, Pitsianis, "Approximation with Kronecker products" (1993) (nearest Kronecker product by rearrangement).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import array_api_extra as xpx

from .. import backend, validate
from .estimate import fix_signs

Array = Any


class KroneckerApprox(NamedTuple):
    """A ~ B kron C (nearest in Frobenius norm) and what the rearrangement says about it."""

    B: Array                  # (m1, n1)
    C: Array                  # (m2, n2)
    residual: Array           # 0-d, ||A - B kron C||_F
    singular_values: Array    # (min(m1 n1, m2 n2),) descending singular values of rearrange(A)


class KroneckerBasis(NamedTuple):
    """An orthogonal Kronecker basis V = V1 kron V2 of a matrix parameter (m, n) flattened row-major (errata 15)."""

    V1: Array                    # (m, m) orthogonal, acts on the output (row) index of W
    V2: Array                    # (n, n) orthogonal, acts on the input (column) index of W
    approx: KroneckerApprox      # the nearest-Kronecker-product fit it came from
    eigenvalues_1: Array | None  # (m,) descending eigenvalues of B (kronecker_egop_basis), else None
    eigenvalues_2: Array | None  # (n,) descending eigenvalues of C, else None

    @property
    def V(self):
        """The (m n, m n) matrix V1 kron V2 (array_api_extra.kron; materialized on each access)."""
        return xpx.kron(self.V1, self.V2)


def rearrange(A, shape_B, shape_C):
    """Van Loan-Pitsianis rearrangement R(A) with ||A - B kron C||_F = ||R(A) - b c^T||_F.

    Row-major convention (matches ``array_api_extra.kron`` and row-major flattening): A is viewed as an
    (m1 x n1) grid of (m2 x n2) blocks A_{ij} = A[i m2:(i+1) m2, j n2:(j+1) n2]; row i n1 + j of R(A) is the
    row-major flattening of A_{ij}; b = reshape(B, (-1,)), c = reshape(C, (-1,)).

    Args: A (m1 m2, n1 n2); shape_B = (m1, n1); shape_C = (m2, n2).
    Returns: (m1 n1, m2 n2) array.
    """
    xp = validate.matrix(A, "A")
    m1, n1 = (validate.positive_int(v, "shape_B") for v in shape_B)
    m2, n2 = (validate.positive_int(v, "shape_C") for v in shape_C)
    if tuple(A.shape) != (m1 * m2, n1 * n2):
        raise ValueError(f"A: expected shape ({m1 * m2}, {n1 * n2}) for B {(m1, n1)} kron C {(m2, n2)}, "
                         f"got {tuple(A.shape)}")
    A4 = xp.reshape(A, (m1, m2, n1, n2))                      # A[i m2 + p, j n2 + q] = A4[i, p, j, q]
    return xp.reshape(xp.permute_dims(A4, (0, 2, 1, 3)), (m1 * n1, m2 * n2))


def nearest_kronecker(A, shape_B, shape_C, *, symmetric_psd: bool | None = None) -> KroneckerApprox:
    """Nearest Kronecker product min ||A - B kron C||_F (Van Loan-Pitsianis): the leading singular pair of R(A).

    b = sqrt(s1) u1, c = sqrt(s1) v1; the squared residual is the sum of the remaining squared singular values
    of R(A) (Eckart-Young). For symmetric PSD A (an EGOP) with square shapes the optimal B, C are symmetric and
    can be taken PSD (Van Loan-Pitsianis Thm. 5.8 / the Perron-Frobenius argument on R(A)); the sign is fixed so
    that tr(B) >= 0 and tr(C) >= 0, and B, C are symmetrized.

    Args:
      A: (m1 m2, n1 n2) real floating array.
      shape_B, shape_C: factor shapes.
      symmetric_psd: symmetrize the factors (default: True when both shapes are square and A is symmetric).
    Returns: :class:`KroneckerApprox`.
    """
    xp = validate.matrix(A, "A")
    validate.finite(A, "A", xp=xp)
    R = rearrange(A, shape_B, shape_C)
    m1, n1 = shape_B
    m2, n2 = shape_C
    U, s, Vh = xp.linalg.svd(R, full_matrices=False)
    root = xp.sqrt(s[0])
    b, c = root * U[:, 0], root * Vh[0, :]
    square = m1 == n1 and m2 == n2
    if symmetric_psd is None:
        symmetric_psd = square and _is_symmetric(A, xp)
    if symmetric_psd and not square:
        raise ValueError("symmetric_psd: needs square factor shapes")
    B, C = xp.reshape(b, (m1, n1)), xp.reshape(c, (m2, n2))
    if symmetric_psd:
        flip = float(xp.sum(xp.linalg.diagonal(B))) < 0       # tr(B) >= 0 makes both factors PSD for PSD A
        B = (B + xp.matrix_transpose(B)) / 2
        C = (C + xp.matrix_transpose(C)) / 2
    else:
        flip = float(xp.take(b, xp.argmax(xp.abs(b))[None])[0]) < 0
    if flip:
        B, C = -B, -C
    tail = s[1:]
    residual = xp.sqrt(xp.sum(tail * tail)) if tail.shape[0] else xp.zeros((), dtype=A.dtype,
                                                                           device=backend.device(A))
    return KroneckerApprox(B=B, C=C, residual=residual, singular_values=s)


def kronecker_egop_basis(egop, shape: tuple[int, int]):
    """OUR Kronecker-factored EGOP basis (not the paper's, errata 23): NKP of the EGOP, then eigenbases of factors.

    For a matrix parameter W (out x in) = (m, n) flattened row-major (errata 15), EGOP ~ B kron C with B (m, m),
    C (n, n) = :func:`nearest_kronecker`; then B = V1 diag(b) V1^T, C = V2 diag(c) V2^T (descending, signs by
    :func:`fix_signs`) and V = V1 kron V2 is orthogonal with storage m^2 + n^2 instead of (mn)^2. The columns of
    V are in Kronecker order (not sorted by b_i c_j); diagonal adaptive methods are permutation-equivariant, so
    the order does not matter to them. It coincides with SOAP's/Shampoo's one-sided bases only when the EGOP is
    exactly Kronecker (notes §9, App. E).

    Args:
      egop: (m n, m n) symmetric PSD array.
      shape: (m, n) of the parameter matrix.
    Returns: :class:`KroneckerBasis` (V1, V2, approx, eigenvalues_1, eigenvalues_2); ``.V`` = V1 kron V2.
    """
    xp = validate.square(egop, "egop")
    m, n = (validate.positive_int(v, "shape") for v in shape)
    if egop.shape[0] != m * n:
        raise ValueError(f"egop: expected shape ({m * n}, {m * n}) for a parameter of shape {(m, n)}, "
                         f"got {tuple(egop.shape)}")
    approx = nearest_kronecker(egop, (m, m), (n, n), symmetric_psd=True)
    wB, V1 = _eigh_desc(approx.B, xp)
    wC, V2 = _eigh_desc(approx.C, xp)
    return KroneckerBasis(V1=V1, V2=V2, approx=approx, eigenvalues_1=wB, eigenvalues_2=wC)


def kronecker_basis_of_V(V, shape: tuple[int, int]):
    """The paper's Kronecker variant read literally (Sec. 5, notes §9 [REC]): V ~ V1 kron V2 with V1, V2 orthogonal.

    Our construction of that approximation: the nearest Kronecker product B kron C of V itself, then the nearest
    orthogonal matrix (polar factor, :func:`nearest_orthogonal`) of each factor. The paper does not say how it
    finds V1, V2. Caveat: V's column order and signs are arbitrary within eigenvalue clusters, and the result
    depends on them (it is a property of the matrix V, not of the EGOP).

    Args: V (m n, m n) orthogonal; shape (m, n).
    Returns: :class:`KroneckerBasis` (V1, V2, approx of V, None, None); ``.V`` = V1 kron V2.
    """
    xp = validate.square(V, "V")
    m, n = (validate.positive_int(v, "shape") for v in shape)
    if V.shape[0] != m * n:
        raise ValueError(f"V: expected shape ({m * n}, {m * n}) for a parameter of shape {(m, n)}, "
                         f"got {tuple(V.shape)}")
    approx = nearest_kronecker(V, (m, m), (n, n), symmetric_psd=False)
    return KroneckerBasis(V1=nearest_orthogonal(approx.B), V2=nearest_orthogonal(approx.C), approx=approx,
                          eigenvalues_1=None, eigenvalues_2=None)


def nearest_orthogonal(A):
    """Polar factor U W^T of A = U S W^T: the orthogonal matrix nearest to square A in Frobenius norm.

    Args: A (n, n). Returns: (n, n) orthogonal.
    """
    xp = validate.square(A, "A")
    validate.finite(A, "A", xp=xp)
    U, _, Vh = xp.linalg.svd(A, full_matrices=False)
    return U @ Vh


def _is_symmetric(A, xp) -> bool:
    if A.shape[0] != A.shape[1]:
        return False
    scale = float(xp.max(xp.abs(A))) if A.shape[0] else 0.0
    asym = float(xp.max(xp.abs(A - xp.matrix_transpose(A)))) if A.shape[0] else 0.0
    return asym <= validate.SYM_TOL_FACTOR * A.shape[0] * backend.unit_roundoff(A.dtype) * scale


def _eigh_desc(A, xp):
    w, Q = backend.eigh((A + xp.matrix_transpose(A)) / 2)
    return xp.flip(w), fix_signs(xp.flip(Q, axis=1))

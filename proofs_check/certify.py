"""Certified instance verdicts: a claim's two sides evaluated in ball arithmetic (python-flint's arb).

An instance's inputs are binary floats (and small rationals such as an exponent 1/3), so the real numbers a
statement talks about are known exactly. A claim that provides a ``certify`` hook evaluates its two sides X and Y
with this module's ball helpers: every entry is an arb ball (midpoint, radius) that provably contains the exact
value (Arb's inclusion principle: each operation returns a ball containing every result of the operation on
points of its input balls). The sign of the margin is then decided in ball arithmetic, never in floating point.

What a certificate proves (for the exact inputs of the instance, with tau = tol * scale):

  * identity X = Y: margin = -||X - Y||_F, scale = ||X||_F + ||Y||_F (the mp evidence's definitions).
    "within": ||X - Y||_F <= tol (||X||_F + ||Y||_F), proven (upper end of the enclosure <= lower end of tau).
    "violated": ||X - Y||_F > tol (||X||_F + ||Y||_F), proven: the instance is a counterexample to X = Y at the
    report's tolerance (and a fortiori to exact equality).
  * Loewner X >= Y: margin = lambda_min(S), S = (D + D^T)/2, D = X - Y, scale = max(||X||_F, ||Y||_F).
    The eigenvalues of S are enclosed by Arb's verified eigensolver (``acb_mat.eig(multiple=True)``:
    van der Hoeven-Mourrain, falling back to Rump's method for clusters; every eigenvalue, with multiplicity,
    lies in the union of the returned balls). So lambda_min(S) >= min_i lo_i and lambda_min(S) <= min_i hi_i.
    "within": lambda_min(S) >= -tol * scale, proven. "violated": lambda_min(S) < -tol * scale, proven, i.e. a
    vector v with v^T (X - Y) v < -tau |v|^2 exists: X >= Y is false on this instance.
  * "uncertified" with a reason: the claim has no ball evaluation of its sides, a matrix function it needs has no
    enclosure here (a fractional power of a matrix with an eigenvalue enclosure touching 0, or with eigenvalues
    that cannot be isolated), or the enclosure of the margin straddles -tau even at the doubled precision
    ("radius too wide").

The tolerance is the claim's own (``proofs_check.mp.mp_tolerance``: n 10^-(dps/2)), so "within" proves the same
inequality the mp verdict judges, for the exact rational inputs; "violated" proves a counterexample. A statement
that holds with margin exactly 0 can only be certified "within" (a ball has a radius), which is why the tolerance
stays.

Matrix functions (:func:`power`, :func:`funm`): integer powers are products and ball inverses. A fractional
power, or the principal square root of a non-symmetric diagonalizable matrix (geometric mean, formula 2), is
R diag(f(lambda)) R^{-1} with R and lambda from ``acb_mat.eig(right=True)`` (Arb's acb_mat_eig_simple: the
eigenvalues are proven simple, lambda encloses them and R encloses a matrix of eigenvectors) and R^{-1} a ball
inverse of R, so the product encloses f(A) for every matrix in the input ball. It needs simple eigenvalues and
Re(lambda) > 0; otherwise the instance is uncertified with that reason.

Precision: ceil(dps log2 10) + 64 bits (231 bits at 50 digits), retried once at twice that when the margin's
enclosure is too wide to decide. python-flint is a dependency; where it is missing :func:`available` is False,
the CLI and campaigns say so and run without certification, and every instance is uncertified with that reason.
"""
from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from typing import Any, Callable, Sequence

import numpy as np

from . import mp

try:  # a dependency of krad-ref; the code still runs without it (every instance uncertified, with a note)
    import flint
except ImportError:  # pragma: no cover - exercised only where python-flint is absent
    flint = None

__all__ = ["WITHIN", "VIOLATED", "UNCERTIFIED", "MISSING", "NO_HOOK", "Uncertifiable", "Sides", "Certificate",
           "available", "prec_bits", "mat", "number", "scalar", "trace_power", "lambda_max", "norm_2", "fro",
           "exact_sum", "kron", "vec", "trace", "sym", "inv", "power",
           "funm", "eye", "certify_sides", "certify_instance", "Tally"]

WITHIN = "within"
VIOLATED = "violated"
UNCERTIFIED = "uncertified"
MISSING = "python-flint is not installed (pip install python-flint)"
NO_HOOK = "no ball-arithmetic evaluation of this claim's sides is encoded"

# Extra bits over the mp working precision: the ball radii grow by a few bits per operation and by the
# conditioning of eigenvector enclosures; 64 bits keep them far below the tolerance's 10^-(dps/2).
_GUARD_BITS = 64


class Uncertifiable(Exception):
    """Raised by a ball helper or a claim's hook when an instance cannot be certified; the message is the reason."""


@dataclasses.dataclass(frozen=True)
class Sides:
    """The two sides of one conclusion as arb matrices: ``kind`` "identity" (X = Y) or "loewner" (X >= Y).

    ``n`` is the dimension the tolerance counts (as in the claim's mp check); ``tol`` overrides the default
    ``mp.mp_tolerance(dps, n)`` where the claim's check uses another (``_evidence.hoelder_tol``).
    """

    kind: str
    X: Any
    Y: Any
    n: int
    tol: float | None = None

    def __post_init__(self):
        if self.kind not in ("identity", "loewner"):
            raise ValueError(f"kind: expected 'identity' or 'loewner', got {self.kind!r}")


@dataclasses.dataclass(frozen=True)
class Certificate:
    """The certified verdict of one instance; ``margin`` is the enclosure [lo, hi] of margin / scale, rounded to
    float for reading (the decision itself is made in ball arithmetic)."""

    status: str
    reason: str = ""
    margin: tuple[float, float] | None = None
    prec: int | None = None

    def to_dict(self) -> dict:
        return {"status": self.status, "reason": self.reason,
                "margin": None if self.margin is None else list(self.margin), "prec": self.prec}


def available() -> bool:
    """True when python-flint is importable."""
    return flint is not None


def prec_bits(dps: int) -> int:
    """Ball precision for a claim checked at ``dps`` digits: ceil(dps log2 10) + 64 bits."""
    return math.ceil(mp.resolve_dps(dps) * math.log2(10)) + _GUARD_BITS


# --------------------------------------------------------------------------------------------------------------
# ball helpers (run inside certify_*, which sets flint.ctx.prec)
# --------------------------------------------------------------------------------------------------------------
def number(x: Any):
    """A real number as an arb ball containing it exactly: floats and ints exactly, a Fraction as fmpq/ball."""
    if isinstance(x, Fraction):
        return flint.arb(flint.fmpq(x.numerator, x.denominator))
    if isinstance(x, (int, np.integer)):
        return flint.arb(int(x))
    if isinstance(x, (float, np.floating)):
        return flint.arb(float(x))  # float64 -> arb is exact (a 53-bit midpoint, radius 0)
    raise TypeError(f"x: expected a float, int or Fraction, got {type(x).__name__}")


def mat(x: Any):
    """A float/int array (2-D; 1-D becomes a column) as an exact arb_mat; an arb_mat is returned unchanged."""
    if isinstance(x, flint.arb_mat):
        return x
    arr = np.asarray(x)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.dtype.kind not in "iuf":
        raise TypeError(f"x: expected a real 2-D float or integer array, got {arr.dtype} of shape {arr.shape}")
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 8:
        raise TypeError(f"x: {arr.dtype} has no exact arb conversion here (float16/32/64 and integers do)")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError("x: expected finite entries (NaN or inf found)")
    vals = arr.astype(np.float64).tolist() if arr.dtype.kind == "f" else [[int(v) for v in r] for r in arr.tolist()]
    return flint.arb_mat(vals)


def eye(n: int):
    return flint.arb_mat(n, n, [1 if i == j else 0 for i in range(n) for j in range(n)])


def exact_sum(A: Any, B: Any):
    """A + B as balls (exact unless the exponents differ by more than the precision; then a tight ball)."""
    return mat(A) + mat(B)


def sym(A):
    """(A + A^T) / 2: contains the exact symmetric part of every matrix in A."""
    return (A + A.transpose()) * flint.arb(0.5)


def kron(A, B):
    """A kron B with blocks a_ij B (KrADagrad Sec. 2.1)."""
    m, n, p, q = A.nrows(), A.ncols(), B.nrows(), B.ncols()
    out = flint.arb_mat(m * p, n * q)
    for i in range(m):
        for j in range(n):
            a = A[i, j]
            for k in range(p):
                for l in range(q):
                    out[i * p + k, j * q + l] = a * B[k, l]
    return out


def vec(A):
    """Column-major vec (KrADagrad Sec. 2.1) as an (mn) x 1 arb_mat."""
    m, n = A.nrows(), A.ncols()
    return flint.arb_mat([[A[i, j]] for j in range(n) for i in range(m)])


def trace(A):
    """tr(A) as a 1 x 1 arb_mat (a side of an identity)."""
    return flint.arb_mat([[sum((A[i, i] for i in range(A.nrows())), flint.arb(0))]])


def scalar(x):
    """A number (arb or exact float/int/Fraction) as a 1 x 1 arb_mat: a side of a scalar inequality."""
    return flint.arb_mat([[x if isinstance(x, flint.arb) else number(x)]])


def trace_power(A, p: Any):
    """tr(A^p) = sum_i lambda_i^p for symmetric A, from Arb's eigenvalue enclosure with multiplicities
    (``acb_mat.eig(multiple=True)``: n balls, each eigenvalue counted with its multiplicity), so repeated
    eigenvalues (eps I + a low-rank sum) need no eigenvectors. Fractional p needs every Re(lambda) > 0."""
    lam = flint.acb_mat(sym(A)).eig(multiple=True, nonstop=True)
    if not all(z.is_finite() for z in lam):
        raise Uncertifiable(f"tr(A^{p}): eigenvalue enclosure failed at this precision")
    if not all(z.real > 0 for z in lam):
        raise Uncertifiable(f"tr(A^{p}): an eigenvalue enclosure is not in Re > 0")
    pb = number(p)
    return sum(((z ** pb).real for z in lam), flint.arb(0))


def lambda_max(S):
    """lambda_max of symmetric S as a ball [max_i lo_i, max_i hi_i] from Arb's eigenvalue enclosure (each ball
    holds an eigenvalue, every eigenvalue lies in one)."""
    lam = flint.acb_mat(sym(S)).eig(multiple=True, nonstop=True)
    if not all(z.is_finite() for z in lam):
        raise Uncertifiable("lambda_max: eigenvalue enclosure failed at this precision")
    return flint.arb.union(max(z.real.lower() for z in lam), max(z.real.upper() for z in lam))


def norm_2(A):
    """||A||_2 = sqrt(lambda_max(A^T A)) as a ball."""
    return lambda_max(A.transpose() * A).nonnegative_part().sqrt()


def inv(A):
    """A^{-1} as a ball matrix (contains the inverse of every matrix in A); singular-looking A is uncertifiable."""
    try:
        return A.inv()
    except ZeroDivisionError:
        raise Uncertifiable("matrix inverse: the ball matrix contains a singular matrix at this precision") from None


def funm(A, f: Callable[[Any], Any], what: str):
    """f(A) = R diag(f(lambda)) R^{-1} for diagonalizable A with simple eigenvalues, Re(lambda) > 0 (module doc).

    ``f`` maps an acb ball to an acb ball (principal branches); the result is the real part of the enclosure
    (f(A) is real for the real matrices used here, so its real part is contained in it).
    """
    C = flint.acb_mat(A)
    try:
        lam, R = C.eig(right=True)
    except ValueError:
        raise Uncertifiable(f"{what}: eigenvalues not isolated (repeated or too close at this precision)") from None
    if not all(z.real > 0 for z in lam):
        raise Uncertifiable(f"{what}: an eigenvalue enclosure is not in Re > 0 (a zero or near-zero eigenvalue)")
    try:
        Ri = R.inv()
    except ZeroDivisionError:
        raise Uncertifiable(f"{what}: eigenvector enclosure not invertible at this precision") from None
    n = A.nrows()
    D = flint.acb_mat(n, n)
    for i, z in enumerate(lam):
        D[i, i] = f(z)
    return (R * D * Ri).real


def power(A, p: Any):
    """A^p for symmetric A: integer p by products (and a ball inverse for p < 0), other p via :func:`funm`
    (A positive definite with simple eigenvalues; a diagonal A entrywise); p = 0 gives I, as ``mp.mp_psd_power``
    does."""
    if isinstance(p, Fraction) and p.denominator == 1:
        p = p.numerator
    if isinstance(p, (int, np.integer)):
        k = int(p)
        base = A if k >= 0 else inv(A)
        out = eye(A.nrows())
        for _ in range(abs(k)):
            out = out * base
        return out
    pb = number(p)
    n = A.nrows()
    if all(A[i, j].is_zero() for i in range(n) for j in range(n) if i != j):  # diagonal (eps I, ...): entrywise
        if not all(A[i, i] > 0 for i in range(n)):
            raise Uncertifiable(f"A^{p}: a diagonal entry is not provably positive")
        return flint.arb_mat(n, n, [A[i, i] ** pb if i == j else 0 for i in range(n) for j in range(n)])
    return funm(sym(A), lambda z: z ** pb, f"A^{p}")


# --------------------------------------------------------------------------------------------------------------
# deciding the sign of a margin
# --------------------------------------------------------------------------------------------------------------
def fro(A):
    """||A||_F as a ball; the square root of the nonnegative part, since a sum of squares of balls around 0
    reaches below 0 (arb's sqrt of such a ball is NaN)."""
    sq = sum((A[i, j] * A[i, j] for i in range(A.nrows()) for j in range(A.ncols())), flint.arb(0))
    return sq.nonnegative_part().sqrt()


def _bounds(x) -> tuple[float, float]:
    return (float(x.lower()), float(x.upper()))


def _decide(side: Sides, dps: int) -> Certificate:
    """One conclusion's certificate (module docstring); the caller sets the precision."""
    X, Y = side.X, side.Y
    if (X.nrows(), X.ncols()) != (Y.nrows(), Y.ncols()):
        raise ValueError(f"Sides: shapes differ, {X.nrows()}x{X.ncols()} vs {Y.nrows()}x{Y.ncols()}")
    tol = mp.mp_tolerance(dps, side.n) if side.tol is None else side.tol
    tolb = flint.arb(tol)  # the float tolerance is the number the mp verdict uses; taken exactly
    nx, ny = fro(X), fro(Y)
    if side.kind == "identity":
        scale = nx + ny
        margin = -fro(X - Y)
    else:
        scale = nx.max(ny)
        if not X.nrows() == X.ncols():
            raise ValueError("Sides: a Loewner statement compares square matrices")
        S = sym(X - Y)
        eig = flint.acb_mat(S).eig(multiple=True, nonstop=True)
        if not all(z.is_finite() for z in eig):
            if scale == 0:
                scale = flint.arb(1)
            return _congruence(S, tolb * scale, dps)
        lo = min(z.real.lower() for z in eig)
        hi = min(z.real.upper() for z in eig)
        margin = flint.arb.union(lo, hi)  # lambda_min(S) lies in [min lo_i, min hi_i]
    if scale == 0:  # both sides exactly zero: the unit scale, as Evidence uses
        scale = flint.arb(1)
    tau = tolb * scale
    rel = (margin / scale) if scale > 0 else None
    shown = None if rel is None or not rel.is_finite() else _bounds(rel)
    if margin >= -tau:
        return Certificate(WITHIN, "", shown)
    if margin < -tau:
        return Certificate(VIOLATED, "", shown)
    return Certificate(UNCERTIFIED, "radius too wide: the margin's enclosure straddles -tol * scale", shown)


def _mp_to_arb(v):
    sgn, man, exp, _ = v._mpf_  # libmp's raw tuple: v = (-1)^sgn man 2^exp exactly (mpf.man drops the sign)
    return flint.arb(-man if sgn else man) * flint.arb(2) ** exp


def _congruence(S, tau, dps: int) -> Certificate:
    """The sign of lambda_min(S) + tau from exact approximate eigenvectors, when Arb's eigensolver cannot
    isolate the spectrum (large clusters, e.g. the exact zero eigenvalues of C kron D with a rank-deficient D).

    Q holds the eigenvectors of mid(S) from ``mp.mp_eigsy`` at dps digits: dyadic numbers, taken exactly.
    Within: T = Q^T (S + tau I) Q in balls is strictly diagonally dominant with a positive diagonal, so T is
    positive definite (Gershgorin), hence Q is nonsingular and S + tau I, congruent to T, is positive definite
    (Sylvester's law of inertia): lambda_min(S) > -tau. Violated: a column q of Q with q^T S q < -tau q^T q, so
    the Rayleigh quotient proves lambda_min(S) < -tau. No margin enclosure is reported for this route.
    """
    n = S.nrows()
    mids = [[S[i, j].mid().man_exp() for j in range(n)] for i in range(n)]
    import mpmath

    with mp.workdps(dps):
        _, Qm = mp.mp_eigsy([[mpmath.mpf((int(m), int(e))) for m, e in row] for row in mids])
        Q = flint.arb_mat([[_mp_to_arb(Qm[i, j]) for j in range(n)] for i in range(n)])
    T = Q.transpose() * (S + eye(n) * tau) * Q
    if all(T[i, i] > sum((abs(T[i, j]) for j in range(n) if j != i), flint.arb(0)) for i in range(n)):
        return Certificate(WITHIN, "")
    for j in range(n):
        q = flint.arb_mat([[Q[i, j]] for i in range(n)])
        if ((q.transpose() * (S + eye(n) * tau) * q)[0, 0]) < 0:
            return Certificate(VIOLATED, "")
    return Certificate(UNCERTIFIED, "eigenvalue enclosure of sym(X - Y) failed and the congruence test is "
                                    "undecided at this precision")


def _combine(certs: Sequence[Certificate]) -> Certificate:
    """A conclusion made of several parts (every step of a trajectory, ...): violated if one part is proven
    violated, within if every part is, else the first undecided part's reason."""
    for c in certs:
        if c.status == VIOLATED:
            return c
    for c in certs:
        if c.status != WITHIN:
            return c
    return min(certs, key=lambda c: c.margin[0] if c.margin else math.inf)


def certify_sides(hook: Callable[..., Any], instance: Any, *, dps: int) -> Certificate:
    """Run ``hook(instance, dps=dps)`` (Sides or a list of them) in ball arithmetic and decide; an undecided
    margin is retried once at twice the precision."""
    if flint is None:
        return Certificate(UNCERTIFIED, MISSING)
    prec = prec_bits(dps)
    cert = Certificate(UNCERTIFIED, "not run")
    for bits in (prec, 2 * prec):
        saved = flint.ctx.prec
        flint.ctx.prec = bits
        try:
            sides = hook(instance, dps=dps)
            sides = [sides] if isinstance(sides, Sides) else list(sides)
            cert = _combine([_decide(s, dps) for s in sides])
        except Uncertifiable as exc:
            cert = Certificate(UNCERTIFIED, str(exc))
        finally:
            flint.ctx.prec = saved
        cert = dataclasses.replace(cert, prec=bits)
        if cert.status != UNCERTIFIED or not cert.reason.startswith(("radius", "eigenvalue", "matrix inverse")):
            break
    return cert


def certify_instance(claim: Any, instance: Any, *, dps: int) -> Certificate:
    """The certificate of one instance of ``claim`` (uncertified with a reason when it has no ``certify`` hook)."""
    hook = getattr(claim, "certify", None)
    if hook is None:
        return Certificate(UNCERTIFIED, NO_HOOK)
    return certify_sides(hook, instance, dps=dps)


@dataclasses.dataclass
class Tally:
    """Counts of certificates over a claim's instances, with the reasons for the uncertified ones."""

    within: int = 0
    violated: int = 0
    uncertified: int = 0
    reasons: dict = dataclasses.field(default_factory=dict)

    def add(self, cert: Certificate) -> None:
        setattr(self, cert.status, getattr(self, cert.status) + 1)
        if cert.status == UNCERTIFIED:
            self.reasons[cert.reason] = self.reasons.get(cert.reason, 0) + 1

    def to_dict(self) -> dict:
        return {"within": self.within, "violated": self.violated, "uncertified": self.uncertified,
                "reasons": dict(sorted(self.reasons.items(), key=lambda kv: -kv[1]))}

"""Objectives with analytic gradients for the EGOP and MBAG experiments, and the data they are built on.

References:
  DePavia, Charisopoulos, Willett, arXiv 2502.01594 v1 (``shared/papers/egop.md``) Sec. 6 and App. D, with the
  rebuilt forms of ``shared/notes/egop-formulas.md`` §8, §10, §12 (certainty tags cited per function); errata 15,
  22, 25.

Every objective is an :class:`Objective`: ``f(x)`` returns a 0-d array and ``grad(x)`` a (d,) array, both in the
namespace and dtype of the data, for a flat parameter vector x of length d. The code is array-API only; the
data generators draw their random numbers with NumPy (Generator from ``seed``, float64) in clearly marked
sampling helpers and cast them with ``xp.asarray``.

Flattening (errata 15): network parameters are one flat vector in PyTorch's ``named_parameters`` order, each
weight W (out x in) flattened ROW-major (reshape(W, (-1,))) and followed by its bias: (W1, b1, W2, b2, ...).
:func:`flatten_params` / :func:`unflatten_params` convert.
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Sequence

from . import backend, egop, validate

__all__ = [
    "Objective",
    # data
    "SpectralData",
    "data_with_spectrum",
    "singular_values",
    "DECAYS",
    # convex objectives
    "least_squares",
    "least_squares_egop",
    "logistic_regression",
    "log_sum_exp",
    "LSE_FORMS",
    "least_squares_problem",
    "logistic_problem",
    "log_sum_exp_problem",
    # networks
    "flatten_params",
    "unflatten_params",
    "linear_network",
    "linear_network_data",
    "linear_network_shapes",
    "LINEAR_NET_NORMALIZATIONS",
    "relu_network",
    "relu_network_value_and_grad",
    "relu_network_shapes",
    "relu_network_blocks",
    "relu_network_predict",
    "accuracy",
    "xavier_normal_sampler",
    "network_init_sampler",
    "DigitsData",
    "load_digits_split",
]

Array = Any

#: singular-value decays of data_with_spectrum (see singular_values).
DECAYS = ("power", "shelf", "exponential")
#: log-sum-exp forms (Eq. 7; notes §10 [REC, uncertain]).
LSE_FORMS = ("squared", "linear", "symmetric")
#: linear-network loss normalizations (Eq. 6; errata 25).
LINEAR_NET_NORMALIZATIONS = ("mse", "eq6")


class Objective(NamedTuple):
    """An objective f: R^d -> R with its analytic gradient (immutable)."""

    name: str
    d: int
    f: Callable[[Array], Array]      # x (d,) -> 0-d array
    grad: Callable[[Array], Array]   # x (d,) -> (d,) array
    x_star: Array | None = None      # a known minimizer / ground truth (see each constructor), else None
    f_star: float | None = None      # the minimum value when known in closed form, else None


# ---------------------------------------------------------------------------------------------------------
# data

class SpectralData(NamedTuple):
    """A = U diag(s) W^T with orthonormal U (n, r), W (d, r), r = min(n, d)."""

    A: Array   # (n, d)
    U: Array   # (n, r) orthonormal columns
    s: Array   # (r,) descending singular values
    W: Array   # (d, r) orthonormal columns


def singular_values(r: int, decay, *, kind: str = "power"):
    """The list of r singular values used by :func:`data_with_spectrum` (Python floats, descending).

    kind "power": s_k = k^-alpha (notes §10, most likely); "shelf": k^-alpha for k < r/2 and
    (r/2)^{2 alpha} k^{-3 alpha} after (the later code's commented "old" variant, continuous at r/2: our choice of
    the constant); "exponential": s_k = exp(-alpha (k - 1)). ``decay`` is alpha >= 0.
    """
    r = validate.positive_int(r, "r")
    validate.one_of(kind, "kind", DECAYS)
    alpha = validate.real_scalar(decay, "decay", low=0.0)
    ks = range(1, r + 1)
    if kind == "power":
        return [k ** -alpha for k in ks]
    if kind == "exponential":
        return [math.exp(-alpha * (k - 1)) for k in ks]
    h = r / 2                                   # shelf: continuous at k = r/2 (h^-alpha = h^{2 alpha} h^{-3 alpha})
    return [k ** -alpha if k < h else h ** (2 * alpha) * k ** (-3 * alpha) for k in ks]


def data_with_spectrum(n: int, d: int, decay, seed, *, kind: str = "power", dtype=None, xp=None) -> SpectralData:
    """Data matrix A = U diag(s) W^T (n x d) with random orthonormal U, W and chosen singular-value decay.

    References: notes §10 "Data matrix for all convex objectives" [seed + code]; Lemma 18/19 use this form.
    Sampling helper: U and W are the Q factors (signs fixed to make R's diagonal positive: Haar distributed)
    of Gaussian matrices drawn with NumPy from ``seed``.

    Args:
      n, d: sizes >= 1. decay: alpha (a real >= 0, see :func:`singular_values`) or a sequence of min(n, d)
        positive singular values given directly (then ``kind`` is ignored; they are sorted descending).
      seed: int or numpy Generator. dtype: default float64. xp: namespace (default NumPy via array_api_compat).
    Returns: :class:`SpectralData`.
    """
    n = validate.positive_int(n, "n")
    d = validate.positive_int(d, "d")
    xp, dtype = _xp_dtype(xp, dtype)
    r = min(n, d)
    if isinstance(decay, (int, float)) and not isinstance(decay, bool):
        s = singular_values(r, decay, kind=kind)
    else:
        s = [validate.real_scalar(v, "decay[i]", low=0.0, low_open=True) for v in decay]
        if len(s) != r:
            raise ValueError(f"decay: expected min(n, d) = {r} singular values, got {len(s)}")
        s = sorted(s, reverse=True)
    rng = egop.rng_from_seed(seed)
    U = _haar_columns(rng, n, r, dtype, xp)
    W = _haar_columns(rng, d, r, dtype, xp)
    s_arr = xp.asarray(s, dtype=dtype)
    A = (U * s_arr[None, :]) @ xp.matrix_transpose(W)
    return SpectralData(A=A, U=U, s=s_arr, W=W)


# ---------------------------------------------------------------------------------------------------------
# convex objectives (Fig. 5; notes §10)

def least_squares(A, b, *, normalization: str = "half") -> Objective:
    """f(x) = c * 1/2 ||A x - b||^2, grad = c A^T (A x - b); c = 1 ("half", Lemma 19's form) or 1/n ("mean").

    References: notes §10 "Least squares" [REC] (1/2 assumed, maybe 1/(2n)); Lemma 19.
    Args: A (n, d), b (n,). Returns: :class:`Objective` (x_star=None; f_star None).
    """
    xp, n, d = _check_data(A, b, "b")
    validate.one_of(normalization, "normalization", ("half", "mean"))
    c = 1.0 if normalization == "half" else 1.0 / n
    At = xp.matrix_transpose(A)

    def f(x):
        r = A @ _check_x(x, d, A) - b
        return (0.5 * c) * xp.sum(r * r)

    def grad(x):
        return c * (At @ (A @ _check_x(x, d, A) - b))

    return Objective(name=f"least_squares({normalization})", d=d, f=f, grad=grad)


def least_squares_egop(A, b, *, mean=None, scale: float = 1.0, normalization: str = "half"):
    """Closed-form EGOP of :func:`least_squares` under rho = N(mean, scale^2 I) (Lemma 19 generalized).

    grad f(x) = c A^T (A x - b) is affine in x, so with x = mean + scale z:
        EGOP = c^2 [ scale^2 (A^T A)^2 + A^T r r^T A ],  r = A mean - b.
    With mean = 0, scale = 1, c = 1 this is Lemma 19's (A^T A)^2 + A^T b b^T A (notes §8 [REC]; exact).

    Args: A (n, d), b (n,), mean (d,) or None (zero), scale > 0. Returns: (d, d) array.
    """
    xp, n, d = _check_data(A, b, "b")
    validate.one_of(normalization, "normalization", ("half", "mean"))
    scale = validate.real_scalar(scale, "scale", low=0.0, low_open=True)
    c = 1.0 if normalization == "half" else 1.0 / n
    r = -b if mean is None else A @ _check_x(mean, d, A, name="mean") - b
    At = xp.matrix_transpose(A)
    AtA = At @ A
    g0 = At @ r
    E = (c * c) * ((scale * scale) * (AtA @ AtA) + g0[:, None] * g0[None, :])
    return (E + xp.matrix_transpose(E)) / 2


def logistic_regression(A, y) -> Objective:
    """Mean binary cross-entropy f(x) = (1/n) sum_i [log(1 + e^{z_i}) - y_i z_i], z = A x (App. D.5; notes §10 [REC]).

    grad = (1/n) A^T (sigma(z) - y). Evaluated stably: softplus by ``logaddexp(0, z)``, sigma by the
    sign-split form (no overflow for |z| large).

    Args: A (n, d); y (n,) labels in {0, 1} (float array of the data's dtype, or bool/int, cast).
    Returns: :class:`Objective`.
    """
    xp = validate.matrix(A, "A")
    validate.finite(A, "A", xp=xp)
    n, d = A.shape
    if not hasattr(y, "shape") or tuple(y.shape) != (n,):
        raise ValueError(f"y: expected shape ({n},), got {getattr(y, 'shape', type(y).__name__)}")
    y = xp.astype(y, A.dtype)
    if bool(xp.any((y != 0) & (y != 1))):
        raise ValueError("y: expected labels in {0, 1}")
    At = xp.matrix_transpose(A)
    zero = xp.zeros((), dtype=A.dtype)

    def f(x):
        z = A @ _check_x(x, d, A)
        return xp.mean(xp.logaddexp(zero, z) - y * z)

    def grad(x):
        z = A @ _check_x(x, d, A)
        return (At @ (_sigmoid(z, xp) - y)) / n

    return Objective(name="logistic_regression", d=d, f=f, grad=grad)


def log_sum_exp(A, b, *, form: str = "squared") -> Objective:
    """Log-sum-exp objective of Eq. (7), with the form configurable (notes §10 [REC, uncertain]; item 13.1).

    r = A x - b and
      "squared" (recommended):  f = log sum_i exp(r_i^2),          grad = A^T (softmax(r^2) * 2 r);
                                 minimum log n at x_star when b = A x_star;
      "linear":                  f = log sum_i exp(r_i),            grad = A^T softmax(r)  (classic smooth max;
                                 unbounded below when r can decrease in every coordinate);
      "symmetric":               f = log sum_i (e^{r_i} + e^{-r_i}), grad = A^T (softmax(s) * tanh(r)),
                                 s_i = logaddexp(r_i, -r_i); minimum log(2n) at x_star.
    Evaluated with the max shift (no overflow).

    Args: A (n, d), b (n,), form in LSE_FORMS. Returns: :class:`Objective`.
    """
    xp, n, d = _check_data(A, b, "b")
    validate.one_of(form, "form", LSE_FORMS)
    At = xp.matrix_transpose(A)

    def terms(x):
        r = A @ _check_x(x, d, A) - b
        if form == "squared":
            return r, r * r
        if form == "linear":
            return r, r
        return r, xp.logaddexp(r, -r)

    def f(x):
        _, s = terms(x)
        m = xp.max(s)
        return m + xp.log(xp.sum(xp.exp(s - m)))

    def grad(x):
        r, s = terms(x)
        e = xp.exp(s - xp.max(s))
        p = e / xp.sum(e)
        ds = 2 * r if form == "squared" else (xp.ones_like(r) if form == "linear" else xp.tanh(r))
        return At @ (p * ds)

    return Objective(name=f"log_sum_exp({form})", d=d, f=f, grad=grad)


def least_squares_problem(n: int, d: int, alpha, seed, *, kind: str = "power", normalization: str = "half",
                          dtype=None, xp=None) -> Objective:
    """Fig. 5 least squares: A = data_with_spectrum(n, d, alpha), x_star ~ N(0, I_d), b = A x_star (no noise).

    Returns: :class:`Objective` with x_star (the minimizer when rank A = d) and f_star = 0.
    """
    rng = egop.rng_from_seed(seed)
    data = data_with_spectrum(n, d, alpha, rng, kind=kind, dtype=dtype, xp=xp)
    xq = backend.namespace(data.A)
    x_star = egop.standard_normal(rng, (d,), dtype=data.A.dtype, xp=xq)
    obj = least_squares(data.A, data.A @ x_star, normalization=normalization)
    return obj._replace(x_star=x_star, f_star=0.0)


def logistic_problem(n: int, d: int, alpha, seed, *, kind: str = "power", labels: str = "bernoulli",
                     dtype=None, xp=None) -> Objective:
    """Fig. 5 logistic regression: A with spectral decay, x_star ~ N(0, I), y_i ~ Bernoulli(sigma(<a_i, x_star>))
    (labels="bernoulli", notes §10 [REC] recommended) or y_i = 1[<a_i, x_star> > 0] ("threshold": separable,
    no finite minimizer). Returns: :class:`Objective` with x_star = the ground truth (not the minimizer)."""
    validate.one_of(labels, "labels", ("bernoulli", "threshold"))
    rng = egop.rng_from_seed(seed)
    data = data_with_spectrum(n, d, alpha, rng, kind=kind, dtype=dtype, xp=xp)
    xq = backend.namespace(data.A)
    x_star = egop.standard_normal(rng, (d,), dtype=data.A.dtype, xp=xq)
    z = data.A @ x_star
    if labels == "bernoulli":
        u = egop.uniform(rng, (n,), dtype=data.A.dtype, xp=xq)
        y = xq.astype(u < _sigmoid(z, xq), data.A.dtype)
    else:
        y = xq.astype(z > 0, data.A.dtype)
    return logistic_regression(data.A, y)._replace(x_star=x_star)


def log_sum_exp_problem(n: int, d: int, alpha, seed, *, kind: str = "power", form: str = "squared",
                        dtype=None, xp=None) -> Objective:
    """Fig. 5 / Fig. 1 (left) log-sum-exp: A with spectral decay, x_star ~ N(0, I), b = A x_star.

    Returns: :class:`Objective` with x_star and f_star (log n for "squared", log 2n for "symmetric"; None for
    "linear", which has no minimizer at x_star)."""
    validate.one_of(form, "form", LSE_FORMS)
    rng = egop.rng_from_seed(seed)
    data = data_with_spectrum(n, d, alpha, rng, kind=kind, dtype=dtype, xp=xp)
    xq = backend.namespace(data.A)
    x_star = egop.standard_normal(rng, (d,), dtype=data.A.dtype, xp=xq)
    f_star = {"squared": math.log(n), "symmetric": math.log(2 * n), "linear": None}[form]
    return log_sum_exp(data.A, data.A @ x_star, form=form)._replace(x_star=x_star, f_star=f_star)


# ---------------------------------------------------------------------------------------------------------
# networks

def flatten_params(mats) -> Array:
    """Concatenate arrays (weights (out, in), biases (out,)) into one flat vector, each ROW-major (errata 15)."""
    mats = list(mats)
    if not mats:
        raise ValueError("mats: expected at least one array")
    xp = backend.namespace(*mats)
    for i, m in enumerate(mats):
        validate.float_array(m, f"mats[{i}]", xp=xp)
    return xp.concat([xp.reshape(m, (-1,)) for m in mats], axis=0)


def unflatten_params(x, shapes) -> list:
    """Inverse of :func:`flatten_params`: split x (d,) into arrays of the given shapes (row-major)."""
    xp = validate.float_array(x, "x", ndim=1)
    shapes = [tuple(int(v) for v in s) for s in shapes]
    total = sum(math.prod(s) for s in shapes)
    if x.shape[0] != total:
        raise ValueError(f"x: expected length {total} for shapes {shapes}, got {x.shape[0]}")
    out, pos = [], 0
    for s in shapes:
        k = math.prod(s)
        out.append(xp.reshape(x[pos:pos + k], s))
        pos += k
    return out


def linear_network_shapes(d_in: int = 10, hidden: Sequence[int] = (50, 30), d_out: int = 10) -> list:
    """Weight shapes [(h1, d_in), (h2, h1), (d_out, h2)] of Eq. (6) (no biases); defaults give d = 2300."""
    dims = [validate.positive_int(d_in, "d_in")] + [validate.positive_int(h, "hidden[i]") for h in hidden] \
        + [validate.positive_int(d_out, "d_out")]
    return [(dims[i + 1], dims[i]) for i in range(len(dims) - 1)]


def linear_network(X, Y, shapes, *, normalization: str = "mse") -> Objective:
    """Linear feed-forward network of Eq. (6): f(W_1..W_L) = loss(X W_1^T ... W_L^T, Y), no biases.

    References: egop.md Sec. 6 Eq. (6); notes §10 [seed + code]; errata 25.
    Normalization (errata 25; the two differ by the factor d_out):
      "mse" (default): (1/(n d_out)) sum_i ||W_L...W_1 x_i - y_i||^2 = PyTorch MSELoss(reduction="mean"), what
        the authors' code computes and notes §10 recommends;
      "eq6": (1/n) sum_i ||W_L...W_1 x_i - y_i||^2, Eq. (6) as printed.
    Parameters: x = flatten_params([W_1, ..., W_L]) (row-major, errata 15).

    Args: X (n, d_in) samples as rows; Y (n, d_out); shapes: list of weight shapes (out, in) chaining d_in->d_out.
    Returns: :class:`Objective` (x_star None; f_star 0 when Y = X M_star^T is realizable).
    """
    xp = validate.matrix(X, "X")
    validate.matrix(Y, "Y", xp=xp)
    validate.finite(X, "X", xp=xp)
    validate.finite(Y, "Y", xp=xp)
    validate.same_dtype(X=X, Y=Y)
    validate.one_of(normalization, "normalization", LINEAR_NET_NORMALIZATIONS)
    n, d_in = X.shape
    if Y.shape[0] != n:
        raise ValueError(f"Y: expected {n} rows like X, got {Y.shape[0]}")
    d_out = Y.shape[1]
    shapes = [tuple(int(v) for v in s) for s in shapes]
    if not shapes or shapes[0][1] != d_in or shapes[-1][0] != d_out \
            or any(shapes[i + 1][1] != shapes[i][0] for i in range(len(shapes) - 1)):
        raise ValueError(f"shapes: expected weight shapes (out, in) chaining d_in = {d_in} to d_out = {d_out}, "
                         f"got {shapes}")
    d = sum(a * b for a, b in shapes)
    c = 1.0 / n if normalization == "eq6" else 1.0 / (n * d_out)

    def forward(x):
        Ws = unflatten_params(_check_x(x, d, X), shapes)
        H = [X]
        for W in Ws:
            H.append(H[-1] @ xp.matrix_transpose(W))
        return Ws, H, H[-1] - Y

    def f(x):
        _, _, E = forward(x)
        return c * xp.sum(E * E)

    def grad(x):
        Ws, H, E = forward(x)
        D = (2.0 * c) * E                                   # dloss/dP, (n, d_out)
        grads = [None] * len(Ws)
        for i in range(len(Ws) - 1, -1, -1):
            grads[i] = xp.matrix_transpose(D) @ H[i]        # dW_i = D^T H_{i-1}, (out, in)
            D = D @ Ws[i]
        return flatten_params(grads)

    return Objective(name=f"linear_network({normalization})", d=d, f=f, grad=grad, f_star=0.0)


def linear_network_data(n: int, d_in: int, d_out: int, alpha, seed, *, dtype=None, xp=None):
    """Eq. (6) data (notes §10 [code build_A]): X = U_n diag(k^-alpha) Q^T (n x d_in, orthonormal U_n, Haar Q),
    M_star with iid N(0, 1) entries (d_out x d_in), Y = X M_star^T (y_i = M_star x_i), no noise.

    Returns: (X (n, d_in), Y (n, d_out), M_star (d_out, d_in))."""
    rng = egop.rng_from_seed(seed)
    xp, dtype = _xp_dtype(xp, dtype)
    n = validate.positive_int(n, "n")
    d_in = validate.positive_int(d_in, "d_in")
    d_out = validate.positive_int(d_out, "d_out")
    if n < d_in:
        raise ValueError(f"n: expected n >= d_in = {d_in} (U_n has orthonormal columns), got {n}")
    s = xp.asarray(singular_values(d_in, alpha, kind="power"), dtype=dtype)
    Un = _haar_columns(rng, n, d_in, dtype, xp)
    Q = _haar_columns(rng, d_in, d_in, dtype, xp)
    X = (Un * s[None, :]) @ xp.matrix_transpose(Q)
    M_star = egop.standard_normal(rng, (d_out, d_in), dtype=dtype, xp=xp)
    return X, X @ xp.matrix_transpose(M_star), M_star


def relu_network_shapes(sizes: Sequence[int] = (64, 32, 10)) -> list:
    """Parameter shapes in torch order [(h, d_in), (h,), (d_out, h), (d_out,)] ... for sizes (d_in, h, ..., d_out)."""
    sizes = _check_sizes(sizes)
    shapes = []
    for i in range(len(sizes) - 1):
        shapes += [(sizes[i + 1], sizes[i]), (sizes[i + 1],)]
    return shapes


def relu_network_blocks(sizes: Sequence[int] = (64, 32, 10)):
    """Slices of the weight matrices in the flat vector (biases are not reparameterized; notes §9 [code]).

    Returns: (tuple of slices, d). For (64, 32, 10): (slice(0, 2048), slice(2080, 2400)), d = 2410.
    """
    shapes = relu_network_shapes(sizes)
    return egop.block_slices([math.prod(s) for s in shapes], [len(s) == 2 for s in shapes])


def relu_network_value_and_grad(x, X, labels, sizes: Sequence[int] = (64, 32, 10)):
    """Loss and gradient of the ReLU network Linear -> ReLU -> ... -> Linear -> log-softmax, NLL mean over samples.

    References: egop.md Sec. 6 / App. D (UCI digits 64-32-10); notes §12 [seed + code].
    ReLU'(0) := 0 (PyTorch's convention). Log-softmax with the max shift.

    Args:
      x: (d,) flat parameters (torch order, row-major weights).
      X: (n, d_in) inputs (raw digits pixels 0..16 in the paper: no normalization).
      labels: (n,) integer class labels in [0, d_out).
      sizes: layer widths (d_in, h_1, ..., d_out).
    Returns: (loss 0-d, grad (d,)).
    """
    sizes = _check_sizes(sizes)
    xp = validate.matrix(X, "X")
    shapes = relu_network_shapes(sizes)
    d = sum(math.prod(s) for s in shapes)
    params = unflatten_params(_check_x(x, d, X), shapes)
    n = X.shape[0]
    if X.shape[1] != sizes[0]:
        raise ValueError(f"X: expected {sizes[0]} columns (sizes[0]), got {X.shape[1]}")
    Y = _one_hot(labels, n, sizes[-1], X.dtype, xp)
    Ws, bs = params[0::2], params[1::2]
    acts, pre = [X], []
    for i, (W, b) in enumerate(zip(Ws, bs)):
        z = acts[-1] @ xp.matrix_transpose(W) + b[None, :]
        pre.append(z)
        if i < len(Ws) - 1:
            acts.append(xp.where(z > 0, z, xp.zeros_like(z)))    # ReLU
    logits = pre[-1]
    m = xp.max(logits, axis=1, keepdims=True)
    e = xp.exp(logits - m)
    ssum = xp.sum(e, axis=1, keepdims=True)
    logp = logits - m - xp.log(ssum)
    loss = -xp.sum(Y * logp) / n
    D = (e / ssum - Y) / n                                          # dloss/dlogits
    grads = [None] * (2 * len(Ws))
    for i in range(len(Ws) - 1, -1, -1):
        grads[2 * i] = xp.matrix_transpose(D) @ acts[i]
        grads[2 * i + 1] = xp.sum(D, axis=0)
        if i > 0:
            D = D @ Ws[i]
            D = xp.where(pre[i - 1] > 0, D, xp.zeros_like(D))        # ReLU'(0) := 0 (PyTorch)
    return loss, flatten_params(grads)


def relu_network(X, labels, sizes: Sequence[int] = (64, 32, 10)) -> Objective:
    """The ReLU classification network as an :class:`Objective` over fixed data (full batch)."""
    sizes = _check_sizes(sizes)
    validate.matrix(X, "X")
    d = sum(math.prod(s) for s in relu_network_shapes(sizes))

    def f(x):
        return relu_network_value_and_grad(x, X, labels, sizes)[0]

    def grad(x):
        return relu_network_value_and_grad(x, X, labels, sizes)[1]

    return Objective(name="relu_network(" + "-".join(map(str, sizes)) + ")", d=d, f=f, grad=grad)


def relu_network_predict(x, X, sizes: Sequence[int] = (64, 32, 10)):
    """Logits (n, d_out) of the ReLU network."""
    sizes = _check_sizes(sizes)
    xp = validate.matrix(X, "X")
    shapes = relu_network_shapes(sizes)
    params = unflatten_params(_check_x(x, sum(math.prod(s) for s in shapes), X), shapes)
    a = X
    L = len(params) // 2
    for i in range(L):
        z = a @ xp.matrix_transpose(params[2 * i]) + params[2 * i + 1][None, :]
        a = xp.where(z > 0, z, xp.zeros_like(z)) if i < L - 1 else z
    return a


def accuracy(x, X, labels, sizes: Sequence[int] = (64, 32, 10)) -> float:
    """Fraction of samples whose argmax logit equals the label (Python float)."""
    logits = relu_network_predict(x, X, sizes)
    xp = backend.namespace(logits)
    pred = xp.argmax(logits, axis=1)
    return float(xp.mean(xp.astype(pred == xp.astype(labels, pred.dtype), xp.float64)))


def xavier_normal_sampler(shapes, *, dtype=None, xp=None):
    """rho = mean-zero Xavier normal on every weight matrix (std sqrt(2/(fan_in + fan_out)) per matrix), as the
    linear-network experiments use (notes §12 [seed + code]). Sampling helper (NumPy).

    Args: shapes: weight shapes (out, in). Returns: a ``krad_ref.egop.Sampler`` over flatten_params order.
    """
    xp, dtype = _xp_dtype(xp, dtype)
    shapes = [tuple(int(v) for v in s) for s in shapes]
    stds = []
    for s in shapes:
        if len(s) != 2:
            raise ValueError(f"shapes: expected weight shapes (out, in), got {s}")
        stds += [math.sqrt(2.0 / (s[0] + s[1]))] * (s[0] * s[1])
    d = len(stds)
    return egop.gaussian_sampler(xp.zeros((d,), dtype=dtype), xp.asarray(stds, dtype=dtype))._replace(
        name=f"xavier_normal(d={d})")


def network_init_sampler(sizes: Sequence[int] = (64, 32, 10), *, dtype=None, xp=None):
    """rho = the ReLU network's initialization (notes §12 [code]): weights Xavier normal, biases
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's Linear default for biases). Sampling helper (NumPy).

    Returns: a ``krad_ref.egop.Sampler`` over the torch-order flat vector.
    """
    xp, dtype = _xp_dtype(xp, dtype)
    shapes = relu_network_shapes(sizes)
    std, bound, is_w = [], [], []
    for s in shapes:
        k = math.prod(s)
        if len(s) == 2:
            std += [math.sqrt(2.0 / (s[0] + s[1]))] * k
            bound += [0.0] * k
            is_w += [True] * k
        else:                                                # the bias of the preceding weight (fan_in = its in)
            fan_in = prev_in
            std += [0.0] * k
            bound += [1.0 / math.sqrt(fan_in)] * k
            is_w += [False] * k
        prev_in = s[1] if len(s) == 2 else None
    d = len(std)
    std_a, bound_a = xp.asarray(std, dtype=dtype), xp.asarray(bound, dtype=dtype)
    mask = xp.asarray(is_w)

    def draw(M, rng):
        # sampling helper: NumPy draws (normal, then uniform) from the one Generator, cast
        M = validate.positive_int(M, "M")
        Z = egop.standard_normal(rng, (M, d), dtype=dtype, xp=xp)
        U = egop.uniform(rng, (M, d), -1.0, 1.0, dtype=dtype, xp=xp)
        return xp.where(mask[None, :], Z * std_a[None, :], U * bound_a[None, :])

    return egop.Sampler(draw=draw, d=d, name="network_init(" + "-".join(map(str, sizes)) + ")")


class DigitsData(NamedTuple):
    """The scikit-learn digits split: inputs (n, 64) float with raw pixels 0..16, labels (n,) int64."""

    X_train: Array
    y_train: Array
    X_val: Array
    y_val: Array
    X_test: Array
    y_test: Array


def load_digits_split(seed: int = 342, *, dtype=None, xp=None) -> DigitsData:
    """UCI digits as scikit-learn ships them (``sklearn.datasets.load_digits``; no download), split stratified.

    DEVIATION (errata 22): ``load_digits`` is only the UCI *test* file optdigits.tes (1797 samples). The paper
    trains on optdigits.tra (3823) and splits .tes 1/3 validation, 2/3 test (598 / 1199). Here the 1797 samples
    are split stratified (sklearn ``train_test_split``, random_state=seed): 2/3 train, then the remaining third
    split as the paper splits .tes (1/3 val, 2/3 test) -> 1198 / 199 / 400. Pixels are raw (0..16), as in the
    authors' code. The same partition for every trial. Needs scikit-learn (the ``examples`` extra): ImportError
    with a clear message otherwise.
    """
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:  # the optional "examples" extra
        raise ImportError("load_digits_split needs scikit-learn (pip install 'krad-ref[examples]')") from exc
    xp, dtype = _xp_dtype(xp, dtype)
    X, y = load_digits(return_X_y=True)
    X_tr, X_ho, y_tr, y_ho = train_test_split(X, y, test_size=1 / 3, stratify=y, random_state=seed)
    X_va, X_te, y_va, y_te = train_test_split(X_ho, y_ho, test_size=2 / 3, stratify=y_ho, random_state=seed)

    def cast(a, b):
        return xp.asarray(a, dtype=dtype), xp.asarray(b, dtype=xp.int64)

    return DigitsData(*cast(X_tr, y_tr), *cast(X_va, y_va), *cast(X_te, y_te))


# ---------------------------------------------------------------------------------------------------------
# private helpers

def _xp_dtype(xp, dtype):
    xp = backend.get_namespace("numpy") if xp is None else xp
    return xp, (xp.float64 if dtype is None else dtype)


def _haar_columns(rng, n: int, r: int, dtype, xp):
    """Sampling helper: n x r orthonormal columns, the Q factor of a Gaussian with sign(diag R) > 0 (Haar)."""
    Z = egop.standard_normal(rng, (n, r), dtype=dtype, xp=xp)
    Q, R = xp.linalg.qr(Z)
    rd = xp.linalg.diagonal(R)
    one = xp.ones_like(rd)
    return Q * xp.where(rd < 0, -one, one)[None, :]


def _check_data(A, b, bname: str):
    xp = validate.matrix(A, "A")
    validate.finite(A, "A", xp=xp)
    validate.float_array(b, bname, ndim=1, xp=xp)
    validate.finite(b, bname, xp=xp)
    validate.same_dtype(A=A, **{bname: b})
    n, d = A.shape
    if b.shape[0] != n:
        raise ValueError(f"{bname}: expected length n = {n} (rows of A), got {b.shape[0]}")
    return xp, n, d


def _check_x(x, d: int, like, name: str = "x"):
    """Light per-call check of a parameter vector: array of shape (d,) and the data's dtype."""
    if not hasattr(x, "shape") or tuple(x.shape) != (d,):
        raise ValueError(f"{name}: expected shape ({d},), got {getattr(x, 'shape', type(x).__name__)}")
    if x.dtype != like.dtype:
        raise TypeError(f"{name}: dtype {backend.dtype_name(x.dtype)} does not match the data's "
                        f"{backend.dtype_name(like.dtype)}")
    return x


def _sigmoid(z, xp):
    """1 / (1 + e^-z) without overflow: e = exp(-|z|) <= 1 on both branches."""
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _check_sizes(sizes):
    sizes = tuple(validate.positive_int(s, f"sizes[{i}]") for i, s in enumerate(sizes))
    if len(sizes) < 2:
        raise ValueError(f"sizes: expected at least (d_in, d_out), got {sizes}")
    return sizes


def _one_hot(labels, n: int, k: int, dtype, xp):
    if not hasattr(labels, "dtype") or not xp.isdtype(labels.dtype, "integral"):
        raise TypeError(f"labels: expected an integer array, got {getattr(labels, 'dtype', type(labels).__name__)}")
    if tuple(labels.shape) != (n,):
        raise ValueError(f"labels: expected shape ({n},), got {tuple(labels.shape)}")
    if n and (int(xp.min(labels)) < 0 or int(xp.max(labels)) >= k):
        raise ValueError(f"labels: expected classes in [0, {k}), got range [{int(xp.min(labels))}, "
                         f"{int(xp.max(labels))}]")
    ks = xp.arange(k, dtype=labels.dtype, device=backend.device(labels))
    return xp.astype(labels[:, None] == ks[None, :], dtype)

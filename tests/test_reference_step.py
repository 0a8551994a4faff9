"""One full optimizer step of the authors' KrADagrad* code, rebuilt from krad_ref's pieces.

The pieces: ``transforms.shampoo_driver(kradagrad_star, KradagradStarConfig(variant="reference-code"))``, i.e.
``start_preconditioning(blockwise(kradagrad_star), post=chain(norm_graft, weight_decay, momentum))`` with the
in-place "Nesterov" and the code's warm-up aliasing. The oracle: an independent, straight-line NumPy
transcription of the code as ``shared/notes/kradagrad-code.md`` specifies it (Sec. 1 shape merging and
``BlockPartitioner``; Sec. 2 ``Shampoo.step`` with the identity ``Graft``; Sec. 4.2 ``KrADPreconditioner``:
L_0 = I / matrix_eps, N = A L^T, t = -d (1 + tr N), L += L @ (N / t), root eigh(L + 1e-8 I) clamped at 0 with
exponent 1/(2p), preconditioning by repeated ``tensordot(X, P, [[0], [0]])``). The oracle uses real in-place
NumPy updates on aliased arrays where the code uses in-place torch updates on aliased tensors, so the warm-up
quirk (errata 20: W <- W - 2 mu eta (G' + 2 lambda W)) arises here the same way it does in the code, not from
a formula.

"Exactly" means the same formulas to rounding (errata 20), not bit-exact torch. The tolerance: each step does
O(d) flops per entry in the factor update and one eigh per factor; eigh is backward stable with error
~ d u ||L||, and the root L^{1/(2p)} of a matrix whose eigenvalues stay within a factor ~(d/(d-1))^steps of
L_0 (the code's t = d (1 + tr N) shrinks each eigenvalue by at most 1/d per update) is well conditioned, so
differences stay ~ c d u per step; with the momentum buffer summing at most 1/(1 - mu^2) ~ 5 steps' worth, we
allow 2**8 u relative to the largest entry (float64 5.7e-14, float32 1.5e-5; observed at most ~13 u, on the
momentum buffer) for W, M, every statistic and every root. Exception: a factor of order 1 loses ~log10(a l)
digits to cancellation in both implementations (:func:`test_size1_mode_cancellation`), so the float32 run of
the case with a 1-row block starts from L_0 = I.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from krad_ref import backend
from krad_ref import transforms as T

kradagrad = pytest.importorskip("krad_ref.kradagrad", reason="krad_ref.kradagrad (KrADagrad*) not available")


# ---------------------------------------------------------------------------------------------------------
# the oracle: a straight-line transcription of the authors' code (notes Sec. 1, 2, 4.2)

def code_merge_small_dims(shape_to_merge, max_dim):
    resulting_shape = []
    product = 1
    for d in shape_to_merge:
        if product * d <= max_dim:
            product *= d
        else:
            if product > 1:
                resulting_shape.append(product)
            product = d
    if product > 1:
        resulting_shape.append(product)
    return resulting_shape


class CodeBlockPartitioner:
    def __init__(self, shape, block_size):
        self._shape = tuple(shape)
        self._splits = []
        self._split_sizes = []
        split_sizes = []
        for i, d in enumerate(shape):
            if block_size > 0 and d > block_size:
                nsplit = (d - 1) // block_size
                indices = (np.arange(nsplit, dtype=np.int32) + 1) * block_size
                sizes = np.ones(nsplit + 1, dtype=np.int32) * block_size
                sizes[-1] = d - indices[-1]
                self._splits.append((i, indices))
                self._split_sizes.append((i, sizes))
                split_sizes.append(sizes)
            else:
                split_sizes.append(np.array([d], dtype=np.int32))
        self.shapes = [[int(d) for d in t] for t in itertools.product(*split_sizes)]

    def partition(self, tensor):
        tensors = [tensor]
        for i, indices in self._splits:
            tensors = [piece for t in tensors for piece in np.split(t, indices, axis=i)]
        return tensors

    def merge_partitions(self, partitions):
        for i, indices in reversed(self._splits):
            n = len(indices) + 1
            partitions = [np.concatenate(partitions[ind:ind + n], axis=i) for ind in range(0, len(partitions), n)]
        assert len(partitions) == 1
        return partitions[0]


class CodeKrADStarParam:
    """Per-parameter state of the code's ``Shampoo.step`` with a ``KrADPreconditioner`` and ``Graft``."""

    def __init__(self, W, hp):
        self.hp = hp
        self.dtype = W.dtype
        self.step = 0
        self.momentum = np.zeros_like(W)
        self.shape = W.shape
        self.transformed = code_merge_small_dims(W.shape, hp["block_size"])
        self.part = CodeBlockPartitioner(self.transformed, hp["block_size"])
        self.p = len(self.transformed)
        eps_override = 1.0 / hp["matrix_eps"]
        # statistics and preconditioners, block-major: index j * p + i
        self.stats = [eps_override * np.eye(d, dtype=self.dtype) for block in self.part.shapes for d in block
                      ] if self.p else []
        self.precs = [np.eye(S.shape[0], dtype=self.dtype) for S in self.stats]

    def add_statistics(self, grad):
        if not self.p:
            return
        blocks = self.part.partition(grad.reshape(self.transformed))
        for j, g in enumerate(blocks):
            for i in range(self.p):
                axes = [a for a in range(self.p) if a != i]
                stat = self.stats[j * self.p + i]
                ggt = np.tensordot(g, g, axes=(axes, axes))             # A = G_(i) G_(i)^T
                ggtl = ggt @ stat.T                                     # N = A L^T
                t_k = -(1 + np.trace(ggtl)) * stat.shape[0]             # t_k = -d (1 + tr N)
                ggtl *= 1 / t_k
                stat += stat @ ggtl                                     # L <- L - L N / (d (1 + tr N)), in place

    def compute_preconditioners(self):
        e = 2 * self.p                                                  # inverse_exponent_override = 0
        for idx, stat in enumerate(self.stats):
            # matrix_power_svd(stat, 1/e): eigh(stat + 1e-8 I), eigenvalues clamped at 0 (eig_eps = 0)
            lam, V = np.linalg.eigh(stat + 1e-8 * np.eye(stat.shape[0], dtype=stat.dtype), UPLO="L")
            lam = np.maximum(lam, 0)
            self.precs[idx] = (V * lam ** (1.0 / e)) @ V.T

    def preconditioned_grad(self, grad):
        if not self.p:
            return grad
        blocks = self.part.partition(grad.reshape(self.transformed))
        out = []
        for j, g in enumerate(blocks):
            X = g
            for i in range(self.p):
                X = np.tensordot(X, self.precs[j * self.p + i], [[0], [0]])
            out.append(X)
        return self.part.merge_partitions(out).reshape(self.shape)

    def step_(self, W, grad_in, lr):
        """``Shampoo.step`` for one parameter (notes Sec. 2), with torch's in-place updates on aliased arrays."""
        hp = self.hp
        grad = grad_in.copy()                                          # p.grad
        self.step += 1
        k = self.step
        if k % hp["statistics_compute_steps"] == 0:
            self.add_statistics(grad)
        if k % hp["preconditioning_compute_steps"] == 0:
            self.compute_preconditioners()
        graft_grad = grad                                               # Graft.precondition_gradient: p.grad itself
        shampoo_grad = grad
        if k >= hp["start_preconditioning_step"]:
            shampoo_grad = self.preconditioned_grad(grad)
        graft_norm = np.linalg.norm(graft_grad)
        shampoo_norm = np.linalg.norm(shampoo_grad)
        shampoo_grad *= (graft_norm / (shampoo_norm + 1e-16)).astype(self.dtype)
        if hp["weight_decay"] != 0.0:
            shampoo_grad += hp["weight_decay"] * W
            graft_grad += hp["weight_decay"] * W
        self.momentum *= hp["momentum"]
        self.momentum += shampoo_grad
        graft_momentum = grad                                           # Graft.update_momentum: p.grad itself
        if k >= hp["start_preconditioning_step"]:
            momentum_update, wd_update = self.momentum, shampoo_grad
        else:
            momentum_update, wd_update = graft_momentum, graft_grad
        if hp["nesterov"]:
            momentum_update *= hp["momentum"]
            momentum_update += wd_update
        W -= lr * momentum_update


# ---------------------------------------------------------------------------------------------------------
# scenarios

CASES = {
    # name: (shape, hyperparameters, steps)
    "matrix": ((4, 3), dict(block_size=128, start_preconditioning_step=1, statistics_compute_steps=1,
                            preconditioning_compute_steps=1, weight_decay=0.0, matrix_eps=1e-8), 4),
    # the conditioning experiment's schedule (notes Sec. 9): roots every 3 steps, preconditioning from step 3
    "fig1-schedule": ((5, 5), dict(block_size=6, start_preconditioning_step=3, statistics_compute_steps=1,
                                   preconditioning_compute_steps=3, weight_decay=0.0, matrix_eps=1e-8), 7),
    # merging (6,2,2,1) -> (6,4), blocking 6 -> 5|1 (a 1-row block), weight decay during warm-up (errata 20).
    # float32 uses L_0 = I here: the 1-row block's 1 x 1 factor has no 1/d guard (test_size1_mode_cancellation)
    "conv-blocked": ((6, 2, 2, 1), dict(block_size=5, start_preconditioning_step=2, statistics_compute_steps=1,
                                        preconditioning_compute_steps=2, weight_decay=1e-2, matrix_eps=1e-6,
                                        f32_matrix_eps=1.0), 5),
    # an order-3 tensor (exponent 1/6) and a bias vector cut into blocks (exponent 1/2)
    "order3": ((3, 4, 5), dict(block_size=5, start_preconditioning_step=1, statistics_compute_steps=2,
                               preconditioning_compute_steps=2, weight_decay=0.0, matrix_eps=1e-4), 4),
    "bias-blocked": ((7,), dict(block_size=5, start_preconditioning_step=2, statistics_compute_steps=1,
                                preconditioning_compute_steps=1, weight_decay=1e-3, matrix_eps=1e-8), 4),
    # an order-0 parameter: no statistics, grafted momentum SGD; the code adds weight decay twice here (p.grad is
    # returned as the "preconditioned" gradient and aliases the graft direction)
    "scalar-like": ((1, 1), dict(block_size=128, start_preconditioning_step=1, statistics_compute_steps=1,
                                 preconditioning_compute_steps=1, weight_decay=1e-2, matrix_eps=1e-8), 3),
}


def _run(xp, dtype, shape, hp, steps, *, nesterov=True, mu=0.9, lr=0.05):
    hp = dict(hp, momentum=mu, nesterov=nesterov)
    f32_eps = hp.pop("f32_matrix_eps", None)
    if dtype == "float32" and f32_eps is not None:
        hp["matrix_eps"] = f32_eps
    rng = np.random.default_rng(abs(hash((shape, steps))) % 2**32)
    W0 = rng.standard_normal(shape).astype(dtype)
    grads = [rng.standard_normal(shape).astype(dtype) for _ in range(steps)]

    # oracle
    W_ref = W0.copy()
    code = CodeKrADStarParam(W_ref, hp)
    for G in grads:
        code.step_(W_ref, G, lr)

    # our pieces
    kcfg = kradagrad.KradagradStarConfig(
        variant="reference-code", matrix_eps=hp["matrix_eps"], update_freq=hp["statistics_compute_steps"],
        root_freq=hp["preconditioning_compute_steps"])
    t, cfg = T.shampoo_driver(kradagrad.kradagrad_star, kcfg, block_size=hp["block_size"],
                              start=hp["start_preconditioning_step"], weight_decay=hp["weight_decay"], mu=mu,
                              nesterov=nesterov, warmup="code-alias")
    W = xp.asarray(W0)
    state = t.init(W, cfg)
    for G in grads:
        d, state = t.update(xp.asarray(G), state, cfg, params=W)
        W = W - lr * d
    return W, state, W_ref, code


def _check(got, want, dtype, what):
    got = np.asarray(backend.to_numpy(got), dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    u = 2.0**-24 if dtype == "float32" else 2.0**-53
    scale = max(float(np.max(np.abs(want))), 1e-300)
    err = float(np.max(np.abs(got - want)))
    assert err <= 2**8 * u * scale, f"{what}: max err {err:.3g} > 2**8 u * {scale:.3g} = {2**8 * u * scale:.3g}"
    return err / scale


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_authors_step_from_pieces(xp, case, dtype):
    shape, hp, steps = CASES[case]
    W, state, W_ref, code = _run(xp, dtype, shape, hp, steps)
    assert W.dtype == getattr(xp, dtype) and tuple(W.shape) == shape
    _check(W, W_ref, dtype, f"{case}: parameters after {steps} steps")
    _check(state.post[2].M, code.momentum, dtype, f"{case}: momentum buffer")
    # the statistics, block by block and mode by mode (the code's flat index j * p + i)
    ours = [F for bs in state.precond.blocks for F in bs.factors]
    assert len(ours) == len(code.stats)
    for idx, (F, S) in enumerate(zip(ours, code.stats)):
        _check(F, S, dtype, f"{case}: statistic {idx}")
    for idx, (P, Q) in enumerate(zip([P for bs in state.precond.blocks for P in bs.roots], code.precs)):
        _check(P, Q, dtype, f"{case}: preconditioner {idx}")


def test_plain_heavy_ball_driver(xp):
    shape, hp, steps = CASES["conv-blocked"]
    W, state, W_ref, code = _run(xp, "float64", shape, hp, steps, nesterov=False)
    _check(W, W_ref, "float64", "nesterov=False")


def test_warmup_quirk_is_visible(xp):
    """The first step of 'conv-blocked' (start = 2, lambda = 1e-2) is W - 2 mu eta (G' + 2 lambda W) (errata 20),
    which the oracle produces by aliasing; the clean 'gradient' warm-up differs from it."""
    shape, hp, _ = CASES["conv-blocked"]
    W, _, W_ref, _ = _run(xp, "float64", shape, hp, 1)
    _check(W, W_ref, "float64", "first (warm-up) step")
    rng = np.random.default_rng(abs(hash((shape, 1))) % 2**32)
    W0 = rng.standard_normal(shape)
    G = rng.standard_normal(shape)
    lam, mu, lr = hp["weight_decay"], 0.9, 0.05
    Gp = G * np.linalg.norm(G) / (np.linalg.norm(G) + 1e-16)
    _check(W_ref, W0 - 2 * mu * lr * (Gp + 2 * lam * W0), "float64", "errata 20 closed form")
    kcfg = kradagrad.KradagradStarConfig(variant="reference-code", matrix_eps=hp["matrix_eps"])
    t, cfg = T.shampoo_driver(kradagrad.kradagrad_star, kcfg, block_size=5, start=2, weight_decay=lam,
                              warmup="gradient")
    Wx = xp.asarray(W0)
    d, _ = t.update(xp.asarray(G), t.init(Wx, cfg), cfg, params=Wx)
    clean = np.asarray(backend.to_numpy(Wx - lr * d))
    _check(clean, W0 - lr * (1 + mu) * (Gp + lam * W0), "float64", "gradient warm-up = (1 + mu)(G' + lambda W)")
    assert np.max(np.abs(clean - W_ref)) > 1e-3


def test_size1_mode_cancellation():
    """Finding (errata 11, sharpened): a factor of order d = 1 (e.g. the 1-row remainder block that blocking
    leaves when d = 1 mod block_size) gets t = 1 (1 + a l) and l_new = l - l a l / t = l / (1 + a l), computed by
    both the code and krad_ref as a difference of two numbers ~ l: relative error ~ a l u. For d >= 2 the code's
    t = d (1 + tr N) keeps L_new >= (1 - 1/d) L (cancellation at most a factor d). With L_0 = I / 1e-6 in float32
    that is ~6 % after one update: the two implementations then agree only to that level, not to rounding."""
    l0, a = np.float32(1e6), np.float32(1.7)
    code = l0 + l0 * ((a * l0) * (np.float32(1) / (-(np.float32(1) + a * l0) * np.float32(1))))
    exact = 1e6 / (1 + 1.7e6)
    rel = abs(float(code) - exact) / exact
    assert rel > 1e3 * 2.0**-24, f"expected a cancellation error far above u, got {rel:.3g}"
    st = kradagrad.star_init((1, 4), kradagrad.KradagradStarConfig(variant="reference-code", matrix_eps=1e-6),
                             dtype=np.float32)
    G = np.full((1, 4), np.sqrt(1.7 / 4), dtype=np.float32)
    _, st = kradagrad.star_update(G, st, kradagrad.KradagradStarConfig(variant="reference-code", matrix_eps=1e-6))
    ours = float(st.factors[0][0, 0])
    assert abs(ours - exact) / exact > 1e3 * 2.0**-24        # krad_ref shows the same loss (not a bug of ours)
    st64 = kradagrad.star_init((1, 4), kradagrad.KradagradStarConfig(variant="reference-code", matrix_eps=1e-6))
    _, st64 = kradagrad.star_update(G.astype(np.float64), st64,
                                    kradagrad.KradagradStarConfig(variant="reference-code", matrix_eps=1e-6))
    exact64 = 1e6 / (1 + 1e6 * float(np.sum(G.astype(np.float64) ** 2)))
    assert abs(float(st64.factors[0][0, 0]) - exact64) / exact64 < 1e6 * 64 * 2.0**-53  # a l u, a l ~ 1.7e6

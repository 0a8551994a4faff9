"""pytorch-optimizer (kozistr/pytorch_optimizer) 4.1.0: ``Shampoo`` and ``ScalableShampoo``, mapped onto krad_ref.

Line numbers refer to the pinned version 4.1.0 (``pip install pytorch-optimizer==4.1.0``); paths are inside the
installed package ``pytorch_optimizer/optimizer/``.

``Shampoo`` (``shampoo.py``:12-156), the mapping of each option:
  * statistics: ``pre_cond_i`` starts at ``matrix_eps * I`` (:86-88) and accumulates the unfolded raw gradient
    (:129-134, ``statistics_grad`` is the gradient before any preconditioning): krad_ref
    ``eps = matrix_eps``, ``eps_placement = "statistic"``, ``beta2 = 1`` (no decay option exists, so the issue's
    "beta2 < 1" configuration is not offered by this optimizer);
  * roots: ``compute_power_svd(pre_cond, 2 * order)`` (:143; ``utils/matrix.py``:268-282: u s^(-1/e) v^T by
    ``torch.linalg.svd``, nothing added): ``root_method = "svd"``, the paper's exponent -1/(2p)
    (``exponent_rule = "2p"``, the default); the statistic is stored and compared as eps I + sum G G^T;
  * schedule: ``group['step']`` is incremented first (:101) and roots are computed when
    ``step % preconditioning_compute_steps == 0`` (:142): roots at f, 2f, ... (``root_phase = "multiple"``, the
    default), ``root_freq = preconditioning_compute_steps``; statistics every step (``update_freq = 1``);
  * before the first root ``inv_pre_cond_i`` is ZERO (:90), so the direction is 0 for k < f:
    ``before_first_root = "zero"`` (only set when f > 1; for f = 1 the first step computes a root);
  * ``momentum`` (:115-116) lerps the gradient with the previous *preconditioned* direction (:152) BEFORE the
    statistics are formed: not expressible (krad_ref's momentum is a transform after the preconditioner), set 0;
  * ``weight_decay``/``weight_decouple``/``fixed_decay`` (:118-125): off (0); ``maximize``: False.
  Quantities: ``state['pre_cond_i']`` (factors) and ``state['inv_pre_cond_i']`` (roots).

``ScalableShampoo`` (``shampoo.py``:159-384, ``utils/preconditioner.py``), the mapping:
  * statistics (``PreConditioner.add_statistics``, preconditioner.py:101-128): S <- beta2 S + w2 G G^T with
    w2 = 1 - beta2, or 1 when beta2 == 1 (:47; but ``validate_betas`` refuses beta2 = 1, range "[)",
    ``base/optimizer.py``:665-668), S_0 = matrix_eps I (:74-76), so eps decays with S:
    ``beta2 = betas[1]``, ``eps = matrix_eps``, ``eps_placement = "statistic"``; updated when
    ``step % statistics_compute_steps == 0`` (shampoo.py:327): ``update_freq``;
  * roots (preconditioner.py:130-147) when ``step % preconditioning_compute_steps == 0`` (shampoo.py:329):
    ``root_freq``; before the first, identity (:77, the default ``before_first_root``); exponent
    ``inverse_exponent_override`` if > 0 else 2 * rank (:56-58): ``exponent_override``;
    - ``use_svd=True``: ``compute_power_svd`` as above: ``root_method = "svd"``;
    - ``use_svd=False`` (the LIBRARY DEFAULT): ``compute_power_schur_newton`` (matrix.py:192-264) adds a SECOND
      regularisation ``matrix_eps * lambda_max`` (:227) on top of the eps I already in the statistic
      (``eps_mode = "relative"`` with ``eps_placement = "statistic"``), starts from z = (1 + p) / (2 ||S||_F)
      (:229-233), stops at an entrywise-max residual <= 1e-3 (:197, :250: ``newton_tol = 1e-3``,
      ``newton_error = "max"``) and returns the iterate before a 1.2x residual growth, else the last one
      (:256-264: ``newton_on_fail = "return"``). lambda_max comes from 100 power iterations from a
      ``torch.randn`` start (:91-111) where krad_ref takes the exact one: on some inputs the difference
      exceeds float64's tolerance, so float64 is NOT CHECKED for configurations that compute roots (float32's
      tolerance is far above it); the adapter seeds torch's RNG per step in a forked RNG state, so every run
      draws the same start. A 1 x 1 statistic gets the closed form (S + matrix_eps S)^(-1/e) instead of the
      iteration (:224-225): shapes with a dimension 1 are declined for these configurations;
  * ``start_preconditioning_step`` (shampoo.py:293-294, :373): the direction is the graft's before it; with
    ``graft_type=NONE`` the graft is the gradient itself (``utils/graft.py``:23-39): krad_ref
    ``start_preconditioning_step``;
  * grafting (:332-344) rescales the direction to the graft's norm: a transform in krad_ref: ``graft_type=0``
    (NONE); momentum ``betas[0]`` (:366-380): 0 with ``nesterov=False`` (with beta1 = 0 both branches reduce to
    the preconditioned gradient); ``decoupled_learning_rate=True`` (default) so lr multiplies only the final
    step; weight decay 0;
  * ``shape_interpretation=True`` (default) merges dimensions whose product is <= block_size
    (``utils/shape.py``:4-29): every shape the harness draws (dims <= 5) collapses to one dimension and is then
    not preconditioned at all (preconditioner.py:64). krad_ref leaves reshaping to ``transforms``: set False;
    ``block_size`` 512 (default) never partitions these shapes; ``pre_conditioner_type=ALL`` (default).
  Quantities: ``PreConditioner.statistics`` (factors) and ``.pre_conditioners`` (roots), one per mode.
"""
from __future__ import annotations

import dataclasses

from . import Configuration, Peer

#: generated inputs where float32 loses matrix_eps I against the statistic (harness.check's options)
LARGE = {"grad_scale": (1e-3, 1e4), "grad_rank": "low"}

_SHAMPOO_FIXED = {"momentum": 0.0, "weight_decay": 0.0}


def _shampoo_quantities(opt, param) -> dict:
    st = opt.state[param]
    n = param.ndim
    return {"factors": [st[f"pre_cond_{i}"] for i in range(n)],
            "roots": [st[f"inv_pre_cond_{i}"] for i in range(n)]}


def _shampoo_conf(name: str, description: str, f: int = 1, eps: float = 1e-6) -> Configuration:
    config = {"eps": eps, "eps_placement": "statistic", "root_method": "svd", "root_freq": f}
    if f > 1:
        config["before_first_root"] = "zero"
    return Configuration(name, description, {**_SHAMPOO_FIXED, "preconditioning_compute_steps": f,
                                             "matrix_eps": eps}, config)


SHAMPOO = Peer(
    package="pytorch-optimizer", module="pytorch_optimizer", optimizer="Shampoo",
    quantities=_shampoo_quantities,
    configurations=(
        _shampoo_conf("defaults", "library defaults (matrix_eps 1e-6, roots every step)"),
        _shampoo_conf("roots every 3 steps", "preconditioning_compute_steps=3 (zero direction before step 3)", f=3),
        _shampoo_conf("matrix_eps 1e-2", "a large eps, so its placement in the statistic matters", eps=1e-2),
        dataclasses.replace(_shampoo_conf("defaults, norms 1e-3..1e4, low rank", "library defaults on low-rank "
                                          "gradients of spectral norm 1e-3 to 1e4 (||S|| >> matrix_eps / u)"),
                            inputs=LARGE),
        Configuration("momentum 0.9", "momentum=0.9", {"momentum": 0.9}, None,
                      "convention not expressible: momentum is lerped into the gradient before the statistics "
                      "are formed, with the previous preconditioned direction as buffer (shampoo.py:115-116, "
                      ":152); krad_ref's momentum is a transform after the preconditioner"),
    ),
)


def _scalable_quantities(opt, param) -> dict:
    pc = opt.state[param]["pre_conditioner"]
    return {"factors": list(pc.statistics), "roots": list(pc.pre_conditioners)}


_SCALABLE_FIXED = {"moving_average_for_momentum": False, "nesterov": False, "graft_type": 0,
                   "shape_interpretation": False, "weight_decay": 0.0, "use_svd": True}


_NEWTON = {"root_method": "coupled_newton", "eps_mode": "relative", "newton_tol": 1e-3, "newton_error": "max",
           "newton_on_fail": "return"}
_NEWTON_1X1 = ("compute_power_schur_newton returns the closed form (S + matrix_eps S)^(-1/e) for a 1 x 1 statistic "
               "(utils/matrix.py:224-225) instead of the iterate its other sizes get")

_NEWTON_LAMBDA = ("convention not expressible in float64: the relative ridge matrix_eps * lambda_max takes lambda_max "
                  "from 100 power iterations from a random start (utils/matrix.py:91-111, :227), krad_ref the exact "
                  "one; the difference exceeds float64's tolerance on some inputs (with the exact lambda_max patched "
                  "in they pass: tests/test_crossval_peers.py)")


def _scalable_conf(name: str, description: str, *, beta2: float = 0.999, start: int = 25, f: int = 1000,
                   u: int = 1, eps: float = 1e-6, override: int = 0, svd: bool = True) -> Configuration:
    kwargs = {**_SCALABLE_FIXED, "betas": (0.0, beta2), "start_preconditioning_step": start,
              "preconditioning_compute_steps": f, "statistics_compute_steps": u, "matrix_eps": eps,
              "inverse_exponent_override": override, "use_svd": svd}
    config = {"eps": eps, "beta2": beta2, "update_freq": u, "root_freq": f, "start_preconditioning_step": start,
              "exponent_override": override, "eps_placement": "statistic",
              **({"root_method": "svd"} if svd else _NEWTON)}
    if svd:
        return Configuration(name, description, kwargs, config)
    gap = {} if f > 6 else {"float64": _NEWTON_LAMBDA}  # f > 6: no root within the harness's 1-6 steps
    return Configuration(name, description, kwargs, config, min_dim=2, min_dim_reason=_NEWTON_1X1,
                         dtype_reasons=gap)


SCALABLE = Peer(
    package="pytorch-optimizer", module="pytorch_optimizer", optimizer="ScalableShampoo",
    quantities=_scalable_quantities,
    configurations=(
        _scalable_conf("defaults", "library defaults (Schur-Newton roots, beta2 0.999, start 25, roots every 1000 "
                       "steps: statistics only in a short run), no graft/momentum", svd=False),
        _scalable_conf("roots every step, Schur-Newton", "start_preconditioning_step=1, "
                       "preconditioning_compute_steps=1, use_svd=False", start=1, f=1, svd=False),
        _scalable_conf("roots every step, SVD", "start 1, roots every step, use_svd=True", start=1, f=1),
        dataclasses.replace(_scalable_conf("roots every step, SVD, norms 1e-3..1e4, low rank", "as above on "
                                           "low-rank gradients of spectral norm 1e-3 to 1e4", start=1, f=1),
                            inputs=LARGE),
        dataclasses.replace(_scalable_conf("roots every step, Schur-Newton, norms 1e-3..1e4, low rank",
                                           "Schur-Newton roots on low-rank gradients of norm 1e-3 to 1e4",
                                           start=1, f=1, svd=False), inputs=LARGE),
        _scalable_conf("roots every 2 steps, start 3, SVD", "preconditioning_compute_steps=2, "
                       "start_preconditioning_step=3, use_svd=True", start=3, f=2),
        _scalable_conf("beta2 0.9, statistics every 2, SVD", "betas=(0, 0.9), statistics_compute_steps=2, roots "
                       "every 2", beta2=0.9, start=1, f=2, u=2),
        _scalable_conf("beta2 = 0, SVD", "betas=(0, 0): the current gradient's statistic only (eps I is dropped "
                       "at the first update)", beta2=0.0, start=1, f=1),
        _scalable_conf("exponent override 2, SVD", "inverse_exponent_override=2 (S^-1/2 per mode)", start=1, f=1,
                       override=2),
    ),
)

PEERS = (SHAMPOO, SCALABLE)

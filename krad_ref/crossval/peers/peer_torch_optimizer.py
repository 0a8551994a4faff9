"""torch-optimizer (jettify/pytorch-optimizer) 0.3.0: ``Shampoo``, mapped onto krad_ref.

Line numbers refer to the pinned version 0.3.0 (``pip install torch-optimizer==0.3.0``), file
``torch_optimizer/shampoo.py`` of the installed package (its docstring names moskomule/shampoo.pytorch as the
reference code). The mapping of each option:
  * ``epsilon`` (default 1e-4): the statistic ``precond_i`` starts at ``epsilon * I`` (:100-104) and accumulates
    without decay (:128): krad_ref ``eps = epsilon``, ``eps_placement = "statistic"``, ``beta2 = 1`` (no decay
    option, so the issue's "beta2 < 1" configuration is not offered by this optimizer);
  * roots: ``_matrix_power(precond, -1 / order)`` (:130; :7-12: u s^power v^T by ``torch.svd``):
    ``root_method = "svd"`` and the exponent -1/p of the tensor order p (a matrix gets S^(-1/2), not the
    paper's S^(-1/4)): ``exponent_rule = "p"``;
  * ``update_freq``: ``state['step']`` starts at 0 (:97) and is incremented AFTER the roots (:143); roots are
    computed when ``step % update_freq == 0`` (:129), i.e. at k = 1, 1 + f, 1 + 2f, ...:
    ``root_freq = update_freq`` with ``root_phase = "first"`` (only set when f > 1); statistics every step;
  * the STATISTIC OF MODE i >= 1 is accumulated from ``grad`` after it has been multiplied by the roots of modes
    0..i-1 (:118-141: ``grad`` is rebound to ``inv_precond @ grad`` at :139 before the next mode's
    ``precond.add_(grad @ grad_t)`` at :128). Every formulation of Shampoo (Gupta et al. 2018, Alg. 2; the
    KrADagrad paper Eq. 2) accumulates the raw gradient's unfoldings; this is what the FAILs in the matrix show
    (``tests/test_crossval_peers.py`` patches these lines in memory and the same configuration passes);
  * ``momentum`` (:109-112) mixes the gradient with the previous *preconditioned* direction (:144) before the
    statistics are formed: not expressible, set 0; ``weight_decay`` (:114-115): 0.
  Quantities: ``state['precond_i']`` (factors, eps I included) and ``state['inv_precond_i']`` (roots).
"""
from __future__ import annotations

from . import Configuration, Peer


def _quantities(opt, param) -> dict:
    st = opt.state[param]
    n = param.ndim
    return {"factors": [st[f"precond_{i}"] for i in range(n)], "roots": [st[f"inv_precond_{i}"] for i in range(n)]}


def _conf(name: str, description: str, f: int = 1, eps: float = 1e-4) -> Configuration:
    config = {"eps": eps, "eps_placement": "statistic", "root_method": "svd", "exponent_rule": "p", "root_freq": f}
    if f > 1:
        config["root_phase"] = "first"
    return Configuration(name, description, {"momentum": 0.0, "weight_decay": 0.0, "epsilon": eps,
                                             "update_freq": f}, config)


SHAMPOO = Peer(
    package="torch-optimizer", module="torch_optimizer", optimizer="Shampoo",
    quantities=_quantities,
    configurations=(
        _conf("defaults", "library defaults (epsilon 1e-4, roots every step)"),
        _conf("roots every 3 steps", "update_freq=3 (roots at steps 1, 4, 7, ...)", f=3),
        _conf("epsilon 1e-2", "a large epsilon", eps=1e-2),
        Configuration("momentum 0.9", "momentum=0.9", {"momentum": 0.9}, None,
                      "convention not expressible: momentum mixes the gradient with the previous preconditioned "
                      "direction before the statistics are formed (shampoo.py:109-112, :144)"),
    ),
)

PEERS = (SHAMPOO,)

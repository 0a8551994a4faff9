"""heavyball (HomebrewML/HeavyBall) 3.2.1: its Shampoo-family optimizer ``KLShampoo`` CANNOT be mapped.

heavyball 3.2.1 ships no plain Shampoo; its Shampoo-family optimizers are ``KLShampoo`` / ``HeavyKLShampoo`` and
the SOAP variants (Adam in a Shampoo eigenbasis, a different algorithm). Line numbers refer to the installed
package ``heavyball/`` at the pinned version 3.2.1. Why no krad_ref ``shampoo.Config`` describes a
``KLShampoo`` step, whatever its options:
  1. The statistics are not Shampoo's. ``update_ggt_kl`` (utils.py:1274-1303) updates each factor with the
     gradient projected on the other factor's eigenbasis and weighted by that factor's inverse eigenvalues
     divided by its dimension (:1287-1302, the KL fixed point of Lin et al. 2025, arXiv:2509.03378), not with
     G_(k) G_(k)^T (KrADagrad Eq. 2; Gupta et al. Alg. 2). This is a different preconditioner, not a convention.
  2. The root is not a matrix function of the statistic. The preconditioner is Q diag(d^(-1/2)) Q^T with
     d = diag(Q^T GG Q) (utils.py:1269-1270, :1307-1322), where the basis Q is refreshed by one QR
     power-iteration step (``get_orthogonal_matrix_QR``, chainable.py:1297-1298, utils.py:860) on a schedule
     of ``precondition_frequency`` steps: an approximate eigenbasis, so even the eigenvalues d are not those of
     GG.
  3. The factors are rescaled against each other after every update (``psgd_balance_Q``, chainable.py:1356-1359,
     utils.py:2654), and ``GG`` is seeded with ``init_factor * I`` (utils.py:1422-1425).
  4. The preconditioner acts on a momentum EMA (chainable.py:1349, ``stochastic_lerp_`` with 1 - beta1), and the
     state is stored in ``storage_dtype`` float32 with stochastic rounding (utils.py:1115-1118), so even a
     float64 parameter is not preconditioned in float64 and two runs of one input differ.
  5. The first dimension is a batch dimension: ``init_preconditioner`` allocates factors only for dims 1.. of
     the (merged) gradient (utils.py:1416-1427), whereas Shampoo has one factor per mode.
The matrix therefore lists ``KLShampoo`` as NOT CHECKED with this reason; checking it needs a KL-Shampoo
reference (its own algorithm id in krad_ref), not a Shampoo convention.
"""
from __future__ import annotations

from . import Configuration, Peer

REASON = ("convention not expressible: KL-Shampoo is another preconditioner (statistics weighted by the other "
          "factor's inverse eigenvalues, utils.py:1274-1303; roots from diag(Q^T GG Q) in a QR-refreshed basis, "
          ":1307-1322; factor balancing, chainable.py:1356-1359; float32 stochastic-rounding storage), not a "
          "convention of Shampoo; see krad_ref/crossval/peers/peer_heavyball.py")

KL_SHAMPOO = Peer(
    package="heavyball", module="heavyball", optimizer="KLShampoo",
    configurations=(Configuration("defaults", "library defaults", {}, None, REASON),),
)

PEERS = (KL_SHAMPOO,)

"""krad_ref: executable reference for Kronecker-factored and block adaptive preconditioners.

The algorithms of three papers, written once against the Python array API (NumPy, CuPy, array_api_strict):
  * KrADagrad / KrADagrad* and the Shampoo baseline (Mei et al., "KrADagrad: Kronecker Approximation-Domination
    Gradient Preconditioned Stochastic Optimization"),
  * MBAG, Mini-Block Adaptive Gradient (Sherman-Morrison inverse updates, Newton-Schulz roots),
  * EGOP reparameterization of Adagrad/Adam.

Modules: ``backend`` (array namespaces), ``validate`` (argument checks), ``linalg`` (vec/kron, PSD matrix
functions, geometric mean, iterative roots, norms). The printed claims of the papers are checked by the
sibling package ``proofs_check`` (``python -m proofs_check``).
"""
__version__ = "0.1.0"

"""proofs_check: the papers' printed statements as executable claims, judged in mpmath.

A :class:`~proofs_check.claim.Claim` holds a statement exactly as printed, its source (paper and equation),
a hypothesis strategy producing instances that satisfy its hypotheses by construction, and a check that
returns :class:`~proofs_check.claim.Evidence` (a margin computed in mpmath at >= 40 digits, with a scale).
``python -m proofs_check`` searches every registered claim for counterexamples, shrinks those it finds, and
prints a verdict per claim. See ``proofs_check.runner`` for the search profiles.
"""
__version__ = "0.1.0"

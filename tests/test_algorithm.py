"""The algorithm registry and the shape helper."""
from __future__ import annotations

import numpy as np
import pytest

from krad_ref import algorithm


def test_shape_of_accepts_tuples_and_arrays():
    assert algorithm.shape_of((3, 4)) == (3, 4)
    assert algorithm.shape_of(np.zeros((2, 5))) == (2, 5)
    with pytest.raises(ValueError, match="shape_or_array"):
        algorithm.shape_of((3, 0))
    with pytest.raises(ValueError, match="shape_or_array"):
        algorithm.shape_of((3, 2.0))
    with pytest.raises(TypeError, match="shape_or_array"):
        algorithm.shape_of(3)


def test_unknown_id_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown id 'nope'.*kradagrad_star"):
        algorithm.get("nope")


@pytest.fixture
def scratch_registry(monkeypatch):
    """The algorithm registry as it is now, restored after the test (mutation tools rerun tests in one process:
    a toy id left behind would change what the next run sees)."""
    monkeypatch.setattr(algorithm, "_REGISTRY", dict(algorithm._REGISTRY))
    return algorithm._REGISTRY


def test_duplicate_registration_is_refused(scratch_registry):
    alg = algorithm.Algorithm("toy_for_test", object, tuple, lambda *a, **k: None, lambda *a, **k: None)
    algorithm.register(alg)
    algorithm.register(alg)  # the same record again is harmless (module re-import)
    with pytest.raises(ValueError, match="registered twice"):
        algorithm.register(alg._replace(update=lambda *a, **k: 1))
    assert scratch_registry["toy_for_test"] is alg


def test_toy_registration_did_not_leak():
    # runs after test_duplicate_registration_is_refused in file order (the ci profile does not shuffle)
    assert "toy_for_test" not in algorithm._REGISTRY

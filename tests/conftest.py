"""Shared test configuration: hypothesis profiles and the array-namespace fixture.

Profiles (select with HYPOTHESIS_PROFILE=name; CI=true selects "ci"):
  ci    derandomized (the same examples on every run, so a failure in CI reproduces locally), no database;
  dev   the local default: random examples, a few more of them;
  deep  a local campaign: 1000 examples per property, no deadline. Expect hours.
Property tests whose examples each run an mpmath computation use ``settings(max_examples=...)`` scaled down
from these; they still derandomize under "ci" because the profile is the parent of their settings.
"""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from krad_ref import backend

settings.register_profile(
    "ci", derandomize=True, database=None, deadline=None, max_examples=25, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev", deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "deep", deadline=None, max_examples=1000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
_default = "ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", _default))


def _namespaces():
    params = [pytest.param("numpy", id="numpy"), pytest.param("array_api_strict", id="array_api_strict")]
    params.append(pytest.param("cupy", id="cupy", marks=pytest.mark.cupy))
    return params


@pytest.fixture(params=_namespaces())
def xp(request):
    """Each array namespace the algorithms must run under; CuPy is skipped, with the reason, when absent."""
    name = request.param
    if name == "array_api_strict":
        pytest.importorskip("array_api_strict", reason="array_api_strict not installed (pip install '.[test]')")
    if name == "cupy" and not backend.available("cupy"):
        pytest.skip("cupy not installed or no GPU available")
    return backend.get_namespace(name)

"""Shared test settings: bounded, reproducible hypothesis runs; GPU tests skip cleanly; the
stand-in device (tests/standin.py) registered, so tests can put tensors on ``"standin"``."""

import os

import pytest
from hypothesis import HealthCheck, settings

from tests import standin

standin.register()

# No deadline: the first call of a Numba kernel compiles it. Derandomized in CI so a red
# run reproduces; a bounded number of examples keeps the suite to minutes on 2 cores.
settings.register_profile("dev", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_collection_modifyitems(config, items):
    import minikd

    if minikd.cuda_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (CuPy with an NVIDIA GPU); none on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


DEVICES = ["standin", pytest.param("cuda", marks=pytest.mark.gpu)]


@pytest.fixture(params=DEVICES)
def device(request):
    """A device other than the CPU: the stand-in always, a real GPU when there is one (marker ``gpu``)."""
    return request.param

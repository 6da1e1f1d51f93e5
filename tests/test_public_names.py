"""mk.prune, mk.quant, mk.profile, mk.data, mk.models, mk.checks: the lecture's modules are
attributes of the package, like mk.kd, imported on first use (PEP 562) so `import minikd`
stays fast."""

import importlib
import subprocess
import sys

import pytest

import minikd as mk

LAZY = ["checks", "data", "models", "profile", "prune", "quant", "verification"]


@pytest.mark.parametrize("name", LAZY + ["kd", "nn", "optim", "functional"])
def test_each_lecture_module_is_an_attribute_and_is_the_module(name):
    module = getattr(mk, name)
    assert module is importlib.import_module(f"minikd.{name}")
    assert name in mk.__all__ and name in dir(mk)


def test_the_attributes_work_like_the_modules():
    assert mk.prune.prune is importlib.import_module("minikd.prune.pruning").prune
    assert mk.quant.qparams(1.0, -1.0, 4) == (2 / 15, 0)
    assert callable(mk.profile.summary) and callable(mk.data.DataLoader)
    assert mk.models.TeacherModel.__name__ == "TeacherModel"
    assert mk.checks.check_int(3, "op", "n") == 3


def test_an_unknown_attribute_is_still_an_attribute_error():
    with pytest.raises(AttributeError, match="module 'minikd' has no attribute 'pruning'"):
        mk.pruning  # noqa: B018
    assert not hasattr(mk, "export_") and getattr(mk, "nope", None) is None


def test_import_minikd_does_not_import_the_lecture_modules_eagerly():
    code = ("import sys, minikd; "
            "print(sorted(m for m in ('minikd.data', 'minikd.models', 'minikd.profile', 'minikd.prune', "
            "'minikd.quant') if m in sys.modules)); "
            "minikd.prune; minikd.quant; "
            "print(sorted(m for m in ('minikd.prune', 'minikd.quant', 'minikd.data') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]", out
    assert out[1] == "['minikd.prune', 'minikd.quant']", out  # on first use, and only what was used


def test_star_import_gives_the_lecture_modules():
    names = {}
    exec("from minikd import *", names)
    assert names["prune"] is mk.prune and names["quant"] is mk.quant and names["CheckpointError"] is mk.CheckpointError

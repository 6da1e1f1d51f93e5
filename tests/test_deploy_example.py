"""examples/deploy_student.py: --quick on the real MNIST files (CI installs the deploy extra), and its checks."""

import json

import pytest

from tests.util import assert_platform, load_example, needs_mnist

pytest.importorskip("onnxruntime", reason="the deploy extra (onnx, onnxruntime) is not installed")
pytest.importorskip("onnx", reason="the deploy extra (onnx, onnxruntime) is not installed")


@pytest.mark.slow
@needs_mnist
def test_quick_deploy_writes_every_stage_and_both_engines_agree(tmp_path, capsys):
    load_example("deploy_student").main(["--quick", "--out", str(tmp_path), "--no-progress"])
    report = json.loads((tmp_path / "results.json").read_text())
    rows = {r["stage"]: r for r in report["rows"]}
    assert list(rows) == ["float", "pruned", "int8"]
    assert_platform(report)
    assert rows["float"]["params"] == 105_866 and rows["pruned"]["params"] < 0.3 * 105_866
    for stage, r in rows.items():
        assert (tmp_path / f"{stage}.onnx").stat().st_size == r["onnx_bytes"]
        assert (tmp_path / f"{stage}.safetensors").is_file()
        assert r["acc_minikd"] > 0.5 and r["acc_onnxruntime"] == pytest.approx(r["acc_minikd"], abs=0.002)
        assert r["disagreements"] <= 2  # float: none; int8: a rounding tie at most (docs/deploy.md)
        assert all(r[k] > 0 for k in r if k.endswith(("_b1", "_b1000")))
    assert rows["float"]["max_abs_logit_diff"] < 1e-4
    assert rows["int8"]["onnx_bytes"] <= 0.3 * rows["pruned"]["onnx_bytes"]  # int8 weights: a quarter, plus scales
    out = capsys.readouterr().out
    assert "SMOKE RUN" in out and "ONNX file sizes" in out


@pytest.mark.parametrize("argv, message", [
    (["--amount", "1"], "--amount"),
    (["--amount", "-0.1"], "--amount"),
    (["--amount", "0.97"], "--amount 0.97: prune: structure='filter' with amount=0.97 (scope='local') would remove "
                           "all 16 filters"),   # was a traceback after the training
    (["--repeats", "0"], "--repeats"),
    (["--student", "no/such/file.npz"], "run python examples/mnist_teacher_student.py first"),
])
def test_bad_options_stop_before_any_work(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        load_example("deploy_student").main([*argv, "--out", str(tmp_path / "out")])
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

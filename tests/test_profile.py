"""Model complexity: every worked example of the slides, the teacher's table, latency, the CLI."""

import numpy as np
import pytest

import minikd as mk
from minikd import functional as F
from minikd import nn
from minikd.models import StudentModel, TeacherModel
from minikd.profile import (
    COUNTERS,
    conv_flops,
    conv_output_size,
    conv_params,
    linear_flops,
    linear_params,
    main,
    measure_latency,
    memory_bytes,
    register_counter,
    summary,
)

IMAGE = np.array([[1, 0, 1, 0, 1], [0, 0, 1, 1, 0], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 0, 0]], float)
KERNEL = np.array([[1, 1, 1], [0, 0, 0], [1, 0, 1]], float)


def toy_2_4_2():
    return nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))


def test_toy_network_2_4_2_has_22_parameters_and_88_bytes():
    assert linear_params(2, 4) + linear_params(4, 2) == (2 * 4 + 4 * 2) + (4 + 2) == 22
    assert memory_bytes(22, "float32") == 4 * 22 == 88
    s = summary(toy_2_4_2(), (2,))
    assert s.total_params == 22 and s.total_memory_bytes == 88
    assert [r.params for r in s.rows] == [12, 0, 10]  # ReLU has no parameters


def test_memory_per_data_type_of_the_slide_table_and_any_bit_width():
    assert [memory_bytes(1, t) for t in ("int8", "uint8", "int32", "float32")] == [1, 1, 4, 4]
    assert memory_bytes(10, np.float64) == 80
    assert memory_bytes(10, 4) == 5 and memory_bytes(3, 4) == 1.5 and memory_bytes(8, 8) == 8
    with pytest.raises(ValueError, match="unknown data type"):
        memory_bytes(1, "float8")


def test_fully_connected_on_112x112x3_into_500_neurons_has_18816000_weights():
    assert linear_params(112 * 112 * 3, 500, bias=False) == 112 * 112 * 3 * 500 == 18_816_000


def test_one_3x3_filter_over_depth_3_has_28_parameters():
    assert conv_params(3, 3, 1) == 3 * 3 * 3 + 1 == 28
    assert nn.Conv2d(3, 1, 3).num_parameters() == 28


def test_three_3x3_filters_on_5x5x1_input_27_weights_3_biases_3x3x3_output_540_flops():
    assert conv_params(3, 1, 3, bias=False) == 1 * (3 * 3) * 3 == 27
    assert conv_params(3, 1, 3) - conv_params(3, 1, 3, bias=False) == 3
    h = conv_output_size(5, 3)
    assert h == 3
    assert conv_flops(h, h, 3, 1, 3) == 2 * (3 * 3) * (1 * 3 * 3 + 1) * 3 == 540
    s = summary(nn.Conv2d(1, 3, 3), (1, 5, 5))
    (row,) = s.rows
    assert row.output_shape == (3, 3, 3) and row.params == 30 and row.flops == 540


def test_the_slides_5x5_image_and_3x3_kernel():
    out = F.conv2d(mk.tensor(IMAGE[None, None]), mk.tensor(KERNEL[None, None])).numpy()[0, 0]
    assert out.shape == (conv_output_size(5, 3),) * 2
    np.testing.assert_array_equal(out, [[4, 2, 3], [2, 2, 2], [5, 3, 2]])


def test_zero_padding_exercise_gives_a_5x5_output_with_these_values():
    assert conv_output_size(5, 3, p=1) == (5 - 3 + 2 * 1) // 1 + 1 == 5
    padded = np.pad(IMAGE, 1)
    by_hand = np.array([[(padded[i:i + 3, j:j + 3] * KERNEL).sum() for j in range(5)] for i in range(5)])
    np.testing.assert_array_equal(by_hand, [[0, 1, 1, 1, 1], [2, 4, 2, 3, 1], [0, 2, 2, 2, 1],
                                            [3, 5, 3, 2, 0], [1, 1, 0, 0, 0]])
    engine = F.conv2d(mk.tensor(IMAGE[None, None]), mk.tensor(KERNEL[None, None]), padding=1).numpy()[0, 0]
    np.testing.assert_array_equal(engine, by_hand)


def test_conv_output_size_refuses_what_the_formula_does_not_give():
    assert conv_output_size(28, 2, 0, 2) == 14 and conv_output_size(7, 3, 0, 2) == 3
    with pytest.raises(ValueError, match="not a whole number"):
        conv_output_size(6, 3, 0, 2)
    with pytest.raises(ValueError, match="larger than the padded input"):
        conv_output_size(2, 5)
    with pytest.raises(ValueError, match="s > 0"):
        conv_output_size(5, 3, s=0)


def test_conv_1_to_32_3x3_on_28x28_under_each_convention():
    layer = nn.Conv2d(1, 32, 3)
    assert layer.num_parameters() == 320 == conv_params(3, 1, 32)
    assert conv_flops(26, 26, 3, 1, 32, "macs") == 26 * 26 * 32 * 9 == 194_688
    assert conv_flops(26, 26, 3, 1, 32, "flops") == 2 * 194_688
    assert conv_flops(26, 26, 3, 1, 32, "lecture") == 2 * 26 * 26 * 32 * (9 + 1) == 432_640
    for convention in ("lecture", "macs", "flops"):
        (row,) = summary(layer, (1, 28, 28), convention).rows
        assert row.macs == 194_688 and row.flops == conv_flops(26, 26, 3, 1, 32, convention)


def test_linear_flops_conventions():
    assert linear_flops(4, 2) == 4 * 2 + 2
    assert linear_flops(4, 2, "macs") == 8 and linear_flops(4, 2, "flops") == 16
    with pytest.raises(ValueError, match="unknown convention 'gflops'"):
        linear_flops(4, 2, "gflops")


def test_teacher_summary_421642_parameters_and_per_layer_formulas():
    s = summary(TeacherModel(), (1, 28, 28))
    assert s.total_params == 421_642 == s.total_nonzero_params
    assert s.total_memory_bytes == 4 * 421_642
    by_name = {r.name: r for r in s.rows}
    assert list(by_name) == ["conv1", "conv2", "fc1", "fc2"]
    assert by_name["conv1"].flops == conv_flops(28, 28, 3, 1, 32) and by_name["conv1"].output_shape == (32, 28, 28)
    assert by_name["conv2"].flops == conv_flops(14, 14, 3, 32, 64) and by_name["conv2"].params == conv_params(3, 32, 64)
    assert by_name["fc1"].flops == linear_flops(3136, 128) and by_name["fc1"].params == linear_params(3136, 128)
    assert by_name["fc2"].flops == linear_flops(128, 10)
    assert s.total_macs == 28 * 28 * 32 * 9 + 14 * 14 * 64 * 288 + 3136 * 128 + 128 * 10


def test_student_is_several_times_smaller_than_the_teacher():
    t, s = summary(TeacherModel(), (1, 28, 28)), summary(StudentModel(), (1, 28, 28))
    # "several times smaller in parameters and FLOPs": 105,866 vs 421,642 parameters, 1.12 M vs 4.24 M MACs
    assert s.total_params == 105_866 and s.total_macs == 28 * 28 * 16 * 9 + 14 * 14 * 32 * 144 + 1568 * 64 + 640
    assert t.total_params / s.total_params > 3.5 and t.total_macs / s.total_macs > 3.5


def test_nested_modules_pooling_relu_flatten_rows_and_tables():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(2), nn.ReLU())
            self.head = nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(4 * 4 * 4, 10)))

        def forward(self, x):
            return self.head(self.features(x))

    s = summary(Net(), (1, 8, 8))
    assert [r.name for r in s.rows] == ["features.0", "features.1", "features.2", "head.0", "head.1.0"]
    assert [r.params for r in s.rows] == [40, 0, 0, 0, 650]
    assert [r.macs for r in s.rows][1:4] == [0, 0, 0]
    text, md = str(s), s.to_markdown()
    assert "features.1" in text and "MaxPool2d" in text and "690" in text
    assert md.splitlines()[0].startswith("| layer | type |") and "**690**" in md


def test_nonzero_parameters_count_pruned_weights():
    layer = nn.Linear(4, 3)
    layer.weight.data[:2] = 0
    (row,) = summary(layer, (4,)).rows
    assert row.params == 15 and row.nonzero_params == 15 - 8


def test_hooks_for_quantized_layers_bits_and_new_layer_types():
    class QuantLinear(nn.Linear):
        weight_bits = 8

    (row,) = summary(QuantLinear(10, 10), (10,)).rows
    assert row.bits == 8 and row.memory_bytes == 110  # int8: a quarter of float32's 440 bytes

    class Scale(nn.Module):
        def forward(self, x):
            return x * 2

    register_counter(Scale, lambda layer, inputs, output, convention: (output.size, output.size))
    try:
        (row,) = summary(Scale(), (7,)).rows
        assert row.macs == 7
    finally:
        del COUNTERS[Scale]


def test_summary_leaves_the_model_in_training_mode_and_without_hooks():
    model = toy_2_4_2()
    summary(model, (2,))
    assert model.training
    assert all(not m._forward_hooks for m in model.modules())


def test_measure_latency_reports_median_p90_throughput_and_platform():
    lat = measure_latency(StudentModel(), (1, 28, 28), batch_size=4, warmup=1, repeats=5)
    assert 0 < lat.median_ms <= lat.p90_ms
    assert lat.images_per_s == pytest.approx(4 / (lat.median_ms / 1e3))
    assert lat.platform["device"] == "cpu" and lat.platform["cores"] >= 1 and "numpy" in lat.platform["backend"]
    assert "images/s" in str(lat)


def test_platform_info_names_the_processor_its_family_model_and_avx512_and_the_thread_variables(monkeypatch, tmp_path):
    """What the last bits of a run depend on, read from /proc/cpuinfo's first processor: a virtual
    machine that names only the vendor is told apart by family, model and AVX-512."""
    import numba

    import minikd.profile as profile

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
                       "model name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\n\n"
                       "processor\t: 1\ncpu family\t: 6\nmodel\t\t: 85\nmodel name\t: other\nflags\t\t: fpu\n")
    real_open = open
    monkeypatch.setattr("builtins.open", lambda path, *a, **k: real_open(cpuinfo if path == "/proc/cpuinfo" else path,
                                                                         *a, **k))
    for var in profile.THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    info = profile.platform_info()
    assert (info["processor"], info["cpu_family_model"], info["avx512f"]) == ("AMD EPYC", "25/17", True)
    assert info["numba"] == numba.__version__ and info["numba_threads"] == numba.config.NUMBA_NUM_THREADS
    assert info["thread_variables"] == {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "1",
                                        "MKL_NUM_THREADS": "not set", "NUMBA_NUM_THREADS": "not set"}
    cpuinfo.write_text("model name\t: Some CPU\nflags\t\t: fpu avx2\n")      # no family or model given
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    info = profile.platform_info()
    assert (info["processor"], info["cpu_family_model"], info["avx512f"]) == ("Some CPU", "?/?", False)
    assert info["thread_variables"]["OPENBLAS_NUM_THREADS"] == "not set"
    cpuinfo.unlink()                                                          # no /proc/cpuinfo at all
    info = profile.platform_info()
    assert info["processor"] and info["cpu_family_model"] == "?/?" and info["avx512f"] is False


def test_command_line_prints_teacher_and_student_and_user_models(capsys):
    main([])
    out = capsys.readouterr().out
    assert "TeacherModel" in out and "421,642" in out and "StudentModel" in out
    main(["--model", "tests.test_profile:toy_2_4_2", "--input-shape", "2", "--markdown", "--convention", "macs"])
    out = capsys.readouterr().out
    assert "| **22** |" in out and "FLOPs (macs)" in out


# ------------------------------------------------- issue #11: a shared layer's parameters once, its MACs every call

class Twice(nn.Module):
    """One Linear(30, 30) applied twice: 930 parameters, 2 × 900 MACs."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(30, 30)

    def forward(self, x):
        return self.fc(self.fc(x))


@pytest.mark.parametrize("batch_size", [1, 4])
def test_a_layer_that_runs_twice_counts_its_parameters_once_and_its_macs_on_every_call(batch_size):
    model = Twice()
    s = summary(model, (30,), batch_size=batch_size)
    assert s.total_params == 930 == s.total_nonzero_params == model.num_parameters()  # not 1,860
    assert s.total_memory_bytes == 3_720  # not 7,440
    assert s.total_macs == 1_800 == 2 * 30 * 30  # per example: both calls compute
    assert s.total_flops == 2 * linear_flops(30, 30) == 1_860
    assert [r.params for r in s.rows] == [930, 0] and [r.memory_bytes for r in s.rows] == [3_720, 0]
    assert [r.macs for r in s.rows] == [900, 900]
    assert [(r.name, r.call, r.calls) for r in s.rows] == [("fc", 1, 2), ("fc", 2, 2)]
    assert summary(model, (30,), "flops").total_flops == 3_600


def test_the_table_shows_which_call_a_row_is_and_says_how_it_counts():
    s = summary(Twice(), (30,))
    lines = str(s).splitlines()
    assert lines[2].split() == ["fc", "(call", "1", "of", "2)", "Linear", "(30,)", "930", "930", "32", "3,720", "900",
                                "930"]
    assert lines[3].split() == ["fc", "(call", "2", "of", "2)", "Linear", "(30,)", "0", "0", "32", "0", "900", "930"]
    assert lines[5].split() == ["total", "930", "930", "3,720", "1,800", "1,860"]
    assert "count each parameter once" in lines[6] and "MACs and FLOPs count every call" in lines[6]
    md = s.to_markdown()
    assert "| fc (call 2 of 2) | Linear | (30,) | 0 | 0 | 32 | 0 | 900 | 930 |" in md
    assert "| **total** |  |  | **930** | **930** |  | **3,720** | **1,800** | **1,860** |" in md
    assert "call" not in str(summary(toy_2_4_2(), (2,)))  # a model without shared layers: no notes


def test_a_weight_two_layers_share_is_counted_once():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(30, 30), nn.Linear(30, 30)
            self.b.weight = self.a.weight  # b keeps its own bias

        def forward(self, x):
            return self.b(self.a(x))

    model = Tied()
    s = summary(model, (30,))
    assert s.total_params == 960 == model.num_parameters() and s.total_memory_bytes == 4 * 960
    assert [r.params for r in s.rows] == [930, 30] and [r.shared_params for r in s.rows] == [0, 900]
    assert [r.macs for r in s.rows] == [900, 900]
    assert "b (900 params shared, counted above)" in str(s)


def test_platform_info_names_the_blas_kernels_and_the_cpu_numba_compiles_for(monkeypatch):
    """Two hosts that both say "AMD EPYC" may give OpenBLAS other kernels (and every product other last
    bits): the record names them, as threadpoolctl reads them, and LLVM's name for the processor."""
    import llvmlite.binding as llvm
    import threadpoolctl

    import minikd.profile as profile

    fake = [{"user_api": "blas", "internal_api": "openblas", "version": "0.3.31", "architecture": "Zen",
             "num_threads": 2}, {"user_api": "openmp", "internal_api": "openmp", "num_threads": 2}]
    monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda: fake)
    info = profile.platform_info()
    assert info["blas"] == "openblas 0.3.31, Zen kernels, 2 threads"
    assert info["llvm_cpu"] == llvm.get_host_cpu_name() and info["llvm_cpu"]
    monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda: fake[1:])
    assert profile.platform_info()["blas"] == "none found"

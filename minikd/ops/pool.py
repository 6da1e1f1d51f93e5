"""Max and average pooling over k_h × k_w windows with stride s and padding p.

Pooling has no parameters; it keeps the channels and shrinks the image to

    h_i = ⌊(h_{i−1} − k_h + 2p) / s⌋ + 1          (same for w_i)

The stride defaults to the kernel size (non-overlapping windows), as in PyTorch, and
the padding may be at most half the kernel (p ≤ ⌊k/2⌋), so that every window holds at
least one real pixel.
"""

from __future__ import annotations

from .. import kernels
from ..backend import get_array_module
from ..checks import check_pair
from ..function import Function
from ..kernels import conv_output_size
from .conv import _fmt, check_window

# --------------------------------------------------------------------------- the definitions, naively


def max_pool2d_reference(x, kernel_size, stride=None, padding=0):
    """Max pooling straight from its definition: four loops, one window at a time (slow).

        y[n, c, i, j] = max_{k_i, k_j} x_pad[n, c, i·s + k_i, j·s + k_j]      (padding = −∞)

    A window holding a NaN gives NaN (NumPy's ``max``). :class:`MaxPool2d` below computes
    the same numbers in one pass (minikd/kernels/pool.py); the tests hold the two equal.
    """
    xp = get_array_module(x)
    (kh, kw) = check_pair(kernel_size, "max_pool2d_reference", "kernel_size")
    (sh, sw) = (kh, kw) if stride is None else check_pair(stride, "max_pool2d_reference", "stride")
    (ph, pw) = check_pair(padding, "max_pool2d_reference", "padding")
    N, C, H, W = x.shape
    Ho, Wo = conv_output_size(H, kh, ph, sh, floor=True), conv_output_size(W, kw, pw, sw, floor=True)
    x_pad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-xp.inf)
    y = xp.empty((N, C, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    y[n, c, i, j] = x_pad[n, c, i * sh:i * sh + kh, j * sw:j * sw + kw].max()
    return y


# --------------------------------------------------------------------------- the ops


def _params(op, kernel_size, stride, padding):
    kernel = check_pair(kernel_size, op, "kernel_size")
    stride = kernel if stride is None else check_pair(stride, op, "stride")
    padding = check_pair(padding, op, "padding")
    return dict(kernel=kernel, stride=stride, padding=padding)


def _check(op, x, kernel, stride, padding):
    check_window(op, x.shape, kernel, stride, padding)
    (kh, kw), (ph, pw) = kernel, padding
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(f"{op}: padding ({ph}, {pw}) must be at most half the kernel {kh}×{kw}, "
                         f"i.e. ≤ ({kh // 2}, {kw // 2}) (as in PyTorch); input shape {_fmt(x.shape)}")


class MaxPool2d(Function):
    """y[n, c, i, j] = max_{k_i, k_j} x_pad[n, c, i·s + k_i, j·s + k_j]   (padding = −∞);

    dL/dx[pixel] = Σ of dL/dy over the windows whose maximum that pixel is (the first
    maximum on ties). Forward remembers each window's argmax for the backward.
    """

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

    def forward(self, x, *, kernel, stride, padding):
        _check("max_pool2d", x, kernel, stride, padding)
        self.kernel, self.stride, self.padding = kernel, stride, padding
        y, self.saved = kernels.max_pool_forward(x, kernel, stride, padding)  # saved: each window's argmax
        return y

    def backward(self, gy):
        return kernels.max_pool_backward(gy, self.saved, self.kernel, self.stride, self.padding)


class AvgPool2d(Function):
    """y[n, c, i, j] = (1 / (k_h·k_w)) Σ_{k_i, k_j} x_pad[n, c, i·s + k_i, j·s + k_j]   (padding = 0, counted);

    dL/dx[pixel] = Σ over the windows holding that pixel of dL/dy / (k_h·k_w).
    """

    float_only = True  # refuses integer input (Function.float_only)

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

    def forward(self, x, *, kernel, stride, padding):
        _check("avg_pool2d", x, kernel, stride, padding)
        self.x_shape, self.kernel, self.stride, self.padding = x.shape, kernel, stride, padding
        return kernels.avg_pool_forward(x, kernel, stride, padding)

    def backward(self, gy):
        return kernels.avg_pool_backward(gy, self.x_shape, self.kernel, self.stride, self.padding)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max pooling of ``x`` (N, C, H, W); ``stride`` defaults to ``kernel_size``; ints or (h, w) pairs."""
    return MaxPool2d.apply(x, **_params("max_pool2d", kernel_size, stride, padding))


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Average pooling of ``x`` (N, C, H, W), zero padding counted in the mean (PyTorch's default)."""
    return AvgPool2d.apply(x, **_params("avg_pool2d", kernel_size, stride, padding))

"""Max and average pooling over k_h × k_w windows with stride s and padding p.

Pooling has no parameters; it keeps the channels and shrinks the image to

    h_i = ⌊(h_{i−1} − k_h + 2p) / s⌋ + 1          (same for w_i)

The stride defaults to the kernel size (non-overlapping windows), as in PyTorch, and
the padding may be at most half the kernel (p ≤ ⌊k/2⌋), so that every window holds at
least one real pixel.
"""

from __future__ import annotations

from .. import kernels
from ..function import Function
from ..kernels import as_pair
from .conv import _fmt, check_window


def _params(op, kernel_size, stride, padding):
    kernel = as_pair(kernel_size, op, "kernel_size")
    stride = kernel if stride is None else as_pair(stride, op, "stride")
    padding = as_pair(padding, op, "padding")
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
        self.x_shape, self.kernel, self.stride, self.padding = x.shape, kernel, stride, padding
        y, self.argmax = kernels.max_pool_forward(x, kernel, stride, padding)
        self.x = x  # for its memory layout only (the graph keeps x alive anyway)
        return y

    def backward(self, gy):
        # dL/dx in x's layout: after a convolution (channel-major output) the conv's
        # backward then reads it without a transposing copy
        return kernels.max_pool_backward(gy, self.argmax, self.x_shape, self.kernel, self.stride, self.padding,
                                         like=self.x)


class AvgPool2d(Function):
    """y[n, c, i, j] = (1 / (k_h·k_w)) Σ_{k_i, k_j} x_pad[n, c, i·s + k_i, j·s + k_j]   (padding = 0, counted);

    dL/dx[pixel] = Σ over the windows holding that pixel of dL/dy / (k_h·k_w).
    """

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

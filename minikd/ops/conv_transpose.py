"""Transposed 2-D convolution: the adjoint of :mod:`minikd.ops.conv`, the upsampling layer of a generator.

A convolution maps a big map to a small one; its transpose maps small to big. Each input
pixel x[n, c, i, j] *scatters* a copy of its kernel W[c] (d, k_h, k_w), scaled by its value,
onto the output at rows i·s − p … i·s − p + k_h − 1 (columns alike); overlapping copies add up.
Input (N, d_prev, H, W) → output (N, d, H_out, W_out) with

    H_out = (H − 1)·s − 2p + k_h + output_padding           (W_out alike)

the size conv2d maps back to H (``output_padding`` < s picks which of the s input sizes
that a stride-s convolution maps to the same H is meant). Weight shape (d_prev, d, k_h, k_w),
PyTorch's order: the convolution it is the transpose of has d_prev filters over d channels.
No groups and no dilation here. k_h·k_w·d_prev·d + d parameters (as the convolution's), and
k_h·k_w·d_prev·d multiply-accumulates per INPUT pixel (each scatters one k_h×k_w×d block).
"""

from __future__ import annotations

from .. import kernels
from ..backend import get_array_module
from ..checks import check_pair, check_same_dtype
from ..function import Function
from .conv import _fmt

# --------------------------------------------------------------------------- the definition, naively


def conv_transpose2d_reference(x, w, b=None, stride=1, padding=0, output_padding=0):
    """The transposed convolution straight from its definition: every input pixel scatters its
    kernel into the output, one pixel at a time (slow)::

        y_full[n, o, i·s + k_i, j·s + k_j] += x[n, c, i, j] · w[c, o, k_i, k_j]
        y = y_full[:, :, p : p + H_out, p : p + W_out] + b[o]

    ``y_full`` is the output before the padding p is cut off each side (p is the padding of the
    convolution this is the transpose of). ``x``: (N, d_prev, H, W), ``w``: (d_prev, d, k_h, k_w),
    ``b``: (d,) or None; ``stride``, ``padding`` and ``output_padding`` are ints or (h, w) pairs.
    :class:`ConvTranspose2d` below computes the same numbers as one matrix product and col2im;
    the tests hold the two equal.
    """
    xp = get_array_module(x)
    op = "conv_transpose2d_reference"
    (sh, sw), (ph, pw) = check_pair(stride, op, "stride"), check_pair(padding, op, "padding")
    oh, ow = check_pair(output_padding, op, "output_padding")
    N, C, H, W = x.shape
    _, d, kh, kw = w.shape
    Ho, Wo = (H - 1) * sh - 2 * ph + kh + oh, (W - 1) * sw - 2 * pw + kw + ow
    y_full = xp.zeros((N, d, Ho + 2 * ph, Wo + 2 * pw), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(H):
                for j in range(W):
                    y_full[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += x[n, c, i, j] * w[c]
    y = y_full[:, :, ph:ph + Ho, pw:pw + Wo]
    return y + b[None, :, None, None] if b is not None else y


# --------------------------------------------------------------------------- the op: one matrix product + col2im


def conv_transpose_output_size(h: int, k: int, p: int = 0, s: int = 1, output_padding: int = 0) -> int:
    """H_out = (H − 1)·s − 2p + k + output_padding: the output height (or width) of a transposed conv.

    >>> conv_transpose_output_size(7, 4, p=1, s=2)      # a generator's 7×7 → 14×14
    14
    >>> conv_transpose_output_size(14, 3, p=1, s=2, output_padding=1)
    28
    """
    return (h - 1) * s - 2 * p + k + output_padding


class ConvTranspose2d(Function):
    """y = conv_transpose(x, W) + b: the adjoint (transpose) of conv2d with the same W.

    Shapes: x (N, d_prev, H, W), W (d_prev, d, k_h, k_w), b (d,), y (N, d, H_out, W_out).

    conv2d(z, W) of a map z (N, d, H_out, W_out) is Y = W_mat · im2col(z), with
    W_mat = W as (d_prev, d·k_h·k_w); this op applies the transpose of that linear map::

        X    = x as (d_prev, N·H·W)                     one column per input pixel
        cols = W_matᵀ · X          (d·k_h·k_w, N·H·W)   each pixel's scaled copy of the kernel
        y    = col2im(cols) + b    (N, d, H_out, W_out) the copies added onto the output

    col2im sums overlapping copies and drops the ones that fall on the padding. Backward, from
    dL/dy: its im2col is the matrix every product above needs::

        G         = im2col(dL/dy)      (d·k_h·k_w, N·H·W)
        dL/dx     = W_mat · G          as (N, d_prev, H, W)
        dL/dW_mat = X · Gᵀ             (d_prev, d·k_h·k_w)
        dL/db     = Σ_{n, i, j} dL/dy[n, :, i, j]

    (the forward and backward of conv2d, swapped: im2col ↔ col2im).
    """

    def forward(self, x, weight, bias=None, *, stride=(1, 1), padding=(0, 0), output_padding=(0, 0)):
        self._check(x, weight, bias, stride, padding, output_padding)
        xp = self.xp
        N, C, H, W = x.shape
        _, d, kh, kw = weight.shape
        Ho = conv_transpose_output_size(H, kh, padding[0], stride[0], output_padding[0])
        Wo = conv_transpose_output_size(W, kw, padding[1], stride[1], output_padding[1])
        self.x_hw, self.kernel, self.stride, self.padding = (H, W), (kh, kw), stride, padding
        self.weight = weight

        x_mat = xp.ascontiguousarray(x.transpose(1, 0, 2, 3)).reshape(C, N * H * W)  # X
        w_mat = weight.reshape(C, d * kh * kw)
        cols = w_mat.T @ x_mat                                    # (d·kh·kw, N·H·W)
        y = kernels.col2im(cols, (N, d, Ho, Wo), self.kernel, stride, padding)
        if bias is not None:
            y += bias[None, :, None, None]
        self.x_mat = x_mat if self.needs_input_grad[1] else None  # dL/dW needs X
        return y

    def backward(self, gy):
        weight = self.weight
        C, d, kh, kw = weight.shape
        N = gy.shape[0]
        needs = self.needs_input_grad
        gcols = kernels.im2col(gy, self.kernel, self.stride, self.padding)  # G: (d·kh·kw, N·H·W)
        gx = gw = gb = None
        if needs[0]:
            H, W = self.x_hw
            gx = (weight.reshape(C, d * kh * kw) @ gcols).reshape(C, N, H, W).transpose(1, 0, 2, 3)
        if needs[1]:
            gw = (self.x_mat @ gcols.T).reshape(weight.shape)
        if needs[2]:
            gb = gy.sum(axis=(0, 2, 3))
        return gx, gw, gb

    def _check(self, x, weight, bias, stride, padding, output_padding):
        op = "conv_transpose2d"
        if x.ndim != 4:
            raise ValueError(f"{op}: expected a 4-D input (N, d_prev, H, W); got shape {_fmt(x.shape)}")
        if weight.ndim != 4:
            raise ValueError(f"{op}: expected a 4-D weight (d_prev, d, k_h, k_w); got shape {_fmt(weight.shape)}")
        C, d, kh, kw = weight.shape
        if x.shape[1] != C:
            raise ValueError(f"{op}: weight {_fmt(weight.shape)} expects input with {C} channels "
                             f"(N, {C}, H, W); got {_fmt(x.shape)}")
        if bias is not None and tuple(bias.shape) != (d,):
            raise ValueError(f"{op}: bias of shape {_fmt(bias.shape)} does not match weight "
                             f"{_fmt(weight.shape)}: expected ({d},), one per output channel")
        check_same_dtype(op, x, weight=weight, bias=bias)
        if kh <= 0 or kw <= 0:
            raise ValueError(f"{op}: kernel size must be positive; got {kh}×{kw}")
        for s, o, axis in zip(stride, output_padding, ("height", "width")):
            if s <= 0:
                raise ValueError(f"{op}: stride must be positive; got {tuple(stride)}")
            if not 0 <= o < s:
                raise ValueError(f"{op}: output_padding must be ≥ 0 and smaller than the stride (PyTorch's rule); "
                                 f"got output_padding {o} with stride {s} along the {axis}")
        if padding[0] < 0 or padding[1] < 0:
            raise ValueError(f"{op}: padding must be ≥ 0; got {tuple(padding)}")
        H, W = x.shape[2:]
        Ho = conv_transpose_output_size(H, kh, padding[0], stride[0], output_padding[0])
        Wo = conv_transpose_output_size(W, kw, padding[1], stride[1], output_padding[1])
        if Ho <= 0 or Wo <= 0 or H == 0 or W == 0:
            raise ValueError(f"{op}: the output would be empty: H_out = (H − 1)·s − 2p + k + output_padding = "
                             f"{Ho}×{Wo} for input {_fmt(x.shape)}, kernel {kh}×{kw}, stride {tuple(stride)}, "
                             f"padding {tuple(padding)}, output_padding {tuple(output_padding)}")


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    """Transposed 2-D convolution of ``x`` (N, d_prev, H, W) with ``weight`` (d_prev, d, k_h, k_w)
    plus ``bias`` (d,): the adjoint of :func:`~minikd.ops.conv.conv2d` with the same weight.

    Output (N, d, H_out, W_out), H_out = (H − 1)·s − 2p + k_h + output_padding (W_out alike).
    ``stride``, ``padding``, ``output_padding``: ints or (h, w) pairs, with 0 ≤ output_padding < s.
    PyTorch's argument order and weight shape; no groups, no dilation. ValueError for a wrong
    shape or argument (naming the op, what it got and what it expected), TypeError for mixed dtypes.

    >>> import minikd as mk, numpy as np
    >>> conv_transpose2d(mk.ones(1, 1, 2, 2), mk.ones(1, 1, 2, 2), stride=2).numpy()[0, 0]
    array([[1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.]], dtype=float32)
    """
    op = "conv_transpose2d"
    params = dict(stride=check_pair(stride, op, "stride", low=1), padding=check_pair(padding, op, "padding", low=0),
                  output_padding=check_pair(output_padding, op, "output_padding", low=0))
    return ConvTranspose2d.apply(x, weight, bias, **params)

"""2-D convolution as im2col + one matrix product.

A convolutional layer with d filters of size k_h × k_w over d_prev input channels maps
``x`` (N, d_prev, h_{i−1}, w_{i−1}) to ``y`` (N, d, h_i, w_i) with

    h_i = ⌊(h_{i−1} − k_h + 2p) / s⌋ + 1          (same for w_i)

and has (k_h·k_w·d_prev/groups + 1)·d parameters. Like every deep-learning library it
computes the *cross-correlation* (the kernel is not flipped).
"""

from __future__ import annotations

from .. import kernels
from ..backend import get_array_module
from ..checks import check_pair, check_same_dtype
from ..function import Function
from ..kernels import conv_output_size

# --------------------------------------------------------------------------- the definition, naively


def conv2d_reference(x, w, b=None, stride=1, padding=0):
    """The convolution straight from its definition: four loops, one window at a time (slow).

    Cross-correlation (the kernel is not flipped), as in every deep-learning library::

        y[n, o, i, j] = b[o] + Σ_c Σ_{k_i} Σ_{k_j} w[o, c, k_i, k_j] · x_pad[n, c, i·s + k_i, j·s + k_j]

    ``x``: (N, d_prev, H, W), ``w``: (d, d_prev, k_h, k_w), ``b``: (d,) or None; ``stride``
    and ``padding`` are ints or (h, w) pairs. No groups. :class:`Conv2d` below computes the
    same numbers as one matrix product (im2col); the tests hold the two equal.
    """
    xp = get_array_module(x)
    (sh, sw), (ph, pw) = check_pair(stride, "conv2d_reference", "stride"), check_pair(padding, "conv2d_reference",
                                                                                        "padding")
    N, _, H, W = x.shape
    d, _, kh, kw = w.shape
    Ho, Wo = conv_output_size(H, kh, ph, sh, floor=True), conv_output_size(W, kw, pw, sw, floor=True)
    x_pad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = xp.zeros((N, d, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for o in range(d):
            for i in range(Ho):
                for j in range(Wo):
                    window = x_pad[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    y[n, o, i, j] = (window * w[o]).sum() + (b[o] if b is not None else 0)
    return y


# --------------------------------------------------------------------------- the op: im2col + one matrix product


def _fmt(shape):
    return str(tuple(int(v) for v in shape))  # (3,) not (np.int64(3),)


def check_window(op, x_shape, kernel, stride, padding):
    """Raise a clear ValueError unless the k_h × k_w window fits the padded input."""
    if len(x_shape) != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W); got shape {_fmt(x_shape)}")
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    if kh <= 0 or kw <= 0:
        raise ValueError(f"{op}: kernel size must be positive; got {kh}×{kw}")
    if sh <= 0 or sw <= 0:
        raise ValueError(f"{op}: stride must be positive; got ({sh}, {sw})")
    if ph < 0 or pw < 0:
        raise ValueError(f"{op}: padding must be ≥ 0; got ({ph}, {pw})")
    H, W = x_shape[2] + 2 * ph, x_shape[3] + 2 * pw
    if kh > H or kw > W:
        pad = ph if ph == pw else (ph, pw)
        raise ValueError(f"{op}: kernel {kh}×{kw} does not fit the padded input {H}×{W} (padding {pad}); "
                         f"input shape {_fmt(x_shape)}: the padded input is smaller than the kernel")


class Conv2d(Function):
    """y = conv(x, W) + b, computed as ONE matrix product for the whole batch.

    Shapes: x (N, d_prev, H, W), W (d, d_prev/g, k_h, k_w), b (d,), y (N, d, h_i, w_i),
    with g groups (each group of d/g filters sees its own d_prev/g input channels).

    Forward, per group (g = 1: one group)::

        cols = im2col(x)                   (d_prev·k_h·k_w,  N·h_i·w_i)   one column per window
        Y    = W_mat · cols + b            (d,  N·h_i·w_i)               W_mat = W as (d, d_prev·k_h·k_w)
        y    = Y as (d, N, h_i, w_i), seen as (N, d, h_i, w_i)           a view, no copy

    The batch is folded into the columns of the product, so N window matrices cost one
    BLAS call, not N. ``y`` keeps Y's memory (channel-major, each plane y[n, o] one
    contiguous block): NumPy ops and the pooling kernels read such views directly.

    Backward, from G = dL/dY (dL/dy as (d, N·h_i·w_i); free when dL/dy has y's layout)::

        dL/dW_mat = G · colsᵀ              (d, d_prev·k_h·k_w)
        dL/dx     = col2im(W_matᵀ · G)     overlapping windows add up
        dL/db     = Σ_{n, i, j} dL/dy[n, :, i, j]
    """

    def forward(self, x, weight, bias=None, *, stride=(1, 1), padding=(0, 0), groups=1):
        self._check(x, weight, bias, stride, padding, groups)
        xp = self.xp
        N, C, H, W = x.shape
        d, cg, kh, kw = weight.shape
        kernel = (kh, kw)
        Ho = conv_output_size(H, kh, padding[0], stride[0], floor=True)
        Wo = conv_output_size(W, kw, padding[1], stride[1], floor=True)
        self.x_shape, self.kernel, self.stride, self.padding, self.groups = x.shape, kernel, stride, padding, groups
        self.weight = weight

        cols = kernels.im2col(x, kernel, stride, padding)  # (C·kh·kw, N·Ho·Wo), contiguous
        w_mat = weight.reshape(d, cg * kh * kw)           # a view: weight is (d, cg, kh, kw)
        if groups == 1:
            y = w_mat @ cols
        else:
            # group g: filters [g·dg, (g+1)·dg) times input channels [g·cg, (g+1)·cg), which
            # are a contiguous block of rows of cols; each product writes its rows of y
            dg, kg = d // groups, cg * kh * kw
            y = xp.empty((d, cols.shape[1]), dtype=cols.dtype)
            for g in range(groups):
                xp.matmul(w_mat[g * dg:(g + 1) * dg], cols[g * kg:(g + 1) * kg], out=y[g * dg:(g + 1) * dg])
        if bias is not None:
            y += bias[:, None]                            # one bias per row (filter), in place
        # keep cols only when dL/dW will need it (they are the biggest buffer of the layer)
        self.cols = cols if self.needs_input_grad[1] else None
        return y.reshape(d, N, Ho, Wo).transpose(1, 0, 2, 3)  # (N, d, Ho, Wo), a view

    def backward(self, gy):
        xp = self.xp
        weight, groups = self.weight, self.groups
        d, cg, kh, kw = weight.shape
        g_mat = gy.transpose(1, 0, 2, 3).reshape(d, -1)   # G: (d, N·Ho·Wo); a copy only if gy is NCHW
        w_mat = weight.reshape(d, cg * kh * kw)
        dg, kg = d // groups, cg * kh * kw
        needs = self.needs_input_grad

        gx = gw = gb = None
        if needs[0]:
            if groups == 1:
                gcols = w_mat.T @ g_mat                   # (C·kh·kw, N·Ho·Wo)
            else:
                gcols = xp.concatenate([w_mat[g * dg:(g + 1) * dg].T @ g_mat[g * dg:(g + 1) * dg]
                                        for g in range(groups)], axis=0)
            gx = kernels.col2im(gcols, self.x_shape, self.kernel, self.stride, self.padding)
        if needs[1]:
            cols = self.cols
            if groups == 1:
                gw_mat = g_mat @ cols.T                   # (d, C·kh·kw); BLAS reads the transpose in place
            else:
                gw_mat = xp.concatenate([g_mat[g * dg:(g + 1) * dg] @ cols[g * kg:(g + 1) * kg].T
                                         for g in range(groups)], axis=0)
            gw = gw_mat.reshape(weight.shape)
        if needs[2]:
            gb = g_mat.sum(axis=1)
        return gx, gw, gb

    @staticmethod
    def _check(x, weight, bias, stride, padding, groups):
        if x.ndim != 4:
            raise ValueError(f"conv2d: expected a 4-D input (N, C, H, W); got shape {_fmt(x.shape)}")
        if weight.ndim != 4:
            raise ValueError(f"conv2d: expected a 4-D weight (d, d_prev/groups, k_h, k_w); "
                             f"got shape {_fmt(weight.shape)}")
        if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
            raise ValueError(f"conv2d: groups must be a positive int; got {groups!r}")
        d, cg = weight.shape[:2]
        if d % groups:
            raise ValueError(f"conv2d: weight {_fmt(weight.shape)} has {d} filters, "
                             f"not divisible by groups={groups}")
        if x.shape[1] != cg * groups:
            c = cg * groups
            by = f" with groups={groups}" if groups > 1 else ""
            raise ValueError(f"conv2d: weight {_fmt(weight.shape)}{by} expects input with {c} channels "
                             f"(N, {c}, H, W); got {_fmt(x.shape)}")
        if bias is not None and tuple(bias.shape) != (d,):
            raise ValueError(f"conv2d: bias of shape {_fmt(bias.shape)} does not match weight "
                             f"{_fmt(weight.shape)}: expected ({d},), one per filter")
        check_same_dtype("conv2d", x, weight=weight, bias=bias)
        check_window("conv2d", x.shape, weight.shape[2:], stride, padding)


def conv2d(x, weight, bias=None, stride=1, padding=0, groups=1):
    """2-D convolution (cross-correlation) of ``x`` (N, d_prev, H, W) with ``weight``
    (d, d_prev/groups, k_h, k_w) plus ``bias`` (d,); ``stride`` and ``padding`` are ints
    or (h, w) pairs; zero padding. Output (N, d, h_i, w_i), h_i = ⌊(h_{i−1} − k_h + 2p)/s⌋ + 1.
    """
    params = dict(stride=check_pair(stride, "conv2d", "stride"), padding=check_pair(padding, "conv2d", "padding"),
                  groups=groups)
    return Conv2d.apply(x, weight, bias, **params)

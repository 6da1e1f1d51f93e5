"""Feature-based knowledge distillation (FKD), in the lecture's symbols.

1. Pass a batch through both networks and take the features of one layer:
   F_T = TeacherNetwork(x) ∈ R^{C_T × H_T × W_T},  F_S = StudentNetwork(x) ∈ R^{C_S × H_S × W_S}
   (or vectors ∈ R^{C_T}, R^{C_S}, e.g. the penultimate layers of ``minikd.models``: 128 and 64).
2. Align the dimensions with a learnable transformation g(·), the *adapter*:
   a 1×1 convolution (:class:`ConvAdapter`), a fully connected layer (:class:`LinearAdapter`),
   or a bilinear interpolation (:class:`InterpolateAdapter`);  F'_S = g(F_S).
3. The feature loss  L_Feature = ‖F_T − F'_S‖²  (here the mean over all elements).
4. The total loss    L_Total = λ · L_Feature + (1 − λ) · L_CE.

The adapter is trained with the student (put its parameters in the student's optimizer);
the teacher's features are constants.
"""

from __future__ import annotations

from .. import functional as F
from .. import nn
from ..checks import check_bool, is_int
from ..ops.loss import l1_loss, mse_loss
from ..ops.resize import _size_pair
from .logits import as_tensor, check_weight, constant, hard_loss

KINDS = ("mse", "l1")


# --------------------------------------------------------------------------- adapters g(·)


class LinearAdapter(nn.Linear):
    """g(F_S) = F_S Wᵀ + b: a fully connected layer from C_S to C_T features.

    For feature vectors (N, C_S) → (N, C_T); (C_S + 1) · C_T parameters.
    """


class ConvAdapter(nn.Module):
    """g(F_S) = resize(conv1×1(F_S)): a 1×1 convolution from C_S to C_T channels, then, when
    ``size`` = (H_T, W_T) is given, a bilinear resize of the map to the teacher's height and width.

    (N, C_S, H_S, W_S) → (N, C_T, H_T, W_T); (C_S + 1) · C_T parameters. (A 1×1 convolution mixes
    channels pixel by pixel and bilinear weights sum to 1, so the two steps commute.)
    """

    def __init__(self, in_channels: int, out_channels: int, size=None, align_corners: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)
        self.size = None if size is None else _size_pair(size)
        self.align_corners = check_bool(align_corners, type(self).__name__, "align_corners")

    def forward(self, x):
        y = self.conv(x)
        if self.size is not None and tuple(y.shape[2:]) != self.size:
            y = F.interpolate(y, self.size, align_corners=self.align_corners)
        return y

    def extra_repr(self):
        return "" if self.size is None else f"size={self.size}"


class InterpolateAdapter(nn.Module):
    """g(F_S) = bilinear resize of F_S (N, C, H_S, W_S) to (N, C, H_T, W_T); no parameters.

    For maps whose channels already agree (C_S = C_T) but whose resolutions differ.
    """

    def __init__(self, size, align_corners: bool = False):
        super().__init__()
        self.size = _size_pair(size)
        self.align_corners = check_bool(align_corners, type(self).__name__, "align_corners")

    def forward(self, x):
        if x.ndim != 4:
            raise ValueError(f"InterpolateAdapter(size={self.size}) expects feature maps (N, C, H, W); "
                             f"got {tuple(x.shape)}")
        return F.interpolate(x, self.size, align_corners=self.align_corners)

    def extra_repr(self):
        return f"size={self.size}"


def make_adapter(student_shape, teacher_shape):
    """Pick the adapter g(·) that maps student features onto the teacher's, from one sample's
    shapes (no batch axis):

    - equal shapes → ``nn.Identity()`` (nothing to align);
    - vectors (C_S,) → (C_T,) → :class:`LinearAdapter` (C_S → C_T);
    - maps (C_S, H_S, W_S) → (C_T, H_T, W_T) → :class:`ConvAdapter` (1×1 conv C_S → C_T, plus a
      bilinear resize to (H_T, W_T) if the sizes differ); when C_S = C_T, only the resize:
      :class:`InterpolateAdapter`.

    >>> make_adapter((32,), (128,))        # vectors C_S → C_T: a fully connected layer
    LinearAdapter(in_features=32, out_features=128, bias=True)
    >>> make_adapter((8, 14, 14), (32, 28, 28))
    ConvAdapter(
      size=(28, 28)
      (conv): Conv2d(8, 32, kernel_size=(1, 1), stride=(1, 1))
    )
    """
    s, t = _sample_shape(student_shape, "student"), _sample_shape(teacher_shape, "teacher")
    if s == t:
        return nn.Identity()
    if len(s) != len(t):
        raise ValueError(f"make_adapter: cannot map student features of shape {s} onto teacher features of "
                         f"shape {t}: both must be vectors (C,) or both maps (C, H, W)")
    if len(s) == 1:
        return LinearAdapter(s[0], t[0])
    if s[0] == t[0]:
        return InterpolateAdapter(t[1:])
    return ConvAdapter(s[0], t[0], size=t[1:] if s[1:] != t[1:] else None)


def _sample_shape(shape, who):
    if not isinstance(shape, (tuple, list)) or not all(is_int(v) for v in shape):   # 8.0 was cut to 8
        raise TypeError(f"make_adapter: the {who} shape must be a tuple of ints; got {shape!r}")
    shape = tuple(int(v) for v in shape)
    if len(shape) not in (1, 3) or min(shape) <= 0:
        raise ValueError(f"make_adapter: the {who} shape must be one sample's feature shape without the batch "
                         f"axis — a vector (C,) or a map (C, H, W) of positive sizes; got {shape}")
    return shape


# --------------------------------------------------------------------------- losses


def feature_loss(student_features, teacher_features, adapter=None, kind="mse"):
    """L_Feature = ‖F_T − g(F_S)‖², as the mean over all elements ("mse"), or the mean
    absolute difference |F_T − g(F_S)| ("l1").

    ``adapter`` is g(·) (any Module or callable; None: the identity). Gradients flow to the
    student features F_S and to the adapter's parameters; the teacher features F_T are
    constants (detached). F_S: (N, …) as the student gives them; F_T and g(F_S): the same shape,
    e.g. (N, C_T, H_T, W_T) or (N, d); a scalar Tensor.

    Raises ValueError for an unknown ``kind``, or when g(F_S) and F_T differ in shape (naming
    both shapes, and suggesting ``make_adapter`` when there is no adapter). Source: the lecture's
    feature-based KD, L_Feature = ‖F_T − F′_S‖² with F′_S = g(F_S) (after FitNets' hints,
    Romero et al., ICLR 2015).

    >>> import minikd as mk
    >>> round(feature_loss(mk.tensor([[1.0, 2.0]]), mk.tensor([[1.0, 4.0]])).item(), 3)   # (0² + 2²) / 2
    2.0
    """
    if kind not in KINDS:
        raise ValueError(f"feature_loss: unknown kind {kind!r}; expected one of {KINDS}")
    f_s = as_tensor(student_features)
    f_t = constant(teacher_features, like=f_s)
    g_s = adapter(f_s) if adapter is not None else f_s
    if tuple(g_s.shape) != tuple(f_t.shape):
        if adapter is None:
            hint = (f"; pass an adapter g(·), e.g. kd.make_adapter({tuple(f_s.shape[1:])}, "
                    f"{tuple(f_t.shape[1:])})")
            raise ValueError(f"feature_loss: student features F_S {tuple(f_s.shape)} and teacher features F_T "
                             f"{tuple(f_t.shape)} differ in shape{hint}")
        raise ValueError(f"feature_loss: the adapted student features g(F_S) have shape {tuple(g_s.shape)} but "
                         f"the teacher features F_T have shape {tuple(f_t.shape)} (student features "
                         f"{tuple(f_s.shape)}, adapter {type(adapter).__name__})")
    return (mse_loss if kind == "mse" else l1_loss)(g_s, f_t)


def feature_kd_loss(student_logits, student_features, teacher_features, target, adapter, lam=0.5, kind="mse",
                    return_parts=False):
    """The lecture's combined loss for feature-based distillation:

        L_Total = λ · L_Feature + (1 − λ) · L_CE

    with L_Feature = ‖F_T − g(F_S)‖² from :func:`feature_loss` (``adapter`` = g, None for the
    identity) and L_CE the cross-entropy of the student's logits with the labels ``target``.
    With ``return_parts=True`` returns ``(total, {"hard": L_CE, "feature": L_Feature, "total": total})``.
    ``student_logits`` (N, C), ``target`` (N,); the features as in :func:`feature_loss`.

    Raises ValueError when λ is outside [0, 1] or the labels do not fit the logits (named
    ``feature_kd_loss``), and what :func:`feature_loss` raises. Source: the lecture's L_Total of
    feature-based distillation.
    """
    lam = check_weight(lam, "feature_kd_loss")
    return_parts = check_bool(return_parts, "feature_kd_loss", "return_parts")
    z_s, f_s = as_tensor(student_logits), as_tensor(student_features)
    if z_s.ndim < 1 or f_s.ndim < 1 or z_s.shape[0] != f_s.shape[0]:
        raise ValueError(f"feature_kd_loss: the student's logits {tuple(z_s.shape)} and features {tuple(f_s.shape)} "
                         "must come from the same batch (the same N first)")
    hard = hard_loss(z_s, target, "feature_kd_loss")
    feat = feature_loss(f_s, teacher_features, adapter, kind)
    total = feat * lam + hard * (1.0 - lam)
    if return_parts:
        return total, {"hard": hard, "feature": feat, "total": total}
    return total

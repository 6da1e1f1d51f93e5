"""The lecture's hands-on models: the teacher CNN exactly as on its slide, and a student.

Teacher (the slide's ``TeacherModel``)::

    conv 1→32 k3 p1 → maxpool 2 → ReLU → conv 32→64 k3 p1 → maxpool 2 → ReLU
    → flatten (64·7·7 = 3136) → fc 3136→128 → ReLU → fc 128→10          421,642 parameters

Student (the lecture leaves it open): the same shape of network, half as wide in its
convolutions and its hidden layer::

    conv 1→16 k3 p1 → maxpool 2 → ReLU → conv 16→32 k3 p1 → maxpool 2 → ReLU
    → flatten (32·7·7 = 1568) → fc 1568→64 → ReLU → fc 64→10           105,866 parameters

4.0× fewer parameters and 3.8× fewer multiply-accumulates than the teacher
(``python -m minikd.profile`` prints both). Why this size: with the lecture's settings it
lands where the lecture's student does (measured over 3 seeds: 98.80 % alone, 98.89 %
distilled from logits, 98.97 % from features; the lecture: 98.91 % and 99.0 %). A 16×
smaller student (conv 8, 16, fc 32: 26,698 parameters) was tried first: 98.58 % alone and
98.74 % distilled, but single seeds fell to 98.45 %, below the 98.6 % the hands-on should reach (docs/results.md).

Both return logits; ``forward(x, return_features=True)`` also returns the penultimate
feature vector (after the hidden FC layer's ReLU) for feature-based distillation.

For data-free distillation (``examples/data_free_kd.py``, docs/data_free.md) there are also:

- ``TeacherModelBN``: the slide's teacher with a BatchNorm2d after each conv — DeepInversion
  needs the running statistics of BatchNorm layers, which the slide's teacher has none of;
- ``LeNet5`` and ``LeNet5Half``: the pair the data-free papers use on MNIST (DAFL, DFAD, ZSKD),
  on 1×32×32 inputs (MNIST padded by 2 pixels of background: :func:`pad_to_32`);
- ``LeNet5BN``: LeNet-5 with a BatchNorm2d after each conv, so that DeepInversion can run on
  the LeNet pair;
- ``ConditionalGenerator`` (scenario 1: z ∈ R¹⁰⁰ and a class label → an image) and
  ``Generator`` (DAFL's MNIST generator: z → an image). Both output N×1×28×28 images in the
  teacher's input space (see :func:`to_teacher_space`).
"""

from __future__ import annotations

import numpy as np

from . import functional as F
from . import nn
from .data.mnist import MEAN, STD
from .kd.data_free import check_class_labels
from .ops import concatenate
from .tensor import Tensor


class _MNISTCNN(nn.Module):
    """conv → pool → ReLU → conv → pool → ReLU → fc → ReLU → fc, on 1×28×28 inputs."""

    def __init__(self, c1: int, c2: int, hidden: int, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, c1, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, kernel_size=3, padding=1)
        self.fc1 = nn.Linear(c2 * 7 * 7, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)
        self.feature_dim = hidden

    def forward(self, x, return_features: bool = False):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        x = x.reshape(x.shape[0], -1)  # the slide's x.view(-1, 64*7*7)
        features = F.relu(self.fc1(x))
        logits = self.fc2(features)
        return (logits, features) if return_features else logits


class TeacherModel(_MNISTCNN):
    """The lecture's teacher: conv 1→32, conv 32→64, fc 3136→128, fc 128→10 (421,642 parameters)."""

    def __init__(self, num_classes: int = 10):
        super().__init__(32, 64, 128, num_classes)


class StudentModel(_MNISTCNN):
    """A student 4× smaller: conv 1→16, conv 16→32, fc 1568→64, fc 64→10 (105,866 parameters)."""

    def __init__(self, num_classes: int = 10):
        super().__init__(16, 32, 64, num_classes)


# --------------------------------------------------------------------------- data-free distillation's models


class TeacherModelBN(nn.Module):
    """The slide's teacher with a BatchNorm2d after each conv (421,834 parameters: the slide's
    421,642 and γ, β for 32 + 64 channels; the running mean and variance are buffers)::

        conv 1→32 k3 p1 → BN(32) → maxpool 2 → ReLU → conv 32→64 k3 p1 → BN(64) → maxpool 2 → ReLU
        → flatten (3136) → fc 3136→128 → ReLU → fc 128→10

    Why it exists: DeepInversion (Yin et al., CVPR 2020) synthesises images whose batch
    statistics at every BatchNorm layer match the layer's running mean and variance — the
    only trace of the training data a trained network keeps in plain sight. The slide's
    teacher has no BatchNorm, so DeepInversion needs this variant (trained by
    ``examples/data_free_kd.py --train-teacher bn``). Same ``forward(x, return_features)``
    as the slide's teacher.
    """

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(64)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, num_classes)
        self.feature_dim = 128

    def forward(self, x, return_features: bool = False):
        x = F.relu(F.max_pool2d(self.bn1(self.conv1(x)), 2))
        x = F.relu(F.max_pool2d(self.bn2(self.conv2(x)), 2))
        x = x.reshape(x.shape[0], -1)
        features = F.relu(self.fc1(x))
        logits = self.fc2(features)
        return (logits, features) if return_features else logits


class _LeNet5(nn.Module):
    """conv k5 → ReLU → maxpool 2 → conv k5 → ReLU → maxpool 2 → conv k5 (to 1×1) → ReLU → fc → ReLU → fc,
    on 1×32×32 inputs (LeCun et al. 1998, with ReLU and max pooling as DAFL's code has it);
    ``batch_norm=True`` puts a BatchNorm2d ``bn1``..``bn3`` between each conv and its ReLU (without it
    they are None: no layer, no weights, no state-dict keys)."""

    def __init__(self, c1: int, c2: int, c3: int, hidden: int, num_classes: int = 10, batch_norm: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(1, c1, kernel_size=5)       # 32 → 28, pool → 14
        self.bn1 = nn.BatchNorm2d(c1) if batch_norm else None
        self.conv2 = nn.Conv2d(c1, c2, kernel_size=5)      # 14 → 10, pool → 5
        self.bn2 = nn.BatchNorm2d(c2) if batch_norm else None
        self.conv3 = nn.Conv2d(c2, c3, kernel_size=5)      # 5 → 1
        self.bn3 = nn.BatchNorm2d(c3) if batch_norm else None
        self.fc1 = nn.Linear(c3, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)
        self.feature_dim = hidden

    def forward(self, x, return_features: bool = False):
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 32, 32):
            raise ValueError(f"{type(self).__name__} expects (N, 1, 32, 32) inputs (MNIST padded by 2 pixels: "
                             f"minikd.models.pad_to_32); got {tuple(x.shape)}")
        x = F.max_pool2d(F.relu(self._conv(self.conv1, self.bn1, x)), 2)
        x = F.max_pool2d(F.relu(self._conv(self.conv2, self.bn2, x)), 2)
        x = F.relu(self._conv(self.conv3, self.bn3, x)).reshape(x.shape[0], -1)
        features = F.relu(self.fc1(x))
        logits = self.fc2(features)
        return (logits, features) if return_features else logits

    @staticmethod
    def _conv(conv, bn, x):
        """conv(x), then the BatchNorm if the network has one."""
        x = conv(x)
        return x if bn is None else bn(x)


class LeNet5(_LeNet5):
    """LeNet-5 as the data-free papers train it on MNIST (DAFL, DFAD, ZSKD): 61,706 parameters::

        conv 1→6 k5 → ReLU → maxpool 2 → conv 6→16 k5 → ReLU → maxpool 2 → conv 16→120 k5
        → ReLU → fc 120→84 → ReLU → fc 84→10                     on 1×32×32 (MNIST padded by 2)

    ``return_features`` gives the 84-d vector after fc 120→84's ReLU (the input of the last
    layer, as for the slide's models; DAFL's code takes the 120-d one before it).
    """

    def __init__(self, num_classes: int = 10):
        super().__init__(6, 16, 120, 84, num_classes)


class LeNet5BN(_LeNet5):
    """LeNet-5 with a BatchNorm2d after each of its three convs (61,990 parameters: LeNet-5's 61,706
    and γ, β for 6 + 16 + 120 channels; the running means and variances are buffers)::

        conv 1→6 k5 → BN(6) → ReLU → maxpool 2 → conv 6→16 k5 → BN(16) → ReLU → maxpool 2
        → conv 16→120 k5 → BN(120) → ReLU → fc 120→84 → ReLU → fc 84→10         on 1×32×32

    Why it exists: DeepInversion (Yin et al., CVPR 2020) needs BatchNorm statistics to match, and
    the data-free papers' LeNet-5 has none; this is the same network with them, as
    :class:`TeacherModelBN` is for the slide's teacher (``examples/data_free_kd.py --train-teacher lenet5bn``).
    """

    def __init__(self, num_classes: int = 10):
        super().__init__(6, 16, 120, 84, num_classes, batch_norm=True)


class LeNet5Half(_LeNet5):
    """LeNet-5-half, the data-free papers' student: every layer half as wide, 15,738 parameters::

        conv 1→3 k5 → ReLU → maxpool 2 → conv 3→8 k5 → ReLU → maxpool 2 → conv 8→60 k5
        → ReLU → fc 60→42 → ReLU → fc 42→10                      on 1×32×32
    """

    def __init__(self, num_classes: int = 10):
        super().__init__(3, 8, 60, 42, num_classes)


def pad_to_32(x):
    """MNIST's 28×28 images, normalised, → 32×32 with 2 pixels of background on every side.

    The background is a black pixel (0) normalised, (0 − 0.1307)/0.3081 ≈ −0.424 — not 0, which
    would be a faint grey. ``x`` a Tensor (differentiable: synthetic images pass through it) or an array.
    """
    background = (0.0 - MEAN) / STD
    if not isinstance(x, Tensor):
        return np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), constant_values=background).astype(x.dtype, copy=False)
    n, c, h, w = x.shape
    xp = x.xp
    rows = Tensor(xp.full((n, c, 2, w), background, dtype=x.dtype))
    x = concatenate([rows, x, rows], axis=2)
    cols = Tensor(xp.full((n, c, h + 4, 2), background, dtype=x.dtype))
    return concatenate([cols, x, cols], axis=3)


def to_teacher_space(t):
    """A generator's tanh output t ∈ [−1, 1] → the teacher's input space, normalised MNIST:
    the pixel p = (t + 1)/2 ∈ [0, 1] (what ``ToTensor`` gives), then (p − 0.1307)/0.3081.

    So −1 is black (≈ −0.424 after normalising) and +1 white (≈ 2.821), exactly the range of
    real normalised MNIST images: synthetic images cannot leave it.
    """
    return ((t + 1.0) * 0.5 - MEAN) * (1.0 / STD)


class ConditionalGenerator(nn.Module):
    """Scenario 1's G(z, y): z ∈ R^z_dim and a class y ∈ 0..9 → a 1×28×28 image in the teacher's
    input space (normalised MNIST, :func:`to_teacher_space`). DCGAN-like (Radford et al. 2016),
    the label entering through an embedding (as in conditional GANs, Mirza & Osindero 2014)::

        [z, Embedding(10, 50)(y)] (150) → fc 150→6272 → reshape 128×7×7 → BN → ReLU
        → ConvTranspose2d 128→64 k4 s2 p1 (14×14) → BN → ReLU
        → ConvTranspose2d 64→1 k4 s2 p1 (28×28) → tanh → to_teacher_space

    1,080,117 parameters with z_dim = 100. ``forward(z, y)``: z (N, z_dim) float, y (N,) int.
    ``examples/train_conditional_generator.py`` trains it as a conditional GAN on MNIST.
    """

    def __init__(self, z_dim: int = 100, num_classes: int = 10, embed_dim: int = 50):
        super().__init__()
        self.z_dim, self.num_classes = z_dim, num_classes
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.fc = nn.Linear(z_dim + embed_dim, 128 * 7 * 7)
        self.bn0 = nn.BatchNorm2d(128)
        self.up1 = nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(64)
        self.up2 = nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1)

    def forward(self, z, y):
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"ConditionalGenerator(z_dim={self.z_dim}) expects z of shape (N, {self.z_dim}); "
                             f"got {tuple(z.shape)}")
        if tuple(y.shape) != (z.shape[0],):
            raise ValueError(f"ConditionalGenerator expects one label per z, y of shape ({z.shape[0]},); "
                             f"got {tuple(y.shape)}")
        check_class_labels(y, self.num_classes)     # integers in 0..9: the error names the first bad one
        h = self.fc(concatenate([z, self.embed(y)], axis=1)).reshape(z.shape[0], 128, 7, 7)
        h = F.relu(self.bn0(h))
        h = F.relu(self.bn1(self.up1(h)))
        return to_teacher_space(F.tanh(self.up2(h)))


class Generator(nn.Module):
    """DAFL's MNIST generator (Chen et al., ICCV 2019, their code's ``Generator``), 28×28 here::

        z (100) → fc 100→128·7·7 → reshape 128×7×7 → BN → upsample ×2 (14×14)
        → conv 128→128 k3 p1 → BN → LeakyReLU 0.2 → upsample ×2 (28×28)
        → conv 128→64 k3 p1 → BN → LeakyReLU 0.2 → conv 64→1 k3 p1 → tanh → to_teacher_space

    ``width`` scales the channels (128 = DAFL's; 64 costs a quarter of the multiply-adds, for a
    CPU). 856,065 parameters at width 128, 372,737 at width 64. Two changes from DAFL's code:
    its BatchNorms have ε = 0.8 (a slip: ``BatchNorm2d(128, 0.8)`` sets ε, not the momentum),
    here the default 1e-5; and its last layer, a BatchNorm without γ, β after the tanh, is
    replaced by the fixed :func:`to_teacher_space`, so every image stays in MNIST's range.
    """

    def __init__(self, z_dim: int = 100, width: int = 128):
        super().__init__()
        self.z_dim, self.width = z_dim, width
        self.fc = nn.Linear(z_dim, width * 7 * 7)
        self.bn0 = nn.BatchNorm2d(width)
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width // 2, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.conv3 = nn.Conv2d(width // 2, 1, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, z):
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"Generator(z_dim={self.z_dim}) expects z of shape (N, {self.z_dim}); "
                             f"got {tuple(z.shape)}")
        h = self.bn0(self.fc(z).reshape(z.shape[0], self.width, 7, 7))
        h = F.leaky_relu(self.bn1(self.conv1(self.up(h))), 0.2)
        h = F.leaky_relu(self.bn2(self.conv2(self.up(h))), 0.2)
        return to_teacher_space(F.tanh(self.conv3(h)))

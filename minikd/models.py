"""The lecture's hands-on models: the teacher CNN exactly as on its slide, and a student.

Teacher (the slide's ``TeacherModel``)::

    conv 1→32 k3 p1 → maxpool 2 → ReLU → conv 32→64 k3 p1 → maxpool 2 → ReLU
    → flatten (64·7·7 = 3136) → fc 3136→128 → ReLU → fc 128→10          421,642 parameters

Student (the lecture leaves it open): the same shape of network, four times narrower in
its convolutions and its hidden layer::

    conv 1→8 k3 p1 → maxpool 2 → ReLU → conv 8→16 k3 p1 → maxpool 2 → ReLU
    → flatten (16·7·7 = 784) → fc 784→32 → ReLU → fc 32→10               26,698 parameters

≈ 16× fewer parameters and ≈ 14× fewer multiply-accumulates than the teacher
(``python -m minikd.profile`` prints both), small enough that the teacher's soft labels
have something to teach, large enough to pass 98.5 % on MNIST alone.

Both return logits; ``forward(x, return_features=True)`` also returns the penultimate
feature vector (after the hidden FC layer's ReLU) for feature-based distillation.
"""

from __future__ import annotations

from . import functional as F
from . import nn


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
    """A student ≈ 16× smaller: conv 1→8, conv 8→16, fc 784→32, fc 32→10 (26,698 parameters)."""

    def __init__(self, num_classes: int = 10):
        super().__init__(8, 16, 32, num_classes)

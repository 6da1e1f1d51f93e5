"""Layers and the Module that holds them: ``from minikd import nn``.

    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    model.parameters(); model.state_dict(); model.eval(); model.to("cuda")

``nn.init`` holds the weight initialisers, ``nn.utils`` what acts on weights outside the loss
(``max_norm_``), ``nn.functional`` is ``minikd.functional``.
"""

from .. import functional
from . import init, utils
from .layers import (
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    Dropout,
    Embedding,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
    Upsample,
)
from .module import Module, Parameter, RemovableHandle

__all__ = [
    "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d", "ConvTranspose2d", "Dropout", "Embedding", "Flatten",
    "Identity", "LeakyReLU", "Linear", "MaxPool2d", "Module", "Parameter", "ReLU", "RemovableHandle", "Sequential",
    "Sigmoid", "Tanh", "Upsample", "functional", "init", "utils",
]

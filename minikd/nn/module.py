"""``Module`` and ``Parameter``: how a network keeps track of its weights.

A network is a tree of Modules. Assigning a :class:`Parameter`, another Module or
(through :meth:`Module.register_buffer`) a buffer to an attribute *registers* it, so

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(784, 128)     # a sub-module: its weights become fc1.weight, fc1.bias
            self.fc2 = nn.Linear(128, 10)
        def forward(self, x):
            return self.fc2(F.relu(self.fc1(x)))

finds every weight in ``net.parameters()`` (for the optimizer), names them in
``net.state_dict()`` (for checkpoints), moves them with ``net.to("cuda")`` and switches
every layer between training and evaluation behaviour with ``net.train()``/``net.eval()``.
"""

from __future__ import annotations

import itertools
import os
from collections import OrderedDict, namedtuple
from collections.abc import Mapping

import numpy as np

from .. import backend
from ..checks import check_bool
from ..tensor import Tensor
from .state import conversion_problem, to_numpy


class Parameter(Tensor):
    """A Tensor that is a learnable weight of a Module: it requires a gradient by default,
    and assigning it to a Module attribute registers it."""

    def __init__(self, data, requires_grad: bool = True):
        super().__init__(_on_default_device(data), requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


def _on_default_device(data):
    """Host data of a new parameter or buffer goes to the default device (``MINIKD_DEVICE``)."""
    if isinstance(data, Tensor):
        data = data.data
    if backend.default_device() != "cpu" and backend.get_array_module(data) is np:
        return backend.to_device(np.asarray(data), backend.default_device())
    return data


class RemovableHandle:
    """What ``register_forward_hook`` returns: ``handle.remove()`` unregisters the hook."""

    _ids = itertools.count()

    def __init__(self, hooks: OrderedDict):
        self._hooks = hooks
        self.id = next(RemovableHandle._ids)

    def remove(self):
        self._hooks.pop(self.id, None)


# what ``load_state_dict`` returns (as in PyTorch): the keys that were not matched
IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class of every layer and network. Subclasses call ``super().__init__()`` first,
    assign their Parameters / sub-Modules as attributes, and define ``forward``."""

    def __init__(self):
        # object.__setattr__: our own __setattr__ needs these dictionaries to exist
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {name!r} before Module.__init__() ran: call super().__init__() "
                                 f"first in {type(self).__name__}.__init__")
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, Parameter):
            self._forget(name)
            params[name] = value
        elif isinstance(value, Module):
            self._forget(name)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} to parameter {name!r} of "
                                f"{type(self).__name__}: use nn.Parameter(...) (or None)")
            params[name] = None
        elif name in buffers:
            buffers[name] = _as_buffer(value)
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} to sub-module {name!r} of "
                                f"{type(self).__name__}: use a Module (or None)")
            modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # only called when normal lookup fails: the registered things live in the dictionaries
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        if not self._forget(name):
            object.__delattr__(self, name)

    def _forget(self, name) -> bool:
        """Remove ``name`` from every registry (and the plain attributes); True if it was registered."""
        found = False
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                found = True
        self.__dict__.pop(name, None)
        return found

    def register_buffer(self, name: str, tensor) -> None:
        """Register state that is saved and moved with the module but not learned
        (BatchNorm's running statistics). ``tensor``: a Tensor, an array or None."""
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"buffer name must be a non-empty string without dots; got {name!r}")
        if name in self._parameters or name in self._modules:
            raise ValueError(f"{type(self).__name__} already has a parameter or sub-module named {name!r}")
        self.__dict__.pop(name, None)
        self._buffers[name] = _as_buffer(tensor)

    def masked(self, name: str):
        """Pruning's hook: the parameter ``name`` with its mask applied, W ⊙ mask, if pruning
        registered a buffer ``<name>_mask`` (``minikd.prune``), else unchanged. Layers ask for
        their weight and bias through it in ``forward``. It means only this: quantized layers
        call ``fake_quantize`` on ``masked("weight")`` in their own forward
        (``minikd.quant.modules``). The mask is part of the graph, so the gradient of a pruned
        weight is exactly 0. (A select, not a product: a pruned weight is 0 even if it holds
        ±inf or NaN, where inf · 0 = NaN.)"""
        param = getattr(self, name)
        mask = self._buffers.get(name + "_mask")
        if mask is None or param is None:
            return param
        from ..ops.elementwise import where

        return where(mask.data != 0, param, 0.0)

    def register_parameter(self, name: str, param) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter({name!r}): expected a Parameter or None; got {type(param).__name__}")
        self._forget(name)
        self._parameters[name] = param

    def add_module(self, name: str, module) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module({name!r}): expected a Module; got {type(module).__name__}")
        self._forget(name)
        self._modules[name] = module

    # ------------------------------------------------------------------ traversal
    def named_modules(self, prefix: str = ""):
        """(dotted name, module) for this module ("") and every module below it, each once."""
        seen = set()
        stack = [(prefix, self)]
        while stack:  # depth first, children in registration order
            name, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield name, m
            children = [(f"{name}.{n}" if name else n, c) for n, c in m._modules.items() if c is not None]
            stack.extend(reversed(children))

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, store: str, recurse: bool):
        seen = set()  # a tensor shared by two layers is listed once
        modules = self.named_modules() if recurse else [("", self)]
        for prefix, m in modules:
            for name, t in getattr(m, store).items():
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                yield (f"{prefix}.{name}" if prefix else name), t

    def named_parameters(self, recurse: bool = True):
        """(dotted name, Parameter) pairs, e.g. ``("conv1.weight", ...)``."""
        return self._named_members("_parameters", recurse)

    def parameters(self, recurse: bool = True):
        for _, p in self.named_parameters(recurse):
            yield p

    def named_buffers(self, recurse: bool = True):
        return self._named_members("_buffers", recurse)

    def buffers(self, recurse: bool = True):
        for _, b in self.named_buffers(recurse):
            yield b

    def num_parameters(self, trainable_only: bool = False) -> int:
        """How many numbers the model learns: Σ over parameters of their sizes."""
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> OrderedDict:
        """Every parameter and buffer by dotted name, as a NumPy copy (safe to keep or save)."""
        state = OrderedDict()
        for prefix, m in self.named_modules():
            for store in (m._parameters, m._buffers):
                for name, t in store.items():
                    if t is None:
                        continue
                    a = backend.to_numpy(t.data)
                    state[f"{prefix}.{name}" if prefix else name] = a.copy() if a is t.data else a
        return state

    def _state_tensors(self) -> OrderedDict:
        state = OrderedDict()
        for prefix, m in self.named_modules():
            for store in (m._parameters, m._buffers):
                for name, t in store.items():
                    if t is not None:
                        state[f"{prefix}.{name}" if prefix else name] = t
        return state

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy the arrays of ``state_dict`` into this module's parameters and buffers, in place
        (so an optimizer holding the Parameters keeps working). Each keeps its own dtype and
        device: a value is converted only where that loses nothing but rounding (float64 →
        float32, int → float, int64 → int8 when every value fits).

        Raises TypeError when ``state_dict`` is not a mapping. Raises one ValueError that lists
        every problem at once, each with its key: keys the module has but the state lacks
        (missing), keys the module does not have (unexpected) — these two only when ``strict``
        —, arrays whose shape differs from the parameter's, and values that cannot be converted
        to its dtype (a float into an integer weight — 200.7 would become −56 in int8 —, an
        integer out of the weight's range, a string, a complex number, a finite float that
        overflows to ±inf). Nothing is changed then. A buffer a layer lists in
        ``optional_buffers`` (BatchNorm's ``num_batches_tracked``) may be missing: it keeps its value.
        """
        if not isinstance(state_dict, Mapping):
            hint = " (load a file with load_state_dict(mk.load(path)))" if isinstance(state_dict, (str, os.PathLike)) \
                else ""
            raise TypeError(f"load_state_dict expects a mapping name → array; got {type(state_dict).__name__}{hint}")
        strict = check_bool(strict, "load_state_dict", "strict")
        own = self._state_tensors()
        optional = {f"{prefix}.{name}" if prefix else name for prefix, m in self.named_modules()
                    for name in getattr(m, "optional_buffers", ())}
        missing = [k for k in own if k not in state_dict and k not in optional]
        unexpected = [k for k in state_dict if k not in own]
        wrong_shape, wrong_dtype, converted = [], [], {}
        for k, t in own.items():
            if k not in state_dict:
                continue
            try:
                value = to_numpy(state_dict[k])
            except Exception as e:  # e.g. a ragged list: name the key, keep the reason
                wrong_dtype.append(f"{k}: cannot be read as an array ({type(e).__name__}: {e})")
                continue
            if value.shape != t.shape:
                wrong_shape.append(f"{k}: checkpoint has shape {value.shape}, the model has {t.shape}")
                continue
            problem = conversion_problem(value, t.dtype)
            if problem is None:
                try:
                    converted[k] = value.astype(t.dtype, copy=False)
                except (TypeError, ValueError, OverflowError) as e:
                    problem = f"{type(e).__name__}: {e}"
            if problem is not None:
                wrong_dtype.append(f"{k}: checkpoint dtype {value.dtype} cannot be loaded into the model's {t.dtype} "
                                   f"({problem})")
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(map(str, unexpected)) + _unexpected_hint(unexpected))
        if wrong_shape:
            problems.append("wrong shapes: " + "; ".join(wrong_shape))
        if wrong_dtype:
            problems.append("wrong dtypes: " + "; ".join(wrong_dtype))
        if problems:
            raise ValueError(f"load_state_dict into {type(self).__name__} failed:\n  " + "\n  ".join(problems))
        for k, value in converted.items():
            t = own[k]
            t.data[...] = backend.to_device(value, t.device)  # in place: same array, same dtype, same device
            t._mark_modified()
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ modes and devices
    def train(self, mode: bool = True):
        """Training behaviour (dropout drops, batch norm uses batch statistics) for every layer."""
        mode = check_bool(mode, "train", "mode")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        """Evaluation behaviour for every layer: ``train(False)``."""
        return self.train(False)

    def to(self, device):
        """Move every parameter and buffer to ``device`` ("cpu", "cuda", "cuda:N"), in place.

        The Parameter objects stay the same (only their ``.data`` moves). An optimizer that has
        already stepped keeps its state (Adam's m and v, momentum) on the old device: its next
        step raises an error saying so. Build the optimizer after moving the model.
        """
        device = backend.check_device(device)
        for t in itertools.chain(self.parameters(), self.buffers()):
            t.data = backend.to_device(t.data, device)
            if t.grad is not None:
                t.grad = backend.to_device(t.grad, device)
        return self

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def zero_grad(self):
        """Forget the gradients of every parameter (they accumulate across backward calls)."""
        for p in self.parameters():
            p.grad = None

    def apply(self, fn):
        """Call ``fn(module)`` on every module of the tree (e.g. to re-initialise weights)."""
        for m in self.modules():
            fn(m)
        return self

    # ------------------------------------------------------------------ calling
    def forward(self, *args, **kwargs):  # pragma: no cover - every layer overrides it
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def register_forward_hook(self, hook) -> RemovableHandle:
        """Call ``hook(module, inputs, output)`` after every forward pass; if it returns
        something other than None, that replaces the output. To look at (or change)
        activations without editing the model: ``handle.remove()`` stops it. TypeError when
        ``hook`` is not callable."""
        if not callable(hook):
            raise TypeError(f"register_forward_hook: hook must be a function hook(module, inputs, output); "
                            f"got {hook!r:.40} ({type(hook).__name__})")
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    def __call__(self, *args, **kwargs):
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    # ------------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        """The layer's own settings, shown inside its parentheses (overridden by layers)."""
        return ""

    def __repr__(self):
        lines = []
        extra = self.extra_repr()
        if extra:
            lines.extend(extra.split("\n"))
        for name, m in self._modules.items():
            lines.append(f"({name}): " + _indent(repr(m), 2))
        head = type(self).__name__ + "("
        if not lines:
            return head + ")"
        if len(lines) == 1 and not self._modules:
            return head + lines[0] + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


_REGISTRIES = ("_parameters", "_buffers", "_modules", "_forward_hooks")


def rebuild(layer: Module, cls: type | None = None, parameters=None, buffers=None, share_hooks: bool = False,
            **settings) -> Module:
    """A new layer of class ``cls`` (default: ``layer``'s own) that takes over ``layer``'s state,
    built without calling ``cls.__init__``. The one way minikd rebuilds a layer: ``prune.compact``
    (a smaller layer of the same class) and ``quant`` (a QuantLinear from a Linear) both use it.

    Why not ``cls(...)``: ``__init__`` draws random initial weights from minikd's seeded generator
    (every later random number of a seeded run would shift) only to throw them away, and a
    subclass's ``__init__`` may take other arguments. What the new layer gets:

    - every plain attribute of ``layer`` (``in_features``, ``kernel_size``, ``training``, ...),
      then ``settings`` on top of them (``out_features=16`` for a layer with fewer units);
    - ``parameters`` and ``buffers`` (dictionaries name → Tensor, in the layer's order); by
      default ``layer``'s own objects, shared, not copied, so an optimizer holding them (and
      pruning masks) keep working;
    - ``layer``'s forward hooks only with ``share_hooks``: the very same registry, so a handle
      returned for the old layer removes the hook from both;
    - no sub-modules: it is for leaf layers (Linear, Conv2d, BatchNorm).
    """
    cls = type(layer) if cls is None else cls
    new = cls.__new__(cls)
    Module.__init__(new)
    for key, value in layer.__dict__.items():
        if key not in _REGISTRIES:
            object.__setattr__(new, key, value)
    for key, value in settings.items():
        object.__setattr__(new, key, value)
    if share_hooks:
        object.__setattr__(new, "_forward_hooks", layer._forward_hooks)
    new._parameters.update(layer._parameters if parameters is None else parameters)
    new._buffers.update(layer._buffers if buffers is None else buffers)
    return new


def _indent(text: str, n: int) -> str:
    """Indent every line of ``text`` but the first by ``n`` spaces (for nested reprs)."""
    first, *rest = text.split("\n")
    return "\n".join([first] + [" " * n + line for line in rest])


def _as_buffer(value):
    if value is None or isinstance(value, Tensor):
        return value
    return Tensor(_on_default_device(value))


def _unexpected_hint(keys) -> str:
    """What a checkpoint with these extra keys most likely is, and how it loads."""
    from ..prune.pruning import MASK_BUFFERS  # here, not at the top: prune and quant import nn
    from ..quant.integer import integer_keys
    if any(isinstance(k, str) and k.rpartition(".")[2] in MASK_BUFFERS for k in keys):
        return " (a pruned model's masks: load it with minikd.prune.load_pruned(model, state_dict))"
    if integer_keys(keys):
        return (" (an integer-quantized model, quant.convert_to_integer's: load it into a model converted the same "
                "way, or give the float model's checkpoint)")
    return ""

""""Modify it to learn": small guided changes to the engine, each with a check that passes once the change is right.

    python -m minikd.exercises list                 # the tasks
    python -m minikd.exercises show swish           # what to change, where, and a starter to copy
    python -m minikd.exercises check swish          # test the code in ./my_exercises.py
    python -m minikd.exercises check swish --file path/to/mine.py
    python -m minikd.exercises check swish --solution   # the reference solution passes

The learner writes their code in one file, ``my_exercises.py`` in the current directory (or the
path given with ``--file``), defining the names each task asks for (``swish``, ``mse_kd_loss``,
``l1_normalized``, ``stochastic_round`` and ``quantize_stochastic``). minikd's own files stay as
they are: the check imports the file and tests what it defines; each task's text says where
the change would go in the engine.

Each task is one module here: ``TASK`` (the text), ``STARTER`` (a skeleton), ``NAMES`` (what
the file defines), ``check(impl, say)`` (raises :class:`CheckFailed` with what was wrong) and
``reference`` (the solution, tested in CI). From Python: ``run_check("swish", impl)``.
"""

from __future__ import annotations

from . import mse_kd, prune_criterion, stochastic_rounding, swish
from .common import CheckFailed

#: name → task module, in the lecture's order (an op, pruning, quantization, distillation)
TASKS = {m.NAME: m for m in (swish, prune_criterion, stochastic_rounding, mse_kd)}


def get(name: str):
    """The task module called ``name``; ValueError naming the tasks for an unknown one."""
    if name not in TASKS:
        raise ValueError(f"no task {name!r}; the tasks are: {', '.join(TASKS)}")
    return TASKS[name]


def missing_names(name: str, impl) -> list[str]:
    """The names task ``name`` needs that ``impl`` (a module or namespace) does not define."""
    return [n for n in get(name).NAMES if not hasattr(impl, n)]


def run_check(name: str, impl, say=print) -> None:
    """Run task ``name``'s check on ``impl`` (anything with the task's names as attributes).

    Returns None when every check passes (each passed step reported through ``say``);
    raises :class:`CheckFailed` saying what was wrong, or ValueError for an unknown task.
    """
    task = get(name)
    missing = missing_names(name, impl)
    if missing:
        raise CheckFailed(f"task {name!r} needs {', '.join(missing)}, not defined")
    task.check(impl, say=say)


__all__ = ["CheckFailed", "TASKS", "get", "missing_names", "run_check"]

"""python -m minikd.exercises list | show NAME | check NAME [--file PATH] [--solution]

Exit status: 0 the check passed; 1 it failed (or your file raised an error); 2 nothing could be
checked (an unknown task, no file, a name the file does not define).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import traceback
from pathlib import Path

from . import TASKS, CheckFailed, missing_names, run_check

DEFAULT_FILE = "my_exercises.py"


def load_file(path: Path):
    """Import the learner's file as a module (its folder on sys.path while it loads, for its own imports)."""
    spec = importlib.util.spec_from_file_location(f"_minikd_exercise_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def _unknown(name: str) -> int:
    print(f"minikd.exercises: no task {name!r}; the tasks are: {', '.join(TASKS)}", file=sys.stderr)
    return 2


def cmd_list(args) -> int:
    for name, task in TASKS.items():
        print(f"{name:20s} {task.TITLE}")
    print(f"\nshow NAME: the task;  check NAME: test your {DEFAULT_FILE}")
    return 0


def cmd_show(args) -> int:
    if args.name not in TASKS:
        return _unknown(args.name)
    task = TASKS[args.name]
    print(f"{task.NAME}: {task.TITLE}\n\n{task.TASK}")
    print(f"Your file ({DEFAULT_FILE} in this folder, or --file PATH) defines: {', '.join(task.NAMES)}.")
    print(f"A starter to copy into it:\n\n{task.STARTER}")
    return 0


def cmd_check(args) -> int:
    if args.name not in TASKS:
        return _unknown(args.name)
    task = TASKS[args.name]
    if args.solution:
        impl, source, path = task.reference, "the reference solution", None
    else:
        path = Path(args.file)
        if not path.is_file():
            cmd_show(args)
            print(f"minikd.exercises: no file {path.resolve()}: create it with {', '.join(task.NAMES)} "
                  f"(the starter above), or give its path with --file PATH", file=sys.stderr)
            return 2
        try:
            impl = load_file(path)
        except Exception:
            traceback.print_exc()
            print(f"FAIL {task.NAME}: {path} could not be imported (the error is above)", file=sys.stderr)
            return 1
        missing = missing_names(task.NAME, impl)
        if missing:
            print(f"minikd.exercises: {path} defines no {', '.join(missing)}: add "
                  f"{'it' if len(missing) == 1 else 'them'} (python -m minikd.exercises show {task.NAME} "
                  "prints a starter)", file=sys.stderr)
            return 2
        source = str(path)
    print(f"checking {task.NAME} in {source}")
    try:
        run_check(task.NAME, impl, say=lambda line: print("  " + line))
    except CheckFailed as e:
        print(f"FAIL {task.NAME}: {e}")
        cause = e.__cause__
        if cause is not None and not isinstance(cause, AssertionError):
            print(where_in(cause, path))
        return 1
    print(f"PASS {task.NAME}")
    return 0


def where_in(error: BaseException, path) -> str:
    """The lines of the learner's file that an ``error`` from their code passed through (the last
    frame of the traceback when none is theirs): where to look, without the engine's frames."""
    frames = traceback.extract_tb(error.__traceback__)
    mine = [f for f in frames if path is not None and Path(f.filename).resolve() == Path(path).resolve()]
    shown = mine or frames[-1:]
    name = Path(path).name if mine else "the traceback's last frame"
    return "\n".join([f"  where, in {name}:"] + [f"    line {f.lineno}, in {f.name}: {f.line}" for f in shown])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minikd.exercises",
                                     description="'Modify it to learn': guided changes to minikd, with checks.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the tasks").set_defaults(run=cmd_list)
    show = sub.add_parser("show", help="a task's text and a starter")
    show.add_argument("name")
    show.set_defaults(run=cmd_show)
    check = sub.add_parser("check", help=f"test your code (in ./{DEFAULT_FILE})")
    check.add_argument("name")
    check.add_argument("--file", default=DEFAULT_FILE, help=f"your file (default: ./{DEFAULT_FILE})")
    check.add_argument("--solution", action="store_true", help="check the reference solution instead")
    check.set_defaults(run=cmd_check)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())

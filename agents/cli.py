"""What the command-line scripts share: options as a dataclass, one parser, one error exit, one thread setting.

A script declares its options CleanRL-style, as a ``@dataclass Args`` whose
attribute docstrings are the ``--help`` text, and reads top to bottom::

    @dataclass
    class Args:
        sessions: int = option(20_000, min=1)
        \"\"\"sessions per policy and world\"\"\"
        json: bool = False
        \"\"\"print JSON instead of a table\"\"\"


    def main(argv: list[str] | None = None) -> int:
        args = parse_args(Args, argv, __doc__)
        pin_threads(args.threads)
        ...


    if __name__ == "__main__":
        run(main)

Flags are the field names with dashes (``num_envs`` -> ``--num-envs``). By type:

* ``int`` / ``float`` / ``str``: one value; ``0`` is ``0`` (a default never replaces it);
* ``bool``: ``--flag`` or ``--no-flag``, or an explicit value ``--flag false``
  (``true``/``false``, ``1``/``0``, ``yes``/``no``);
* ``X | None``: ``None`` when the flag is absent (the docstring says what that means);
* ``Literal[...]``: one of the listed values;
* ``tuple[X, ...]``: comma-separated values (``--sizes 1,64,1024``; ``''`` for none);
* ``list[X]``: the flag repeated (``--policy a --policy b``); required without a default.

:func:`option` adds ``min`` (an inclusive lower bound, checked for every element of a
tuple or list) and ``check`` (any test of a parsed value, e.g. :func:`existing_file`, or
:func:`one_of` for names whose home is a registry elsewhere).
Checks across fields go in ``Args.__post_init__`` as a ``ValueError`` that names the
flags. All of it runs before ``main`` does any work.

Bad input, on the command line or later (a ``ValueError`` or ``TypeError`` whose
message names the field, the value and what was expected, a missing file, a directory
where a file belongs or the reverse, an output that already exists), ends in one line
``error: ...`` on stderr and exit status 2: never a traceback, never a silent
fallback. :func:`existing_file`, :func:`output_file` and :func:`output_dir` check
paths at parse time.

Ctrl-C and SIGTERM mean "save and stop" (``agents.signals``); a stop signal that
reaches :func:`run` ends the script with one line and exit status 128 + the signal's
number: **130** after Ctrl-C, **143** after SIGTERM. Nothing here imports numpy or torch.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import math
import os
import signal
import sys
import textwrap
import types
import typing
from typing import Any, Callable, Iterable, Literal

USAGE_ERROR = 2  # exit status of bad input (argparse's own convention)
USER_ERRORS = (ValueError, TypeError, FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
TRUE_WORDS = ("true", "1", "yes")
FALSE_WORDS = ("false", "0", "no")


def option(default: Any = dataclasses.MISSING, *, min: float | None = None,  # noqa: A002 - reads as the bound it is
           check: Callable[[Any], None] | None = None) -> Any:
    """A dataclass field with checks run when the command line is parsed.

    Args:
        default: the value when the flag is absent.
        min: inclusive lower bound of the value (of each element of a tuple or list).
        check: called with each parsed value; a ``ValueError`` it raises becomes the error
            line ``argument --flag: <message>`` (e.g. :func:`existing_file`).
    """
    return dataclasses.field(default=default, metadata={"min": min, "check": check})


def existing_file(path: str) -> None:
    """A ``check`` for :func:`option`: ``path`` names an existing file (a directory is named as such)."""
    if os.path.isdir(path):
        raise ValueError(f"expected a file, got the directory {path!r}")
    if not os.path.isfile(path):
        raise ValueError(f"expected an existing file, got {path!r}")


def one_of(valid: Iterable[str]) -> Callable[[str], None]:
    """A ``check`` for :func:`option`: the value is one of ``valid`` (e.g. the keys of a registry dict).

    Where the names already live in a dict (baselines, logging scores), this keeps them in
    that one home; a fixed set with no other home reads better as a ``Literal``.
    """
    names = tuple(valid)

    def check(value: str) -> None:
        if value not in names:
            from ecomsim.errors import suggest  # only on error: the package imports numpy

            raise ValueError(f"expected one of {list(names)}, got {value!r}.{suggest(str(value), names)}".rstrip("."))

    return check


def output_file(path: str) -> None:
    """A ``check`` for :func:`option`: ``path`` can be written as a file (not a directory, its parent not a file)."""
    if os.path.isdir(path):
        raise ValueError(f"expected a file to write, got the directory {path!r}")
    parent = os.path.dirname(os.path.abspath(path))
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if parent and not os.path.isdir(parent):
        raise ValueError(f"cannot write {path!r}: {parent!r} is a file, not a directory")


def output_dir(path: str) -> None:
    """A ``check`` for :func:`option`: ``path`` is a directory or can be made one (not an existing file)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"expected a directory, got the existing file {path!r}")
    output_file(os.path.join(path, "x"))  # no file among its parents


def or_empty(check: Callable[[str], None]) -> Callable[[str], None]:
    """``check`` for a path flag whose empty value ``''`` means "none" (``--log-dir ''``)."""
    def checked(path: str) -> None:
        if path:
            check(path)

    return checked


def json_object(flag: str, text: str) -> dict[str, Any]:
    """``text`` parsed as a JSON object, or a ``ValueError`` naming ``flag``."""
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{flag} must be a JSON object, got {text!r} ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{flag} must be a JSON object, got {text!r}")
    return value


def options_with_flags(flag: str, text: str, **flags: Any) -> dict[str, Any]:
    """The JSON object ``text`` of option ``flag`` (:func:`json_object`) with the ``flags`` that were given
    (not ``None``) over it: a script's own flag wins over the same key in its ``--env-options``."""
    return {**json_object(flag, text), **{k: v for k, v in flags.items() if v is not None}}


def run(main: Callable[[], int]) -> None:
    """Exit with ``main()``'s status.

    Bad input (:data:`USER_ERRORS`: a ``ValueError`` or ``TypeError`` naming the field, value and
    what was expected, a missing file, a directory where a file belongs, an output that exists)
    prints ``error: ...`` and exits 2. A stop signal that reaches here (Ctrl-C, SIGTERM) prints
    one line and exits 128 + its number.
    """
    try:
        sys.exit(main())
    except USER_ERRORS as exc:
        _fail(str(exc))
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"\n{signal.Signals(signum).name}: stopped ({exc or 'interrupted'})", file=sys.stderr)
        sys.exit(128 + signum)


def _fail(message: str) -> typing.NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(USAGE_ERROR)


def pin_threads(threads: int) -> None:
    """Run torch, the BLAS and OpenMP on ``threads`` threads.

    Why one thread by default: the networks and the shopper model's matrices are small,
    and on a shared machine a second BLAS thread spins waiting for a busy core: a
    ``(300, 8) @ (8, 256)`` matmul measured 0.05 ms with 1 thread and 12.5 ms with 2.
    The environment variables size the thread pools of libraries loaded after this call
    (and of child processes); ``threadpoolctl`` resizes the pools already loaded; torch,
    when loaded, gets ``set_num_threads``.
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    for var in THREAD_VARIABLES:
        os.environ[var] = str(threads)
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency, always installed with it

    threadpool_limits(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def parse_args(cls: type, argv: list[str] | None = None, description: str | None = None) -> Any:
    """Parse ``argv`` (default ``sys.argv[1:]``) into an instance of the dataclass ``cls``.

    Bad values exit with one ``error: ...`` line (status 2) naming the flag, the value and what is valid.
    """
    parser = build_parser(cls, description)
    ns, extra = parser.parse_known_args(argv)
    if extra:
        from ecomsim.errors import suggest  # only on error: the package imports numpy

        flags = [flag for f in dataclasses.fields(cls) if f.init for flag in _flags(f.name)]
        hint = suggest(extra[0].split("=")[0], flags) if extra[0].startswith("--") else ""
        _fail(f"unrecognized arguments: {' '.join(extra)}.{hint or ' See --help for the flags.'}")
    try:
        return cls(**vars(ns))
    except ValueError as exc:  # a check across fields in Args.__post_init__
        _fail(str(exc))


def build_parser(cls: type, description: str | None = None) -> argparse.ArgumentParser:
    """The ``argparse`` parser of the dataclass ``cls`` (see the module docstring for the rules)."""
    # no abbreviated flags: `--sess` silently meaning `--sessions` today could mean another flag tomorrow
    parser = _Parser(description=description, formatter_class=_Formatter, allow_abbrev=False)
    docs = attribute_docs(cls)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.init:  # a field with init=False is derived in __post_init__, not a flag
            _add(parser, _flags(f.name)[0], f, hints[f.name], docs.get(f.name, ""))
    return parser


def _flags(name: str) -> tuple[str, str]:
    """The flag of field ``name`` and its ``--no-`` form (used by booleans only)."""
    flag = name.replace("_", "-")
    return f"--{flag}", f"--no-{flag}"


def attribute_docs(cls: type) -> dict[str, str]:
    """``{field: docstring}`` from the string literal under each annotated field of ``cls``."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):  # no source (frozen or interactive): plain flags still work
        return {}
    body = tree.body[0].body
    out = {}
    for node, nxt in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
            out[node.target.id] = " ".join(nxt.value.value.split())
    return out


# ================================================================= internals
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:
        _fail(message)  # one line, like every other bad input: no usage block


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def _format_action_invocation(self, action: argparse.Action) -> str:
        if isinstance(action, _BoolAction):
            return f"{action.option_strings[0]} [true|false], {action.option_strings[1]}"
        return super()._format_action_invocation(action)


class _BoolAction(argparse.Action):
    """``--flag`` (true), ``--no-flag`` (false) or ``--flag VALUE`` with VALUE in true/false, 1/0, yes/no."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(list(_flags(dest)), dest, nargs="?", metavar="BOOL", **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if option_string.startswith("--no-"):
            if values is not None:
                raise argparse.ArgumentError(self, f"{option_string} takes no value, got {values!r}")
            setattr(namespace, self.dest, False)
            return
        word = "true" if values is None else str(values).strip().lower()
        if word not in TRUE_WORDS + FALSE_WORDS:
            raise argparse.ArgumentError(self, f"expected one of {list(TRUE_WORDS + FALSE_WORDS)}, got {values!r}")
        setattr(namespace, self.dest, word in TRUE_WORDS)


def _add(parser: argparse.ArgumentParser, flag: str, f: dataclasses.Field, hint: Any, doc: str) -> None:
    required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    default = None if required else (f.default if f.default is not dataclasses.MISSING else f.default_factory())
    low, check = f.metadata.get("min"), f.metadata.get("check")
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):  # X | None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    help_text = doc + ("" if required or default is None else f" (default: {_show(default)})")
    help_text = help_text.replace("%", "%%")  # argparse %-formats help texts
    if hint is bool:
        parser.add_argument(flag, action=_BoolAction, default=default, help=help_text)
    elif origin is tuple:
        parser.add_argument(flag, type=_tuple_of(args[0], low, check), default=default, required=required,
                            metavar="A,B,..", help=help_text)
    elif origin is list:
        parser.add_argument(flag, action="append", type=_converter(args[0], low, check), default=default,
                            required=required, help=help_text + " (repeat the flag for several)")
    else:
        metavar = "{" + ",".join(map(str, args)) + "}" if origin is Literal else None
        parser.add_argument(flag, type=_converter(hint, low, check), default=default, required=required, metavar=metavar,
                            help=help_text)


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return repr(",".join(map(str, value)))
    return repr(value) if isinstance(value, str) else str(value)


def _converter(hint: Any, low: float | None, check: Callable[[Any], None] | None = None) -> Callable[[str], Any]:
    """Text -> value of type ``hint`` (int, float, str or a Literal), checked against ``low`` and by ``check``."""
    parse = _choice(typing.get_args(hint)) if typing.get_origin(hint) is Literal else _number_or_text(hint, low)

    def convert(text: str) -> Any:
        value = parse(text)
        if check is not None:
            try:
                check(value)
            except ValueError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None
        return value

    return convert


def _choice(choices: tuple) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if text not in choices:
            from ecomsim.errors import suggest  # only on error: the package imports numpy

            message = f"expected one of {list(choices)}, got {text!r}.{suggest(text, choices)}"
            raise argparse.ArgumentTypeError(message.rstrip("."))
        return text

    return parse


def _number_or_text(hint: type, low: float | None) -> Callable[[str], Any]:
    kind = {int: "an integer", float: "a number", str: "text"}[hint]

    def parse(text: str) -> Any:
        try:
            value = hint(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if hint is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if low is not None and value < low:
            raise argparse.ArgumentTypeError(f"expected {kind} >= {low}, got {text!r}")
        return value

    return parse


def _tuple_of(hint: Any, low: float | None, check: Callable[[Any], None] | None) -> Callable[[str], tuple]:
    convert = _converter(hint, low, check)

    def parse(text: str) -> tuple:
        return tuple(convert(part.strip()) for part in text.split(",") if part.strip())

    return parse

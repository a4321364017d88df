"""Ctrl-C and SIGTERM in the long-running scripts: both mean "save and stop".

SIGTERM is what ``timeout``, schedulers and ``docker stop`` send; left to Python's
default it ends a run without saving anything since the last periodic checkpoint. A
training script runs its loop inside :func:`stop_signals` and ``flag.deferred()``:

* the first signal (Ctrl-C or SIGTERM) only asks the loop to stop: the loop polls the
  flag at safe points (every env step, every batch or epoch), saves its checkpoint and
  raises :class:`~ecomsim.errors.TrainingStopped`; the script prints one line with
  where it stopped, the checkpoint and the command that resumes it (:func:`stopped`);
* a second signal, or one outside the loop, ends the script at once (:class:`Interrupted`).

Exit status: **130** (128 + SIGINT) after Ctrl-C, **143** (128 + SIGTERM) after
SIGTERM, what a shell reports for a process ended by that signal. Checkpoints are
written to a temporary file and moved into place (``os.replace``), so a kill at any
moment, even ``kill -9``, leaves the previous checkpoint or the new one.
"""

from __future__ import annotations

import shlex
import signal
import sys
from contextlib import contextmanager
from typing import Any, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A stop signal outside a loop that can stop cleanly (or a second one inside): the script ends now."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"{signal.Signals(signum).name} received")
        self.signum = signum


class StopFlag:
    """What :func:`stop_signals` yields: call it to know whether a stop was asked for; ``signum`` says which signal."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.deferring = False

    def __call__(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)

    @contextmanager
    def deferred(self) -> Iterator["StopFlag"]:
        """Inside, the first signal only sets the flag: the loop stops at its next safe point."""
        self.deferring = True
        try:
            yield self
        finally:
            self.deferring = False

    def _handle(self, signum: int, frame: Any) -> None:
        if self.deferring and self.signum is None:
            self.signum = signum
            print(f"\n{signal.Signals(signum).name} received: saving a checkpoint at the next safe point "
                  "(send it again to quit at once)", file=sys.stderr, flush=True)
            return
        raise Interrupted(signum)


@contextmanager
def stop_signals() -> Iterator[StopFlag]:
    """Handle Ctrl-C and SIGTERM alike for the duration (see the module docstring); the old handlers come back after."""
    flag = StopFlag()
    old = {s: signal.signal(s, flag._handle) for s in STOP_SIGNALS}
    try:
        yield flag
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def stopped(flag: StopFlag, exc: BaseException, resume: str | None) -> int:
    """Print the one line of a run stopped by a signal (where it stopped, its checkpoint, how to resume); its exit status."""
    name = signal.Signals(flag.signum or signal.SIGINT).name
    checkpoint = getattr(exc, "checkpoint", None)
    where = f"stopped at {getattr(exc, 'progress', 'an unknown point')}"
    if checkpoint is None:
        print(f"{name}: {where}; no checkpoint to resume from", file=sys.stderr, flush=True)
    else:
        print(f"{name}: {where}; checkpoint saved in {checkpoint}; continue with: {resume}", file=sys.stderr, flush=True)
    return flag.exit_code


def resume_command(script: str, argv: list[str] | None) -> str:
    """The command line that continues this run: the same flags, ``--resume`` once at the end."""
    args, out, skip = list(sys.argv[1:] if argv is None else argv), [], False
    for i, a in enumerate(args):
        if skip:
            skip = False
            continue
        if a in ("--resume", "--no-resume") or a.startswith("--resume="):
            skip = a == "--resume" and i + 1 < len(args) and args[i + 1].lower() in ("true", "false", "1", "0", "yes", "no")
            continue
        out.append(a)
    return shlex.join(["python3", script, *out, "--resume"])

"""The worker side of a sharded core (``ecomsim.shards``): the shared arrays and the loop a worker process runs.

A sharded vector env keeps every per-step array of its ``num_envs`` sessions in one
shared-memory segment (:class:`SharedArrays`): the actions and skip flags the parent
writes, and the observation, the step's outcome (the ``outcome`` block of
``ecomsim.sim.state``, one array per row name) and the session totals each worker
writes for its rows. Only small messages travel through the pipes: which rows to
reset with which stream keys, and "step" / "observe".

:func:`serve` is the worker's main function: it builds a :class:`~ecomsim.sim.core.SimulationCore`
of its shard, answers commands until "close" (or until the parent's end of its pipe
closes: a parent that died ends its workers), and never lets an exception kill it
silently: the error and its traceback go back to the parent.
"""

from __future__ import annotations

import signal
import sys
import traceback
from dataclasses import dataclass
from multiprocessing import shared_memory
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from ecomsim.catalog import Catalog
from ecomsim.catalog_source import CatalogSupport
from ecomsim.config import EnvConfig
from ecomsim.shoppers.base import ShopperModel
from ecomsim.sim.state import OUTCOME, SESSION

ALIGN_BYTES = 64  # each array starts on a cache line: workers writing neighbouring arrays never share one
#: the session totals the parent reads after every call (``ecomsim.info.step_info``, the SB3 VecEnv)
MIRRORED = ("step_count", "clicks", "carts", "purchases", "impressions", "revenue")


def _row_fields(spec, sizes: dict[str, int], names: tuple[str, ...] | None = None) -> list[tuple[str, tuple, np.dtype]]:
    """``(name, shape, dtype)`` of each named array of a block, stacked fields split into their rows."""
    out = []
    for f in spec.fields:
        rows = f.rows or (f.name,)
        if names is not None and not set(rows) & set(names):
            continue
        shape = tuple(s if isinstance(s, int) else sizes[s] for s in f.shape)
        for name in rows:
            if names is None or name in names:
                out.append((name, shape[1:] if f.rows else shape, np.dtype(f.dtype)))
    return out


#: the session arrays a parent may read or write by name (``ShardedCore.session_array`` / ``set_session``)
SESSION_NAMES = tuple(dict.fromkeys(n for f in SESSION.fields for n in (f.name, *f.rows)))
#: the outcome arrays in shared memory: ``StepOutcome``'s fields but ``obs`` (which has its own array) and the
#: inventory's ``unavailable`` / ``lost`` (a store's stock is never sharded: ``check_shardable``)
OUTCOME_NAMES = tuple(name for name, _, _ in _row_fields(OUTCOME, {"num_envs": 1, "slate_size": 1, "stocked_envs": 0,
                                                                   "stocked_slots": 0})
                      if name not in ("unavailable", "lost"))


class SharedArrays:
    """Arrays of ``num_envs`` rows laid out in one shared-memory segment.

    Args:
        num_envs: rows (sessions); ``slate_size``: ``k``; ``obs_dim``: floats per observation.

    Arrays (batch first): ``slots`` ``(N, k)`` int64 and ``skip`` ``(N,)`` bool (written by the
    parent), ``obs`` ``(N, obs_dim)`` float32, the outcome rows (:data:`OUTCOME_NAMES`) and the
    session totals ``session.<name>`` for :data:`MIRRORED` (written by the workers).
    """

    def __init__(self, num_envs: int, slate_size: int, obs_dim: int) -> None:
        sizes = {"num_envs": num_envs, "slate_size": slate_size, "stocked_envs": 0, "stocked_slots": 0}  # no stock
        fields = [("slots", (num_envs, slate_size), np.dtype(np.int64)), ("skip", (num_envs,), np.dtype(np.bool_)),
                  ("obs", (num_envs, obs_dim), np.dtype(np.float32))]
        fields += _row_fields(OUTCOME, sizes, OUTCOME_NAMES)
        fields += [(f"session.{name}", shape, dtype) for name, shape, dtype in _row_fields(SESSION, sizes, MIRRORED)]
        self.fields: list[tuple[str, tuple, np.dtype, int]] = []
        offset = 0
        for name, shape, dtype in fields:
            self.fields.append((name, shape, dtype, offset))
            offset += -(-int(np.prod(shape)) * dtype.itemsize // ALIGN_BYTES) * ALIGN_BYTES
        self.nbytes = max(offset, ALIGN_BYTES)

    def views(self, buf: memoryview, lo: int = 0, hi: int | None = None) -> dict[str, np.ndarray]:
        """Every array over ``buf``, rows ``lo:hi`` (all rows by default)."""
        out = {}
        for name, shape, dtype, offset in self.fields:
            arr = np.ndarray(shape, dtype=dtype, buffer=buf, offset=offset)
            out[name] = arr[lo:hi]
        return out


@dataclass
class WorkerSpec:
    """What a worker needs to build its core: the env's config, catalog and shopper, and its rows ``lo:hi``."""

    index: int
    lo: int
    hi: int
    config: EnvConfig
    catalog: Catalog | None
    shopper: ShopperModel | None
    catalog_support: CatalogSupport | None


def pin_threads() -> None:
    """One BLAS / OpenMP / torch thread: the workers are the parallelism (and a forked torch must not
    enter an OpenMP region its parent used)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def serve(conn: Connection, spec: WorkerSpec, inherited: list[Connection]) -> None:
    """A worker process's main: build the shard's core, then answer the parent's commands."""
    for c in inherited:  # forked copies of the parent's ends of the pipes: the parent's exit must close them
        c.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle ("save and stop")
    shm = None
    try:
        pin_threads()
        from ecomsim.assembly import build_core  # imported here: the env layer imports this package lazily

        core = build_core(spec.config, spec.hi - spec.lo, spec.catalog, spec.shopper, spec.catalog_support)
        pin_threads()  # again: building a DNN shopper imports torch
        conn.send(("ok", (core.layout, core.catalog) if spec.index == 0 else None))
        name, arrays = conn.recv()
        # attaching registers the name with the resource tracker, which is the parent's (shards.py starts it
        # before the workers): the parent's unlink unregisters it; Python >= 3.13 can skip tracking outright
        shm = shared_memory.SharedMemory(name=name, **({"track": False} if sys.version_info >= (3, 13) else {}))
        views = arrays.views(shm.buf, spec.lo, spec.hi)
        conn.send(("ok", None))
        _loop(conn, core, views)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the parent is gone: nothing to answer
    except BaseException as exc:  # noqa: BLE001 - a failure to start goes back to the parent, whatever it is
        _send_error(conn, exc)
    finally:
        if shm is not None:
            try:
                shm.close()
            except BufferError:
                pass  # views still alive at exit: the mapping goes with the process


def _send_error(conn: Connection, exc: BaseException) -> None:
    text = traceback.format_exc()
    try:
        conn.send(("error", exc, text))
    except Exception:  # noqa: BLE001 - the exception itself may not pickle: send its words
        try:
            conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}"), text))
        except (OSError, EOFError):
            pass


def _loop(conn: Connection, core, views: dict[str, np.ndarray]) -> None:
    mirrored = [(views[f"session.{n}"], getattr(core.session, n)) for n in MIRRORED]
    while True:
        msg = conn.recv()
        op = msg[0]
        if op == "close":
            conn.send(("ok", None))
            return
        try:
            reply = _run(core, views, op, msg[1:])
            for dst, src in mirrored:
                dst[:] = src
            conn.send(("ok", reply))
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
            _send_error(conn, exc)


def _run(core, views: dict[str, np.ndarray], op: str, args: tuple) -> Any:
    """One command. ``run``: pending resets, then ``step`` / ``observe`` / nothing; ``catalog``; ``get``; ``set``."""
    if op == "run":
        resets, action, arg = args
        for idx, keys in resets:
            core.reset(idx, keys)
        if action == "step":
            skip, observe = arg
            skip_rows = views["skip"] if skip and views["skip"].any() else None
            out = core.step(views["slots"], skip=skip_rows, observe=observe)
            for name in OUTCOME_NAMES:
                views[name][...] = getattr(out, name)
            if out.obs is not None:
                views["obs"][...] = out.obs
            return out.obs is not None
        if action == "observe":
            rows = arg
            if rows is None:
                views["obs"][...] = core.observe()
            elif len(rows):
                views["obs"][rows] = core.observe(rows)
        return None
    if op == "catalog":
        core.set_catalog(args[0])
        return None
    if op in ("get", "set") and args[0] not in SESSION_NAMES:
        raise AttributeError(f"the session block has no array {args[0]!r}; valid: {list(SESSION_NAMES)}")
    if op == "get":
        return np.array(getattr(core.session, args[0]))
    if op == "set":
        name, rows, value = args
        getattr(core.session, name)[rows] = value
        return None
    raise ValueError(f"unknown command {op!r}")

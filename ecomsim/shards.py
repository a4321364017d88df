"""A core whose sessions are split across worker processes: every core of the machine for one vector env.

``gym.make_vec(id, num_envs=N, num_workers=W)`` and ``EcomSB3VecEnv(N, num_workers=W)``
build a :class:`ShardedCore` instead of a :class:`~ecomsim.sim.core.SimulationCore`
(``num_workers=1``, the default, is the one-process core, untouched). Each of the ``W``
worker processes holds a core of its shard of sessions and steps it with the same
compiled kernels; observations, outcomes and session totals come back through one
shared-memory segment (``ecomsim.shard_worker``), so a step costs one short message per
worker and one copy of the arrays. The env views use it as they use a core.

**Exact.** Sessions are independent (each has its own counter-based random stream,
``ecomsim.sim.streams``; the kernels compute a row from its session only), so the
sharded env equals the one-process env bit for bit: observations, rewards, ends and
every info entry, autoresets included (``tests/test_shards.py``). Two details keep it so:

* what sessions share is made once, by the parent: the ``catalog="gan"`` catalogs are drawn
  in the parent (from the env's ``np_random``) and sent to every worker;
* the DNN shoppers' torch forward (used above ``KERNEL_MAX_ROWS`` rows; the compiled
  per-session forward below) is not row-exact across batch shapes: its vectorised
  elementwise loops (16 or 32 floats per chunk) finish a batch's last, partial chunk with
  scalar code, so a row's last bits depend on where chunk boundaries fall. Shard
  boundaries are therefore multiples of :data:`ROW_ALIGN` rows (a chunk boundary of every
  loop) and every shard stays on the same side of ``KERNEL_MAX_ROWS`` as the whole batch
  (same engine); where ``num_envs`` is too small for that, fewer workers run (a warning says
  so). Both hold for the reference world too, which needs neither.

**Not shardable.** A world option whose state is shared by all sessions of a vector env
(the store's stock of issue 13) cannot be split: :func:`check_shardable` refuses it.

**Processes.** Workers start with ``fork`` where the platform has it (else ``spawn``: the
workers import ``ecomsim`` themselves), run one BLAS / torch thread each, ignore Ctrl-C
(the parent handles it) and end when the parent closes the env, exits (``atexit``), or
dies (their pipe closes). A worker that dies or stops answering within ``timeout`` seconds
makes the next call raise a :class:`WorkerError` naming it; the env is then closed. Close
it with ``env.close()`` or a ``with`` block; the shared segment is unlinked then.
"""

from __future__ import annotations

import multiprocessing as mp
import warnings
import weakref
from multiprocessing import resource_tracker, shared_memory
from typing import Any

import numpy as np

from ecomsim.catalog import Catalog
from ecomsim.catalog_source import CatalogSupport
from ecomsim.config import EnvConfig
from ecomsim.shard_worker import MIRRORED, OUTCOME_NAMES, SharedArrays, WorkerSpec, serve
from ecomsim.shoppers.base import ShopperModel
from ecomsim.sim.core import SimulationCore, StepOutcome

ROW_ALIGN = 64  # rows: shard boundaries are multiples of this (a chunk boundary of torch's vectorised loops)
TIMEOUT = 300.0  # seconds a worker may take to answer one call (first calls compile the kernels: ~20 s)
#: ``EnvConfig`` options whose state all sessions of a vector env share; on, they forbid sharding
SHARED_STATE_OPTIONS = ("inventory",)


CLOSED = "the sharded env is closed (after close() or a worker failure); make a new env"


class WorkerError(RuntimeError):
    """A worker process of a sharded core died, stopped answering, or failed to start."""


def check_shardable(config: EnvConfig, num_workers: int) -> None:
    """Refuse ``num_workers > 1`` with an option whose state the sessions share (issue 13's store stock:
    concurrent shoppers of one store deplete one stock, which split shards would each hold a copy of)."""
    for name in SHARED_STATE_OPTIONS:
        if num_workers > 1 and getattr(config, name, None):
            raise ValueError(f"num_workers={num_workers} cannot be combined with {name}={getattr(config, name)!r}: "
                             f"all sessions of the vector env share its state, which worker processes cannot; "
                             f"use num_workers=1")


def shard_bounds(num_envs: int, num_workers: int, slate_size: int) -> list[int]:
    """Row boundaries ``[0, b1, ..., num_envs]`` of at most ``num_workers`` shards (see the module docstring).

    Below ``KERNEL_MAX_ROWS`` item rows the batch runs the row-exact compiled forward: shards
    differ by at most one row. Above, boundaries are multiples of :data:`ROW_ALIGN` and every
    shard has more than ``KERNEL_MAX_ROWS`` item rows, with as many shards as allow that.
    """
    from ecomsim.shoppers.behavior import KERNEL_MAX_ROWS  # the DNN forward's engine switch

    if num_envs * slate_size <= KERNEL_MAX_ROWS:
        w = min(num_workers, num_envs)
        return [num_envs * j // w for j in range(w + 1)]
    for w in range(min(num_workers, num_envs), 1, -1):
        inner = [round(num_envs * j / w / ROW_ALIGN) * ROW_ALIGN for j in range(1, w)]
        bounds = [0, *inner, num_envs]
        if all((b - a) * slate_size > KERNEL_MAX_ROWS for a, b in zip(bounds, bounds[1:])):
            return bounds
    return [0, num_envs]


class _Workers:
    """The processes, their pipes and the shared segment: what must be released, whoever holds the core."""

    def __init__(self, timeout: float) -> None:
        self.procs: list[Any] = []
        self.conns: list[Any] = []
        self.shm: shared_memory.SharedMemory | None = None
        self.timeout = timeout
        self.closed = False

    def ask(self, messages: dict[int, tuple]) -> dict[int, Any]:
        """Send ``{worker: message}`` and return ``{worker: reply}``; raise what a worker raised."""
        if self.closed:
            raise WorkerError(CLOSED)
        for w, msg in messages.items():
            try:
                self.conns[w].send(msg)
            except OSError:  # its end is closed: it died
                self._died(w)
        return self.receive(set(messages))

    def receive(self, waiting: set[int]) -> dict[int, Any]:
        """The replies of the workers ``waiting``, each ``("ok", reply)`` or ``("error", exc, traceback)``.

        One ``poll`` per worker, in turn (cheaper than a selector per call): a worker that dies closes
        its end of the pipe, so its poll returns at once and the read fails; only a live worker that
        never answers waits out the timeout.
        """
        replies: dict[int, Any] = {}
        errors: list[tuple[int, BaseException, str]] = []
        for w in sorted(waiting):
            conn = self.conns[w]
            try:
                if not conn.poll(self.timeout):
                    self.shutdown()
                    raise WorkerError(f"sharded env: worker {w} (pid {self.procs[w].pid}) gave no answer in "
                                      f"{self.timeout:g} s; the env is closed")
                status, *payload = conn.recv()
            except (EOFError, OSError):
                self._died(w)
            if status == "ok":
                replies[w] = payload[0]
            else:
                errors.append((w, payload[0], payload[1]))
        if errors:
            w, exc, text = errors[0]
            raise exc from WorkerError(f"in worker {w}:\n{text}")
        return replies

    def _died(self, w: int) -> None:
        proc = self.procs[w]
        proc.join(1.0)
        code = proc.exitcode
        self.shutdown()
        raise WorkerError(f"sharded env: worker {w} (pid {proc.pid}) died with exit code {code} "
                          f"(negative: the signal that ended it); the env is closed")

    def shutdown(self) -> None:
        """Stop the workers (politely, then by force), close the pipes, unlink the segment. Idempotent."""
        if self.closed:
            return
        self.closed = True
        for conn, proc in zip(self.conns, self.procs):
            if proc.is_alive():
                try:
                    conn.send(("close",))
                except (OSError, ValueError):
                    pass
        for proc in self.procs:
            proc.join(5.0)
            if proc.is_alive():
                proc.kill()
                proc.join(5.0)
        for conn in self.conns:
            conn.close()
        if self.shm is not None:
            try:
                self.shm.close()
            except BufferError:
                pass  # a caller still holds a view: the mapping goes when it does; the name goes now
            try:
                self.shm.unlink()
            except FileNotFoundError:
                pass


class ShardedCore:
    """``num_envs`` sessions stepped by worker processes, with the interface the env views use of a core.

    Args:
        config, num_envs, catalog, shopper, catalog_support: as :func:`ecomsim.assembly.build_core`.
        num_workers: worker processes asked for (fewer run where the rows do not allow them:
            :func:`shard_bounds`; ``self.num_workers`` says how many).
        start_method: ``"fork"`` or ``"spawn"`` (default: fork where available).
        timeout: seconds a worker may take to answer one call before the env gives up on it.

    Attributes:
        bounds: the shards' row boundaries; pids: the workers' process ids; layout, catalog: as a core's.
    """

    check_actions = SimulationCore.check_actions  # pure: reads num_envs, slate_size, num_candidates, config
    stock = None  # a store's stock is shared by every session: never sharded (check_shardable)

    def __init__(self, config: EnvConfig, num_envs: int, catalog: Catalog | None = None,
                 shopper: ShopperModel | None = None, catalog_support: CatalogSupport | None = None, *,
                 num_workers: int, start_method: str | None = None, timeout: float = TIMEOUT) -> None:
        for name, value in (("num_envs", num_envs), ("num_workers", num_workers)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        check_shardable(config, int(num_workers))
        methods = mp.get_all_start_methods()
        start_method = start_method or ("fork" if "fork" in methods else "spawn")
        if start_method not in methods:
            raise ValueError(f"start_method must be one of {methods}, got {start_method!r}")
        self.config, self.num_envs = config, int(num_envs)
        self.num_candidates, self.slate_size = config.num_candidates, config.slate_size
        self.bounds = shard_bounds(self.num_envs, int(num_workers), self.slate_size)
        self.num_workers = len(self.bounds) - 1
        if self.num_workers < num_workers:
            warnings.warn(f"num_workers={num_workers} for num_envs={num_envs}: {self.num_workers} worker(s) run, "
                          f"shards of {ROW_ALIGN}-row multiples above the DNN's kernel threshold (ecomsim.shards)",
                          stacklevel=2)
        self._workers = w = _Workers(timeout)
        self._finalizer = weakref.finalize(self, w.shutdown)  # at close(), garbage collection or interpreter exit
        try:
            self._start(mp.get_context(start_method), config, catalog, shopper, catalog_support)
        except BaseException:
            w.shutdown()  # a worker that failed to start: stop the others now, not at garbage collection
            raise
        self._arrays = self._shared.views(w.shm.buf)
        self._session = _SessionTotals(self, {n: self._arrays[f"session.{n}"] for n in MIRRORED})
        self._pending: list[list[tuple[np.ndarray, np.ndarray | None]]] = [[] for _ in range(self.num_workers)]

    def _start(self, ctx, config: EnvConfig, catalog: Catalog | None, shopper: ShopperModel | None,
               catalog_support: CatalogSupport | None) -> None:
        """Start the workers, wait until each has built its core, then share the arrays with them."""
        w = self._workers
        if hasattr(resource_tracker, "ensure_running"):
            resource_tracker.ensure_running()  # before forking: workers share the parent's tracker, not one each
        fork = ctx.get_start_method() == "fork"
        for i, (lo, hi) in enumerate(zip(self.bounds, self.bounds[1:])):
            parent_end, child_end = ctx.Pipe()
            spec = WorkerSpec(i, lo, hi, config, catalog, shopper, catalog_support)
            proc = ctx.Process(target=serve, args=(child_end, spec, [*w.conns, parent_end] if fork else []),
                               daemon=True, name=f"ecomsim-shard-{i}")
            proc.start()
            child_end.close()
            w.procs.append(proc)
            w.conns.append(parent_end)
        self.pids = [p.pid for p in w.procs]
        self.layout, self.catalog = w.receive(set(range(self.num_workers)))[0]  # each reports its core built
        self._shared = SharedArrays(self.num_envs, self.slate_size, self.layout.obs_dim)
        w.shm = shared_memory.SharedMemory(create=True, size=self._shared.nbytes)
        self.shm_name = w.shm.name
        w.ask({i: (w.shm.name, self._shared) for i in range(self.num_workers)})

    # ------------------------------------------------------------ plumbing
    def _split(self, rows: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """``(worker, positions in rows, local rows)`` for the workers that hold some of ``rows``."""
        if np.all(rows[1:] > rows[:-1]):  # sorted (the env views' rows are): one cut per shard
            cuts = np.searchsorted(rows, self.bounds)
            return [(w, np.arange(a, b), rows[a:b] - self.bounds[w])
                    for w, (a, b) in enumerate(zip(cuts, cuts[1:])) if b > a]
        shard = np.searchsorted(self.bounds, rows, side="right") - 1
        out = []
        for w in np.unique(shard).tolist():
            pos = np.flatnonzero(shard == w)
            out.append((w, pos, rows[pos] - self.bounds[w]))
        return out

    def _run(self, action: str | None, args: Any = None, only: set[int] | None = None) -> dict[int, Any]:
        todo = range(self.num_workers) if only is None else only
        msgs = {w: ("run", self._pending[w], action, args if not callable(args) else args(w))
                for w in todo if action is not None or self._pending[w]}
        for w in msgs:
            self._pending[w] = []
        return self._workers.ask(msgs) if msgs else {}

    def _open(self) -> dict[str, np.ndarray]:
        """The shared arrays, or a :class:`WorkerError` once the env is closed."""
        if self._workers.closed:
            raise WorkerError(CLOSED)
        return self._arrays

    def _rows(self, rows: np.ndarray | None) -> np.ndarray:
        rows = np.arange(self.num_envs) if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(rows) and (rows.min() < 0 or rows.max() >= self.num_envs):
            raise ValueError(f"rows must be session indexes in [0, {self.num_envs - 1}], got {rows[:5].tolist()}")
        return rows

    # -------------------------------------------------------------- a core
    def reset(self, idx: np.ndarray, keys: np.ndarray | None = None, portraits: Any = None) -> None:
        """As :meth:`SimulationCore.reset` (without ``portraits``); runs with the next call that needs the workers."""
        if portraits is not None:
            raise ValueError("portraits cannot be given to a sharded core (num_workers > 1); use num_workers=1")
        idx = self._rows(idx)
        if keys is not None:
            keys = np.ascontiguousarray(keys, dtype=np.uint64).reshape(-1)
            if len(keys) != len(idx):
                raise ValueError(f"keys must hold one stream key per session, {len(idx)}, got {len(keys)}")
        for w, pos, local in self._split(idx):
            self._pending[w].append((local, None if keys is None else keys[pos]))

    def step(self, slots: np.ndarray, skip: np.ndarray | None = None, observe: bool = True) -> StepOutcome:
        """As :meth:`SimulationCore.step`: every shard steps at once; the outcome is copied out of shared memory."""
        a = self._open()
        a["slots"][...] = slots
        if skip is not None:
            a["skip"][...] = skip
        has_obs = self._run("step", (skip is not None, observe))
        return StepOutcome(**{name: a[name].copy() for name in OUTCOME_NAMES},
                           obs=a["obs"].copy() if all(has_obs.values()) else None)

    def observe(self, rows: np.ndarray | None = None) -> np.ndarray:
        """``(len(rows), obs_dim)`` float32 observations of sessions ``rows`` (all when None)."""
        obs = self._open()["obs"]
        if rows is None:
            self._run("observe", None)
            return obs.copy()
        rows = self._rows(rows)
        parts = {w: local for w, _, local in self._split(rows)}
        self._run("observe", lambda w: parts.get(w, rows[:0]), only={w for w in range(self.num_workers)
                                                                     if w in parts or self._pending[w]})
        return obs[rows]

    @property
    def session(self) -> "_SessionTotals":
        """The session totals (``step_count``, ``clicks``, ...), current; other session arrays on request."""
        self._open()
        self._run(None)
        return self._session

    @property
    def candidates(self) -> np.ndarray:
        return self.session.candidates

    @property
    def step_count(self) -> np.ndarray:
        return self.session.step_count

    def set_catalog(self, catalog: Catalog) -> None:
        """As :meth:`SimulationCore.set_catalog`: one catalog, drawn by the parent, sent to every worker."""
        self._run(None)
        self._workers.ask({w: ("catalog", catalog) for w in range(self.num_workers)})
        self.catalog = catalog

    def session_array(self, name: str) -> np.ndarray:
        """A copy of the session array ``name`` (a field of the ``session`` block) over all shards."""
        self._run(None)
        replies = self._workers.ask({w: ("get", name) for w in range(self.num_workers)})
        return np.concatenate([replies[w] for w in range(self.num_workers)])

    def set_session(self, name: str, rows: np.ndarray, value: Any) -> None:
        """``session.<name>[rows] = value`` in the workers (numpy's broadcasting, as on one core)."""
        rows = self._rows(rows)
        full = self.session_array(name)
        full[rows] = value
        self._workers.ask({w: ("set", name, local, full[rows[pos]]) for w, pos, local in self._split(rows)})

    # ----------------------------------------------------------- lifetime
    def close(self) -> None:
        """Stop the workers and unlink the shared memory (idempotent; also at exit and garbage collection)."""
        self._arrays = {}
        self._session = None  # type: ignore[assignment]
        self._finalizer()

    @property
    def closed(self) -> bool:
        return self._workers.closed

    def __enter__(self) -> "ShardedCore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"a sharded core (num_workers > 1) has no {name!r}: the sessions' state lives in the "
                             "worker processes; use num_workers=1 to reach it")


class _SessionTotals:
    """The mirrored session totals as arrays over shared memory; any other session array is fetched."""

    def __init__(self, core: ShardedCore, arrays: dict[str, np.ndarray]) -> None:
        self._sharded = core
        self.__dict__.update(arrays)

    def __getattr__(self, name: str) -> np.ndarray:
        if name.startswith("__"):  # copy, pickle and friends probing for hooks
            raise AttributeError(name)
        return self._sharded.session_array(name)

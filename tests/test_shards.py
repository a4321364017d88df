"""The sharded vector env (``ecomsim.shards``) is the one-process env bit for bit, and cleans up after itself."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import ecomsim  # noqa: F401  (registers the ids)
from ecomsim.assembly import build_core
from ecomsim.envs import EcomVectorEnv
from ecomsim.shards import ROW_ALIGN, ShardedCore, WorkerError, check_shardable, shard_bounds
from ecomsim.shoppers.behavior import KERNEL_MAX_ROWS
from ecomsim.sim.streams import keys_from_seeds

ROOT = Path(__file__).resolve().parents[1]
threadpool_limits(1)  # the workers run one BLAS thread; so does this process (the torch forward's rows then agree)


def _actions(env, rng: np.random.Generator) -> np.ndarray:
    space = env.single_action_space
    if isinstance(space, gym.spaces.Discrete):
        return rng.integers(0, space.n, size=env.num_envs)
    return rng.integers(0, space.nvec, size=(env.num_envs, *space.nvec.shape))


def _trajectory(env, steps: int, seed: int = 7) -> list[tuple]:
    rng = np.random.default_rng(1)
    out = [env.reset(seed=seed)]
    for t in range(steps):
        if t == steps // 2:
            out.append(env.reset())  # an unseeded reset mid-run: keys derived from the streams
        out.append(env.step(_actions(env, rng)))
    return out


def _assert_same(a: list[tuple], b: list[tuple]) -> None:
    assert len(a) == len(b)
    for t, (x, y) in enumerate(zip(a, b)):
        for u, v in zip(x, y):
            if isinstance(u, dict):
                assert u.keys() == v.keys(), t
                for key in u:
                    np.testing.assert_array_equal(u[key], v[key], err_msg=f"step {t} info[{key!r}]")
                    assert u[key].dtype == v[key].dtype, (t, key)
            else:
                np.testing.assert_array_equal(u, v, err_msg=f"step {t}")
                assert np.asarray(u).dtype == np.asarray(v).dtype


@pytest.mark.parametrize("env_id", ["ecomsim/Recommend-v0", "ecomsim/Slate-v0"])
@pytest.mark.parametrize("user_model", ["reference", "dnn"])
def test_uneven_shards_equal_one_process(env_id: str, user_model: str) -> None:
    """10 sessions in shards of 3, 3 and 4 rows, 300 steps, sessions of at most 6 steps (many autoresets)."""
    kw = dict(num_envs=10, user_model=user_model, max_steps=6)
    one = gym.make_vec(env_id, **kw)
    with gym.make_vec(env_id, num_workers=3, **kw) as sharded:
        assert sharded.unwrapped.core.bounds == [0, 3, 6, 10]
        a, b = _trajectory(one, 300), _trajectory(sharded, 300)
    _assert_same(a, b)
    ends = sum(int(np.sum(step[2] | step[3])) for step in a[1:] if len(step) == 5)
    assert ends > 300  # autoresets did happen, in every shard


def test_torch_forward_shards_equal_one_process() -> None:
    """400 DNN sessions run the torch forward (above KERNEL_MAX_ROWS rows): aligned shards keep it exact."""
    kw = dict(num_envs=400, user_model="dnn", max_steps=8)
    one = gym.make_vec("ecomsim/Recommend-v0", **kw)
    with gym.make_vec("ecomsim/Recommend-v0", num_workers=2, **kw) as sharded:
        assert sharded.unwrapped.core.bounds == [0, 192, 400]
        _assert_same(_trajectory(one, 60), _trajectory(sharded, 60))


def test_gan_catalogs_are_drawn_once_for_every_worker() -> None:
    kw = dict(num_envs=6, catalog="gan", num_items=300, max_steps=5, user_model="reference")
    one = gym.make_vec("ecomsim/Recommend-v0", **kw)
    with gym.make_vec("ecomsim/Recommend-v0", num_workers=2, **kw) as sharded:
        for seed in (3, 4):
            _assert_same(_trajectory(one, 30, seed), _trajectory(sharded, 30, seed))
            assert one.unwrapped.catalog_seed == sharded.unwrapped.catalog_seed
            np.testing.assert_array_equal(one.unwrapped.core.catalog.price, sharded.unwrapped.core.catalog.price)


def test_spawned_workers_equal_one_process() -> None:
    """Where fork is missing, workers are spawned (they import ecomsim themselves): the same steps, core to core."""
    config = ecomsim.EnvConfig(user_model="reference", max_steps=5)
    one = build_core(config, 4)
    rng = np.random.default_rng(0)
    with ShardedCore(config, 4, num_workers=2, start_method="spawn") as sharded:
        for core in (one, sharded):
            core.reset(np.arange(4), keys_from_seeds([0, 1, 2, 3]))
        np.testing.assert_array_equal(one.observe(), sharded.observe())
        for _ in range(30):
            slots = rng.integers(0, 20, size=(4, 1))
            a, b = one.step(slots), sharded.step(slots)
            for name, value in vars(a).items():
                np.testing.assert_array_equal(value, getattr(b, name), err_msg=name)
            done = np.flatnonzero(a.terminated | a.truncated)
            one.reset(done)
            sharded.reset(done)
        np.testing.assert_array_equal(one.observe(), sharded.observe())
        np.testing.assert_array_equal(one.session.revenue, sharded.session.revenue)


def test_bounds_are_aligned_above_the_kernel_threshold() -> None:
    assert shard_bounds(10, 3, 1) == [0, 3, 6, 10]
    assert shard_bounds(5, 8, 1) == [0, 1, 2, 3, 4, 5]  # never an empty shard
    for n, w, k in [(4096, 2, 1), (4096, 3, 1), (4096, 16, 1), (1000, 4, 5), (16384, 7, 1)]:
        b = shard_bounds(n, w, k)
        assert b[0] == 0 and b[-1] == n and len(b) == w + 1
        assert all(x % ROW_ALIGN == 0 for x in b[1:-1])
        assert all((hi - lo) * k > KERNEL_MAX_ROWS for lo, hi in zip(b, b[1:]))
    assert shard_bounds(300, 2, 1) == [0, 300]  # 300 rows cannot make two aligned shards over the threshold
    with pytest.warns(UserWarning, match="1 worker"):
        with ShardedCore(ecomsim.EnvConfig(user_model="reference"), 300, num_workers=2) as core:
            assert core.num_workers == 1


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "2"])
def test_bad_num_workers_is_named(bad) -> None:
    with pytest.raises(ValueError, match="num_workers must be a positive integer"):
        EcomVectorEnv(num_envs=4, num_workers=bad, user_model="reference")


def test_shared_state_options_refuse_sharding() -> None:
    with pytest.raises(ValueError, match="num_workers=2 cannot be combined with inventory"):
        check_shardable(SimpleNamespace(inventory=True), 2)
    check_shardable(SimpleNamespace(inventory=True), 1)
    check_shardable(ecomsim.EnvConfig(), 4)


def _gone(core: ShardedCore) -> tuple[bool, bool]:
    """(every worker has exited, the shared segment is unlinked)."""
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(p) for p in core.pids):
        time.sleep(0.05)
    return not any(_alive(p) for p in core.pids), not Path("/dev/shm", core.shm_name.lstrip("/")).exists()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie has exited


@pytest.mark.skipif(not Path("/proc").exists() or not Path("/dev/shm").exists(), reason="needs Linux /proc and /dev/shm")
def test_close_ends_workers_and_unlinks_memory() -> None:
    env = gym.make_vec("ecomsim/Recommend-v0", num_envs=6, num_workers=2, user_model="reference")
    env.reset(seed=0)
    env.step(np.zeros(6, dtype=np.int64))
    core = env.unwrapped.core
    assert Path("/dev/shm", core.shm_name.lstrip("/")).exists()
    env.close()
    env.close()  # idempotent
    assert _gone(core) == (True, True)
    with pytest.raises(WorkerError, match="closed"):
        core.step(np.zeros((6, 1), dtype=np.int64))


@pytest.mark.skipif(not Path("/proc").exists(), reason="needs Linux /proc and /dev/shm")
@pytest.mark.parametrize("ending", ["exit", "sigkill"])
def test_no_orphans_when_the_parent_ends_without_close(ending: str) -> None:
    """A script that never closes its env (or is killed) leaves no worker process and no shared segment."""
    script = textwrap.dedent(f"""
        import os, signal, sys
        import gymnasium as gym, ecomsim
        env = gym.make_vec("ecomsim/Recommend-v0", num_envs=4, num_workers=2, user_model="reference")
        env.reset(seed=0)
        core = env.unwrapped.core
        print(core.shm_name, *core.pids, flush=True)
        if {ending!r} == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    name, *pids = proc.stdout.split()
    fake = SimpleNamespace(pids=[int(p) for p in pids], shm_name=name)
    assert _gone(fake)[0], "worker processes outlived their parent"
    deadline = time.time() + 10  # after a SIGKILL the resource tracker unlinks the segment once the workers are gone
    while time.time() < deadline and Path("/dev/shm", name.lstrip("/")).exists():
        time.sleep(0.1)
    assert not Path("/dev/shm", name.lstrip("/")).exists(), "shared memory leaked"
    if ending == "exit":
        assert proc.returncode == 0, proc.stderr
        assert "leaked" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_a_dead_worker_is_a_clear_error_not_a_hang() -> None:
    env = gym.make_vec("ecomsim/Recommend-v0", num_envs=6, num_workers=2, user_model="reference")
    env.reset(seed=0)
    core = env.unwrapped.core
    os.kill(core.pids[1], signal.SIGKILL)
    t0 = time.time()
    with pytest.raises(WorkerError, match=r"worker 1 \(pid \d+\) died with exit code -9"):
        env.step(np.zeros(6, dtype=np.int64))
    assert time.time() - t0 < 30
    assert _gone(core) == (True, True)  # the others are stopped, the memory released


def test_an_error_in_a_worker_is_raised_in_the_parent() -> None:
    with EcomVectorEnv(num_envs=4, num_workers=2, user_model="reference") as env:
        env.reset(seed=0)
        small = env.core.catalog.subset(slice(0, 10))  # fewer items than num_candidates=20
        with pytest.raises(ValueError, match="fewer than num_candidates") as info:
            env.core.set_catalog(small)
        assert "in worker 0" in str(info.value.__cause__)
        env.reset(seed=0)  # the env goes on
        env.step(np.zeros(4, dtype=np.int64))


def test_session_arrays_read_and_write_across_shards() -> None:
    one = EcomVectorEnv(num_envs=5, user_model="reference")
    with EcomVectorEnv(num_envs=5, num_workers=2, user_model="reference") as env:
        one.reset(seed=2)
        env.reset(seed=2)
        np.testing.assert_array_equal(env.core.candidates, one.core.candidates)
        np.testing.assert_array_equal(env.core.observe([4, 0, 3]), one.core.observe([4, 0, 3]))
        env.core.set_session("step_count", np.array([1, 4]), [7, 9])
        np.testing.assert_array_equal(env.core.session.step_count, [0, 7, 0, 0, 9])
        with pytest.raises(AttributeError, match="sharded core .* has no 'state'"):
            env.core.state  # noqa: B018
        with pytest.raises(AttributeError, match="session block has no array 'restart'"):
            env.core.session.restart  # noqa: B018


def test_a_worker_that_cannot_start_is_an_error_and_no_orphan(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_catalog.npz"
    with pytest.raises(FileNotFoundError, match="no_such_catalog") as info:
        EcomVectorEnv(num_envs=4, num_workers=2, user_model="reference", catalog=str(missing))
    assert "in worker 0" in str(info.value.__cause__)
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("ecomsim-shard")]


def test_a_worker_that_stops_answering_times_out() -> None:
    """A live worker that never answers (here: stopped with SIGSTOP) is an error after ``timeout``, not a hang."""
    config = ecomsim.EnvConfig(user_model="reference")
    core = ShardedCore(config, 4, num_workers=2, timeout=2.0)
    core.reset(np.arange(4), keys_from_seeds([0, 1, 2, 3]))
    os.kill(core.pids[0], signal.SIGSTOP)
    with pytest.raises(WorkerError, match=r"worker 0 \(pid \d+\) gave no answer in 2 s"):
        core.step(np.zeros((4, 1), dtype=np.int64))
    assert _gone(core) == (True, True)  # stopped or not, every worker is ended and the memory released

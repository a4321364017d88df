"""Counter-based random streams, one per session, drawn for all sessions at once.

Why not one ``np.random.Generator`` for the batch: then sub-env ``i`` of a vector
env would depend on what every other sub-env drew, so a vector env could never
equal ``N`` single envs (nor SB3's ``DummyVecEnv``) step by step. Instead each
session ``i`` owns a 64-bit key and a counter; its ``j``-th number is
``splitmix64(mix64(key_i) + (counter_i + j) * GOLDEN)`` (the key is hashed first so
that structured keys, e.g. consecutive integers, still give unrelated streams). That is a pure function of the
session's own key, drawn for the whole batch by one compiled loop (``ecomsim.sim.kernels``).

Keys come from the env's ``np_random`` (so ``reset(seed=...)`` reproduces a run
bit for bit); a reset without a seed derives the next key from the previous one.
"""

from __future__ import annotations

import math

import numpy as np

from ecomsim.sim import kernels
from ecomsim.sim.state import RNG

#: ``|z| <= NORMAL_BOUND`` for every draw of :meth:`SessionStreams.normal`: its uniforms are at most
#: ``1 - 2**-53``, so ``sqrt(-2 log(1 - u))`` is at most this (the population's supports derive from it)
NORMAL_BOUND = math.sqrt(-2.0 * math.log1p(-(1.0 - 2.0**-53)))


def key_from_generator(gen: np.random.Generator, size: int | None = None) -> np.ndarray:
    """Draw stream keys from a numpy generator (the env's ``np_random``)."""
    return gen.integers(0, np.iinfo(np.uint64).max, size=size, dtype=np.uint64, endpoint=True)


def keys_from_seeds(seeds: list[int]) -> np.ndarray:
    """The stream key a single env reset with each seed would draw first (Gymnasium's seeding)."""
    from gymnasium.utils import seeding

    keys = np.empty(len(seeds), dtype=np.uint64)
    for i, s in enumerate(seeds):
        gen, _ = seeding.np_random(int(s))
        keys[i] = key_from_generator(gen)
    return keys


class SessionStreams:
    """Per-session random streams for ``num_envs`` sessions.

    Attributes:
        rng: the ``rng`` block of ``ecomsim.sim.state``: ``key`` (stream keys), ``base``
            (``mix64(key)``, the starting state) and ``counter`` (numbers drawn so far),
            each ``(num_envs,)`` uint64; ``key``, ``base``, ``counter`` name the same arrays.

    The draws themselves run in ``ecomsim.sim.kernels.draw`` (one compiled loop; the core's
    step kernels draw from ``base`` and ``counter`` the same way).
    """

    def __init__(self, num_envs: int) -> None:
        self.rng = RNG.allocate({"num_envs": num_envs})
        self.key, self.base, self.counter = self.rng.bundle
        self._all = np.arange(num_envs, dtype=np.int64)

    def set_keys(self, idx: np.ndarray, keys: np.ndarray) -> None:
        keys = np.ascontiguousarray(keys, dtype=np.uint64).reshape(-1)
        base = np.empty_like(keys)
        kernels.mix_keys(keys, base)  # mix64(keys)
        self.key[idx] = keys
        self.base[idx] = base
        self.counter[idx] = 0

    def next_keys(self, idx: np.ndarray) -> np.ndarray:
        """Keys for a new episode without a seed: ``mix64(key ^ mix64(counter + GOLDEN))``, a hash of the
        finished episode's stream."""
        rows = np.asarray(idx, dtype=np.int64).reshape(-1)
        out = np.empty(len(rows), dtype=np.uint64)
        kernels.next_keys(self.key, self.counter, rows, out)
        return out

    def uniform(self, m: int, idx: np.ndarray | None = None) -> np.ndarray:
        """``(len(idx), m)`` uniforms in [0, 1) from the streams ``idx`` (all when None), advancing them by ``m``.

        The ``j``-th number of stream ``i`` is ``(mix64(base_i + (counter_i + j) * GOLDEN) >> 11) / 2**53``.
        """
        rows = self._all if idx is None else np.asarray(idx, dtype=np.int64)
        out = np.empty((len(rows), m))
        kernels.draw(self.base, self.counter, rows, m, out)
        return out

    def side_uniform(self, idx: np.ndarray, salt: int) -> np.ndarray:
        """``(len(idx),)`` one uniform in [0, 1) per session from a side stream of its key: ``(mix64(key ^ salt)
        >> 11) / 2**53``. Its own stream: the session's counter does not move, so an option that draws here
        (an ensemble member per session) leaves every other draw of the session as it was."""
        keys = self.key[np.asarray(idx, dtype=np.int64)] ^ np.uint64(salt)
        out = np.empty_like(keys)
        kernels.mix_keys(keys, out)
        return (out >> np.uint64(11)).astype(np.float64) * 2.0**-53

    def normal(self, m: int, idx: np.ndarray | None = None) -> np.ndarray:
        """``(len(idx), m)`` standard normals (Box-Muller, two uniforms each)."""
        u = self.uniform(2 * m, idx)
        u1, u2 = u[:, :m], u[:, m:]
        return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)


def categorical_cdf(probs: np.ndarray) -> np.ndarray:
    """The normalised cumulative distribution of a 1-d probability vector (``kernels.categorical`` draws from it)."""
    cdf = np.cumsum(probs)
    cdf /= cdf[-1]
    return cdf

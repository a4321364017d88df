"""Counter-based random streams, one per session, drawn for all sessions at once.

Why not one ``np.random.Generator`` for the batch: then sub-env ``i`` of a vector
env would depend on what every other sub-env drew, so a vector env could never
equal ``N`` single envs (nor SB3's ``DummyVecEnv``) step by step. Instead each
session ``i`` owns a 64-bit key and a counter; its ``j``-th number is
``splitmix64(mix64(key_i) + (counter_i + j) * GOLDEN)`` (the key is hashed first so
that structured keys, e.g. consecutive integers, still give unrelated streams). That is a pure function of the
session's own key, evaluated for the whole batch in a dozen numpy calls.

Keys come from the env's ``np_random`` (so ``reset(seed=...)`` reproduces a run
bit for bit); a reset without a seed derives the next key from the previous one.
"""

from __future__ import annotations

import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TO_UNIT = 1.0 / float(1 << 53)
SINGLE_BLOCK = 1024  # numbers a single-session stream draws ahead (see SessionStreams)


def mix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser on a uint64 array (wrapping arithmetic, new array)."""
    x = x ^ (x >> _S30)
    x *= _M1
    x ^= x >> _S27
    x *= _M2
    x ^= x >> _S31
    return x


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
        key: ``(num_envs,)`` uint64 stream keys.
        counter: ``(num_envs,)`` uint64 numbers drawn so far in each stream.
    """

    def __init__(self, num_envs: int) -> None:
        self.key = np.zeros(num_envs, dtype=np.uint64)
        self._base = np.zeros(num_envs, dtype=np.uint64)  # mix64(key): the stream's starting state
        self.counter = np.zeros(num_envs, dtype=np.uint64)
        self._offsets: dict[int, np.ndarray] = {}
        # A single stream draws SINGLE_BLOCK numbers ahead: the stream is a pure function
        # of (key, counter), so serving slices of the block is bit-identical to drawing
        # them one call at a time, and a single env pays one mix64 pass per ~20 steps.
        self._single = num_envs == 1
        self._block: np.ndarray | None = None  # (1, SINGLE_BLOCK) read-only uniforms
        self._block_start = 0  # counter of the block's first number

    def set_keys(self, idx: np.ndarray, keys: np.ndarray) -> None:
        self.key[idx] = keys
        self._base[idx] = mix64(np.asarray(keys, dtype=np.uint64))
        self.counter[idx] = 0
        self._block = None

    def next_keys(self, idx: np.ndarray) -> np.ndarray:
        """Keys for a new episode without a seed: a hash of the finished episode's stream."""
        return mix64(self.key[idx] ^ mix64(self.counter[idx] + GOLDEN))

    def _offset(self, m: int) -> np.ndarray:
        off = self._offsets.get(m)
        if off is None:
            off = np.arange(m, dtype=np.uint64) * GOLDEN
            self._offsets[m] = off
        return off

    def uniform(self, m: int, idx: np.ndarray | None = None) -> np.ndarray:
        """``(len(idx), m)`` uniforms in [0, 1) from the streams ``idx`` (all when None), advancing them by ``m``.

        The result may be a read-only view: copy it before writing into it.
        """
        if self._single and m <= SINGLE_BLOCK:
            return self._uniform_single(m)
        if idx is None:
            base = self._base + self.counter * GOLDEN
            self.counter += np.uint64(m)
        else:
            base = self._base[idx] + self.counter[idx] * GOLDEN
            self.counter[idx] += np.uint64(m)
        x = mix64(base[:, None] + self._offset(m))
        return (x >> _S11).astype(np.float64) * _TO_UNIT

    def _uniform_single(self, m: int) -> np.ndarray:
        """``(1, m)`` uniforms of the only stream, served from its block (the same numbers ``uniform`` draws)."""
        c = int(self.counter[0])
        s = c - self._block_start
        block = self._block
        if block is None or s < 0 or s + m > SINGLE_BLOCK:
            base = self._base + self.counter * GOLDEN
            block = (mix64(base[:, None] + self._offset(SINGLE_BLOCK)) >> _S11).astype(np.float64) * _TO_UNIT
            block.flags.writeable = False
            self._block, self._block_start, s = block, c, 0
        self.counter += np.uint64(m)
        return block[:, s : s + m]

    def normal(self, m: int, idx: np.ndarray | None = None) -> np.ndarray:
        """``(len(idx), m)`` standard normals (Box-Muller, two uniforms each)."""
        u = self.uniform(2 * m, idx)
        u1, u2 = u[:, :m], u[:, m:]
        return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)


class InverseCDF:
    """``np.searchsorted(cdf, u, side="right")`` for a fixed ``cdf`` and ``u`` in [0, 1), several times faster.

    Why: a binary search per draw costs ~80 ns of branch misses; the core draws
    ``(num_envs, n_popular)`` popular items every step. The unit interval is cut into
    ``BUCKETS`` (a power of two, so ``floor(u * BUCKETS)`` is exact) and each bucket
    stores the search result at both of its ends; a draw in a bucket whose ends agree
    takes that result (the search is monotone in ``u``), the rest (buckets holding a
    cdf value, at most ``len(cdf)`` of them) are searched. Same indices, bit for bit.
    """

    BUCKETS = 4096

    def __init__(self, cdf: np.ndarray) -> None:
        self.cdf = np.asarray(cdf, dtype=np.float64)
        edges = np.arange(self.BUCKETS + 1, dtype=np.float64) / self.BUCKETS
        self._low = np.searchsorted(self.cdf, edges[:-1], side="right")
        high = np.searchsorted(self.cdf, np.nextafter(edges[1:], 0.0), side="right")
        self._exact = self._low == high

    def __call__(self, u: np.ndarray) -> np.ndarray:
        bucket = (u * self.BUCKETS).astype(np.int64)
        out = np.take(self._low, bucket)
        ambiguous = ~np.take(self._exact, bucket)
        if ambiguous.any():
            out[ambiguous] = np.searchsorted(self.cdf, u[ambiguous], side="right")
        return out


def categorical(u: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw: ``u`` of any shape, ``probs`` a 1-d probability vector -> indices."""
    cdf = np.cumsum(probs)
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(probs) - 1)

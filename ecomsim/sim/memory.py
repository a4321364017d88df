"""Memory an env needs, estimated from the declared state before anything large is allocated.

A configuration that cannot fit (``make_vec(num_envs=10**9)``, ``catalog="gan"`` with
``num_items=10**7``) is refused with one line naming the option, the estimate and the memory
available, instead of allocating until numpy or torch fails. The env views call
:func:`check_env` before they build their core (``ecomsim.assembly.build_core``); ``agents.memory``
adds Stable-Baselines3's buffers to :func:`session_bytes` for training runs.

The estimate, per session and per item (bytes):

* **held**: the arrays of ``ecomsim.sim.state``, from the declared blocks (``BlockSpec.nbytes``,
  exact): ``session``, ``portrait``, ``rng`` and the shopper model's blocks (the DNN's
  ``tracker``) per session; ``item_table`` and the retrieval's item marker per item, plus the
  catalog's own columns; what the shopper model holds besides
  (``ShopperModel.memory_bytes``); and what the env view holds per session (:class:`ViewBytes`:
  a vector env's batched observation space keeps a low and a high bound per session, two
  observations' worth);
* **handed out**: each step's observation, ``outcome`` block and the info's session totals
  (fresh arrays), twice: the caller still holds the last step's while the next is made;
* **temporaries**, the larger of a reset's and a step's: a reset draws portraits and picks each
  session's retrieval pool by scoring its noisy interest against every anchor
  (``NUM_ANCHORS`` float64 per session); a step, the shopper model's temporaries (the DNN's
  torch forward above ``KERNEL_MAX_ROWS`` rows). Per item, building the retrieval tables scores
  every item against every anchor (``NUM_ANCHORS`` float64 per item) next to a float64 copy of
  the embeddings. A ``catalog="gan"`` env builds a new catalog's tables at a seeded reset while
  it still holds the old ones (twice the held bytes per item); the generator's draw
  (:data:`GAN_DRAW_BYTES_PER_ITEM`) ends before the build starts, so the larger of the two counts.

``python3 -m ecomsim.sim.memory`` prints the estimate next to the growth of the peak RSS of a
few configurations built, reset and stepped in fresh processes; on the 2-core machine the
estimate was 1.18x and 1.14x the measured peak of a 100,000-session vector env (reference
world, DNN shoppers), 1.01x that of a 400,000-item ``catalog="gan"`` env reset twice, and
1.34x that of a 400,000-item generator draw.

:func:`available_bytes` is ``MemAvailable`` of ``/proc/meminfo``, capped by a cgroup
(container) limit and by an address-space limit (``ulimit -v``) less what the process
already maps; where none can be read, nothing is refused.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ecomsim.sim import retrieval
from ecomsim.sim.observation import feature_counts
from ecomsim.sim.state import ITEM_TABLE, OUTCOME, PORTRAIT, RETRIEVAL, RNG, SESSION, sizes
from ecomsim.sim.stock import STOCK_PARAMS

if TYPE_CHECKING:
    from ecomsim.config import EnvConfig
    from ecomsim.shoppers.base import ShopperModel

KIB, MIB, GIB, TIB = 1 << 10, 1 << 20, 1 << 30, 1 << 40
#: peak bytes per item of a draw from the shipped catalog generator, rounded up (measured 1.5 KB at 400,000
#: items: ``python3 -m ecomsim.sim.memory``, its ``draw`` line)
GAN_DRAW_BYTES_PER_ITEM = 2048
#: a ``Catalog``'s columns per item: item_id, category (int64), price, quality, popularity (float64); its
#: float32 embedding comes on top (``ecomsim.catalog``)
CATALOG_COLUMN_BYTES = 5 * 8
#: the info's session totals (``ecomsim.envs.SESSION_KEYS``), one int64 or float64 each
SESSION_TOTALS = 6


def available_bytes() -> int | None:
    """Memory this process can still take: ``MemAvailable``, capped by cgroup and ``ulimit -v`` limits; ``None`` when
    unknown."""
    avail = _rlimit_room()
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
                avail = free if avail is None else min(avail, free)
    except (OSError, ValueError):
        pass
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit, usage = Path(limit_file).read_text().strip(), int(Path(usage_file).read_text())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 1 << 60:
            room = max(0, int(limit) - usage)
            avail = room if avail is None else min(avail, room)
        break
    return avail


def _rlimit_room() -> int | None:
    """Address space left under ``RLIMIT_AS`` (``ulimit -v``), or ``None`` when unlimited or unknown."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit == resource.RLIM_INFINITY:
            return None
        mapped = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
        return max(0, limit - mapped)
    except (ImportError, OSError, ValueError):
        return None


def show_bytes(n: float) -> str:
    """``n`` bytes for people: ``"3.2 GiB"``."""
    for unit, size in (("TiB", TIB), ("GiB", GIB), ("MiB", MIB)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n / MIB:.2f} MiB"


@dataclass
class Estimate:
    """Bytes by part (``{"10,000 sessions x 7.9 KB": 79e6, ...}``)."""

    parts: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return float(sum(self.parts.values()))

    def __str__(self) -> str:
        return f"{show_bytes(self.total)} (" + ", ".join(f"{k} {show_bytes(v)}" for k, v in self.parts.items()) + ")"


@dataclass(frozen=True)
class ViewBytes:
    """What an env view holds per session besides the core: ``fixed`` bytes plus ``observations`` arrays the size
    of one observation (a vector env's batched observation space: its low and high bounds, 2)."""

    fixed: int = 0
    observations: float = 0.0


@dataclass(frozen=True)
class CatalogDims:
    """What the estimate needs to know of the catalogs an env holds (before one is built, for ``catalog="gan"``)."""

    num_items: int
    num_categories: int
    embed_dim: int


def _sizes(config: "EnvConfig", num_envs: int, dims: CatalogDims) -> tuple[dict[str, int], int]:
    """The state's symbolic sizes (retrieval's included) and the observation's bytes."""
    m, k, items = config.num_candidates, config.slate_size, dims.num_items
    _, n_personal = retrieval.candidate_mix(m, config.popular_share, config.personal_share)
    store = config.store_config()
    counts = feature_counts(dims.num_categories, dims.embed_dim, store is not None,
                            store is not None and store.observe_profit)
    table = sizes(num_envs, m, k, items, dims.num_categories, dims.embed_dim,
                  retrieval.pool_size(n_personal, items), counts["item"])
    table.update(popular_pool=min(retrieval.POPULAR_POOL, items), buckets=retrieval.BUCKETS,
                 anchors=min(retrieval.NUM_ANCHORS, items), marks=items + 1,
                 member_rows=num_envs)  # an ensemble's per-session member (counted whether drawn or not)
    stocked = store is not None
    table.update(stocked_envs=num_envs if stocked else 0, stocked_slots=k if stocked else 0,
                 stocked_items=items if stocked else 0, stock_params=len(STOCK_PARAMS) if stocked else 0)
    obs_dim = counts["portrait"] + counts["session"] + m * (counts["item"] + counts["candidate"])
    return table, 4 * obs_dim


def session_bytes(config: "EnvConfig", dims: CatalogDims, shopper: "ShopperModel", view: ViewBytes = ViewBytes()) -> int:
    """Bytes per session of an env of ``config`` with this catalog and shopper model (the module docstring)."""
    table, obs = _sizes(config, 1, dims)
    d, m = dims.embed_dim, config.num_candidates
    model_held, model_step, _ = shopper.memory_bytes(d, m, config.slate_size)
    held = sum(spec.nbytes(table) for spec in (SESSION, PORTRAIT, RNG, *shopper.blocks))
    held += 9 + model_held + view.fixed + int(view.observations * obs)  # + the core's all_rows and no-skip mask
    handed_out = 2 * (obs + OUTCOME.nbytes(table) + 8 * SESSION_TOTALS)
    # a reset: the drawn portraits and their draws (4 uniforms, 3 + d normals, 4 categories), the stream keys,
    # the pool choice (the retrieval noise, the noisy interest, its scores against every anchor) and the
    # first candidates' 2M + 2 uniforms
    reset = (2 * PORTRAIT.nbytes(table) + 8 * (4 + 3 + d + 4) + 16
             + 8 * (2 * d + table["anchors"] + table["pool_size"]) + 8 * (2 * m + 2))
    return held + handed_out + max(reset, model_step)


def item_bytes(config: "EnvConfig", dims: CatalogDims, shopper: "ShopperModel", gan: bool) -> int:
    """Bytes per item of the catalog, its tables and their build (the module docstring)."""
    table, _ = _sizes(config, 0, dims)
    d = dims.embed_dim
    _, _, model_item = shopper.memory_bytes(d, config.num_candidates, config.slate_size)
    one_item = ITEM_TABLE.nbytes(dict(table, num_items=1, stocked_items=min(table["stocked_items"], 1)))
    held = CATALOG_COLUMN_BYTES + 4 * d + one_item + 8 + model_item  # + retrieval's item marker
    # the build: unit-norm float64 embeddings and their norms, the item features' log prices, every anchor's
    # scores, and argpartition's negated scores and indexes for ANCHOR_CHUNK anchors
    build = 8 * (2 * d + 3 + table["anchors"] + 2 * retrieval.ANCHOR_CHUNK)
    return 2 * held + max(build, GAN_DRAW_BYTES_PER_ITEM) if gan else held + build


def env_estimate(config: "EnvConfig", num_envs: int, dims: CatalogDims, shopper: "ShopperModel",
                 view: ViewBytes = ViewBytes(), gan: bool = False) -> Estimate:
    """Bytes an env of ``num_envs`` sessions needs, by part: sessions, items, the fixed retrieval tables."""
    per_session, per_item = session_bytes(config, dims, shopper, view), item_bytes(config, dims, shopper, gan)
    table, _ = _sizes(config, 0, dims)
    return Estimate({
        f"{num_envs:,} session{'s' * (num_envs != 1)} x {per_session / KIB:.1f} KB": num_envs * per_session,
        f"{dims.num_items:,} item{'s' * (dims.num_items != 1)} x {per_item / KIB:.1f} KB": dims.num_items * per_item,
        "retrieval tables": RETRIEVAL.nbytes(dict(table, marks=0)) * (2 if gan else 1),
    })


def check_env(config: "EnvConfig", num_envs: int, dims: CatalogDims, shopper: "ShopperModel",
              view: ViewBytes = ViewBytes(), gan: bool = False, catalog: str | None = None) -> Estimate:
    """The estimate, or a ``ValueError`` naming the option that cannot fit (``num_envs`` or the catalog's size).

    Args:
        config, num_envs, dims, shopper, view, gan: as :func:`env_estimate`.
        catalog: names the catalog in the message when it is not ``config.catalog`` (an in-memory one).
    """
    est = env_estimate(config, num_envs, dims, shopper, view, gan)
    avail = available_bytes()
    if avail is None or est.total <= avail:
        return est
    sessions, items, fixed = est.parts.values()
    if sessions >= items:
        option, per, rest = f"num_envs={num_envs:,}", sessions / num_envs, items + fixed
        lower = "num_envs"
    else:
        name = catalog or f"catalog={config.catalog!r}"
        option = (f"num_items={dims.num_items:,} with {name}" if config.num_items is not None or gan
                  else f"{name} ({dims.num_items:,} items)")
        per, rest, lower = items / dims.num_items, sessions + fixed, "num_items"
    fits = int((avail - rest) / per) if avail > rest else 0
    hint = f"lower {lower} (about {fits:,} would fit)" if fits >= 1 else "the rest of the estimate alone does not fit"
    raise ValueError(f"{option} needs about {est}, but {show_bytes(avail)} of memory is available; {hint}")


# ================================================================ calibration
_PROBE = """
import resource, sys
import numpy as np, gymnasium as gym, ecomsim
from ecomsim.catalog_source import draw_catalog, load_catalog_source
from ecomsim.sim import memory
def peak(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
kind, n, model = sys.argv[1], int(sys.argv[2]), sys.argv[3]
make = lambda size: (gym.make_vec("ecomsim/Recommend-v0", num_envs=size, user_model=model) if kind == "vec"
                     else gym.make("ecomsim/Recommend-v0", num_items=size, catalog="gan", user_model=model))
make(8 if kind == "vec" else 2000).reset(seed=0)  # weights, generator and compiled kernels load outside the figure
base = peak()
if kind == "draw":
    draw_catalog(load_catalog_source(), n, 1, None, None)
    est = n * memory.GAN_DRAW_BYTES_PER_ITEM
else:
    env = make(n)
    env.reset(seed=0)
    for _ in range(3):
        env.step(np.zeros(n, dtype=np.int64) if kind == "vec" else 0)
    if kind == "gan":
        env.reset(seed=1)  # a new catalog's tables built while the old ones are held
    core = env.unwrapped.core
    dims = memory.CatalogDims(core.catalog.num_items, core.catalog.num_categories, core.catalog.embed_dim)
    view = memory.ViewBytes(observations=2) if kind == "vec" else memory.ViewBytes()
    est = memory.env_estimate(core.config, n if kind == "vec" else 1, dims, core.shopper, view, kind == "gan").total
grown = peak() - base
print(f"{kind:>4} {model:>9} {n:>9,}: estimate {est / memory.MIB:7.0f} MiB, peak RSS grew {grown / memory.MIB:7.0f} MiB "
      f"(estimate / measured {est / grown:.2f})")
"""


def _calibrate() -> None:
    """Print the estimate next to the peak-RSS growth of vector envs, ``catalog="gan"`` envs and a generator draw,
    each built, reset and stepped in a fresh process."""
    for kind, n, model in (("vec", 100_000, "reference"), ("vec", 100_000, "dnn"), ("gan", 400_000, "reference"),
                           ("draw", 400_000, "reference")):
        subprocess.run([sys.executable, "-c", _PROBE, kind, str(n), model], check=True)


if __name__ == "__main__":
    _calibrate()

"""Logged episodes as a Minari dataset (Farama's format for offline RL), and back.

A dataset lives under ``<datasets_path>/<dataset_id>/`` (Minari's own layout, HDF5);
nothing is ever downloaded: reads go through ``minari.load_dataset(..., download=False)``
with ``MINARI_DATASETS_PATH`` pointed at ``datasets_path`` for the call only.

Per episode of ``T`` steps (Minari's convention): ``observations`` ``(T + 1, D)``
float32 (the last one is the observation after the final step), ``actions`` ``(T,)``
int64, ``rewards`` / ``terminations`` / ``truncations`` ``(T,)``, and ``infos``, each
key ``(T + 1, ...)``: row 0 is the info ``reset`` gave, row ``t + 1`` the info of step
``t``. The env's per-step info keys (``ecomsim.info.step_info``: ``items``, ``clicked``,
``carted``, ``purchased``, ``clicks``, ``carts``, ``purchases``, ``revenue``, ``left``) are
kept; its ``session_*`` running totals are not (they are cumulative sums of those, and
every key costs an HDF5 dataset per episode: about 1 ms and 4 KB). The step infos also
carry the logging policy's decision at step ``t``:

* ``propensity`` ``(T + 1,)``: probability the logging policy gave ``actions[t]``;
* ``logging_probs`` ``(T + 1, M)``: its whole distribution over the ``M`` candidates;

both NaN in row 0 (no decision before the first observation), so
``infos["propensity"][1:]`` lines up with ``actions``. The dataset metadata holds an
``ecomsim`` entry: env id and options, the logging policy's formula and parameters,
the seed and the number of sessions.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np

DATASETS_PATH_VARIABLE = "MINARI_DATASETS_PATH"  # Minari's own setting of where datasets live
MINARI_HINT = 'minari is not installed: python3 -m pip install "minari[hdf5]>=0.5.4" (or pip install -e ".[offline]")'


def default_dataset_id(env_id: str, user_model: str) -> str:
    """``ecomsim/recommend-<user_model>-logging-v0`` for ``ecomsim/Recommend-v0``."""
    name = env_id.split("/")[-1].rsplit("-v", 1)[0].lower()
    return f"ecomsim/{name}-{user_model}-logging-v0"


def _minari():
    try:
        import minari
    except ImportError as exc:
        raise ImportError(MINARI_HINT) from exc
    return minari


def datasets_path_or_default(path: str | None) -> str | None:
    """``path`` when given, else ``$MINARI_DATASETS_PATH`` (``None`` when that is unset).

    The scripts' ``--datasets-path`` default: Minari users already set the variable, and the
    scripts read no environment variable themselves. A given ``path`` is kept as it is, even
    ``""`` (which the caller then refuses), never replaced by the variable.
    """
    return path if path is not None else os.environ.get(DATASETS_PATH_VARIABLE)


@contextlib.contextmanager
def datasets_root(path: str | Path) -> Iterator[Path]:
    """Point ``MINARI_DATASETS_PATH`` at ``path`` for the duration (restored after)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"datasets_path {str(path)!r} is a file, expected a directory for Minari datasets")
    old = os.environ.get(DATASETS_PATH_VARIABLE)
    os.environ[DATASETS_PATH_VARIABLE] = str(path.resolve())
    try:
        yield path
    finally:
        if old is None:
            os.environ.pop(DATASETS_PATH_VARIABLE, None)
        else:
            os.environ[DATASETS_PATH_VARIABLE] = old


def _episode_buffers(logs) -> Iterator[Any]:
    from minari.data_collector import EpisodeBuffer

    m = logs.logging_probs.shape[1]
    for e in range(logs.num_episodes):
        a, b = int(logs.starts[e]), int(logs.starts[e + 1])
        infos = {k: np.concatenate([logs.reset_infos[k][e : e + 1], v[a:b]]) for k, v in logs.infos.items()
                 if not k.startswith("session_")}
        infos["propensity"] = np.concatenate([[np.nan], logs.propensity[a:b]])
        infos["logging_probs"] = np.concatenate([np.full((1, m), np.nan), logs.logging_probs[a:b]])
        yield EpisodeBuffer(
            id=e,
            observations=np.concatenate([logs.obs[a:b], logs.final_obs[e : e + 1]]),
            actions=logs.actions[a:b],
            rewards=logs.rewards[a:b],
            terminations=logs.terminated[a:b],
            truncations=logs.truncated[a:b],
            infos=infos,
        )


def write_dataset(logs, dataset_id: str, datasets_path: str | Path, description: str | None = None):
    """Write ``logs`` (:class:`agents.offline_data.LoggedEpisodes`) as a Minari dataset; returns it.

    Raises:
        ValueError: the dataset already exists (Minari never overwrites: delete it or bump the version).
        ImportError: minari is not installed (the message gives the pip line).
    """
    import gymnasium as gym

    import ecomsim  # noqa: F401  (registers the ids the env spec names)

    minari = _minari()
    env_id, options = logs.meta["env_id"], logs.meta["env_options"]
    policy = logs.meta["logging_policy"]
    with datasets_root(datasets_path) as root:
        target = root / dataset_id
        if target.exists():
            raise ValueError(f"dataset {dataset_id!r} already exists at {str(target)!r}; delete it or choose another id/version")
        env = gym.make(env_id, **options)
        text = description or (
            f"{logs.num_episodes} sessions of {env_id} {options} logged under {policy}, seed {logs.meta['seed']}. "
            "Step infos carry 'propensity' (probability of the action taken) and 'logging_probs' (the whole "
            "distribution); row 0 of every info array is the reset info (NaN propensity).")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*author_email.*")  # no address to give: not made up
            dataset = minari.create_dataset_from_buffers(
                dataset_id=dataset_id,
                buffer=list(_episode_buffers(logs)),
                env=env,
                eval_env=env,
                algorithm_name=f"logging policy {policy.get('formula', policy)}",
                author="ecomsim",
                code_permalink="scripts/export_minari.py (ecomsim)",
                description=text,
                requirements=["ecomsim"],
            )
        env.close()
        dataset.storage.update_metadata({"ecomsim": _json_safe(logs.meta)})
    return dataset


def load_dataset(dataset_id: str, datasets_path: str | Path):
    """``minari.load_dataset(dataset_id)`` from ``datasets_path`` (never downloads).

    Raises:
        FileNotFoundError: no dataset ``dataset_id`` under ``datasets_path``.
    """
    minari = _minari()
    with datasets_root(datasets_path) as root:
        if not (root / dataset_id / "data").is_dir():
            raise FileNotFoundError(f"no Minari dataset {dataset_id!r} under {str(root)!r} (expected {str(root / dataset_id)!r})")
        return minari.load_dataset(dataset_id, download=False)


def ecomsim_meta(dataset) -> dict[str, Any]:
    """The ``ecomsim`` entry of a dataset's metadata (env id, options, logging policy, seed)."""
    meta = dataset.storage.metadata.get("ecomsim")
    if not isinstance(meta, dict):
        raise ValueError(f"dataset {dataset.id!r} has no 'ecomsim' metadata: not written by agents.minari_io")
    return meta


def to_transitions(dataset) -> dict[str, np.ndarray]:
    """Flat per-step arrays of a Minari dataset, episodes back to back (what d3rlpy's ``MDPDataset`` takes).

    Returns:
        ``observations`` ``(S, D)`` float32 (the observation before each step), ``actions``
        ``(S,)`` int64, ``rewards`` ``(S,)`` float32, ``terminals`` / ``timeouts`` ``(S,)``
        float32 (1.0 on the step that ended its episode by leaving / by the step limit),
        ``propensity`` ``(S,)`` float64 logging probability of each action.
    """
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("observations", "actions", "rewards", "terminals", "timeouts", "propensity")}
    for ep in dataset.iterate_episodes():
        parts["observations"].append(np.asarray(ep.observations)[:-1])
        parts["actions"].append(np.asarray(ep.actions))
        parts["rewards"].append(np.asarray(ep.rewards))
        parts["terminals"].append(np.asarray(ep.terminations))
        parts["timeouts"].append(np.asarray(ep.truncations))
        parts["propensity"].append(np.asarray(ep.infos["propensity"])[1:])
    out = {k: np.concatenate(v) for k, v in parts.items()}
    return {
        "observations": out["observations"].astype(np.float32),
        "actions": out["actions"].astype(np.int64),
        "rewards": out["rewards"].astype(np.float32),
        "terminals": out["terminals"].astype(np.float32),
        "timeouts": out["timeouts"].astype(np.float32),
        "propensity": out["propensity"].astype(np.float64),
    }


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x

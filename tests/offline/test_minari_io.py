"""Minari export: written, reloaded with ``minari.load_dataset``, aligned, seeded, never overwritten."""

from __future__ import annotations

import numpy as np
import pytest

minari = pytest.importorskip("minari", reason='minari is not installed: pip install -e ".[offline]" (minari[hdf5]>=0.5.4)')
pytest.importorskip("h5py", reason='minari needs h5py for its default HDF5 format: pip install -e ".[offline]"')

from agents.minari_io import (  # noqa: E402
    datasets_root,
    default_dataset_id,
    ecomsim_meta,
    load_dataset,
    to_transitions,
    write_dataset,
)
from agents.offline_data import collect  # noqa: E402
from agents.propensity import SoftmaxPolicy  # noqa: E402
from ecomsim.registration import env_kwargs  # noqa: E402

REF = env_kwargs("ecomsim/Recommend-v0", user_model="reference")
DATASET = "ecomsim/recommend-reference-logging-v0"


def _logs(seed: int = 3):
    return collect(SoftmaxPolicy("greedy", 0.5, 0.1), REF, 40, seed=seed, num_envs=16, env_id="ecomsim/Recommend-v0")


def test_written_dataset_reloads_with_minari_and_lines_up(tmp_path) -> None:
    logs = _logs()
    write_dataset(logs, DATASET, tmp_path)
    with datasets_root(tmp_path):
        ds = minari.load_dataset(DATASET)  # Minari's own loader, from MINARI_DATASETS_PATH
    assert ds.total_episodes == 40 and ds.total_steps == logs.num_steps
    assert ds.observation_space.shape == (logs.obs.shape[1],) and ds.action_space.n == 20
    for e in (0, 17, 39):
        ep = ds[e]
        a, b = logs.starts[e], logs.starts[e + 1]
        assert len(ep) == b - a
        np.testing.assert_array_equal(ep.observations[:-1], logs.obs[a:b])
        np.testing.assert_array_equal(ep.observations[-1], logs.final_obs[e])
        np.testing.assert_array_equal(ep.actions, logs.actions[a:b])
        np.testing.assert_array_equal(ep.rewards, logs.rewards[a:b])
        assert ep.terminations[-1] or ep.truncations[-1]
        prop = ep.infos["propensity"]
        assert prop.shape == (b - a + 1,) and np.isnan(prop[0])
        np.testing.assert_array_equal(prop[1:], logs.propensity[a:b])
        probs = ep.infos["logging_probs"][1:]
        np.testing.assert_array_equal(probs[np.arange(b - a), ep.actions], prop[1:])
        np.testing.assert_array_equal(ep.infos["purchases"][1:], logs.infos["purchases"][a:b])
    meta = ecomsim_meta(ds)
    assert meta["env_id"] == "ecomsim/Recommend-v0" and meta["seed"] == 3
    assert meta["logging_policy"]["temperature"] == 0.5 and meta["env_options"]["user_model"] == "reference"
    env = ds.recover_environment()
    assert env.unwrapped.config.user_model == "reference"
    tr = to_transitions(load_dataset(DATASET, tmp_path))
    np.testing.assert_array_equal(tr["observations"], logs.obs)
    np.testing.assert_array_equal(tr["propensity"], logs.propensity)
    assert tr["terminals"].sum() + tr["timeouts"].sum() == 40


def test_same_seed_same_dataset_and_no_overwrite(tmp_path) -> None:
    write_dataset(_logs(3), "ecomsim/a-v0", tmp_path)
    write_dataset(_logs(3), "ecomsim/b-v0", tmp_path)
    write_dataset(_logs(4), "ecomsim/c-v0", tmp_path)
    a, b, c = (to_transitions(load_dataset(f"ecomsim/{x}-v0", tmp_path)) for x in "abc")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["actions"][:50], c["actions"][:50])
    with pytest.raises(ValueError, match="already exists"):
        write_dataset(_logs(3), "ecomsim/a-v0", tmp_path)
    with pytest.raises(FileNotFoundError, match="no Minari dataset 'ecomsim/zzz-v0'"):
        load_dataset("ecomsim/zzz-v0", tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, expected a directory"):
        load_dataset("ecomsim/a-v0", tmp_path / "file")
    assert default_dataset_id("ecomsim/Recommend-v0", "dnn") == "ecomsim/recommend-dnn-logging-v0"

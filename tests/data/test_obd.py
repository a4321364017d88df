"""The Open Bandit Dataset sample, found inside the obp wheel without importing obp."""

from __future__ import annotations

import importlib.metadata
import importlib.util

import numpy as np
import pytest

from ecomsim.data import obd
from ecomsim.data.obd import load_obd, obd_files


def _has_obp() -> bool:
    try:
        importlib.metadata.distribution("obp")
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


needs_obp = pytest.mark.skipif(not _has_obp(), reason="obp not installed: pip install --no-deps obp==0.4.1")


def test_obd_missing_gives_install_hint(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(obd.importlib.metadata, "distribution", missing)
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps obp==0\.4\.1"):
        obd_files()
    with pytest.raises(ValueError, match=r"campaign must be one of \['all', 'men', 'women'\], got 'kids'"):
        obd_files(campaign="kids")


@needs_obp
def test_obd_loads_without_importing_obp():
    import sys

    before = "obp" in sys.modules
    data = load_obd()
    assert ("obp" in sys.modules) == before
    f = data.frame
    assert len(f) == 10_000 and sorted(f["position"].unique()) == [0, 1, 2]
    assert f["carted"].isna().all() and f["price"].isna().all()
    assert np.isclose(f["propensity"], 1 / 80).all()  # uniform random over 80 items
    assert data.user.shape[0] == data.items.shape[0] == 10_000
    groups = data.steps()
    assert sorted(groups) == [0, 1, 2] and sum(len(g) for g in groups.values()) == 10_000
    assert importlib.util.find_spec("obp") is not None

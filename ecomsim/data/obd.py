"""The Open Bandit Dataset sample: its files, its logs in the tidy schema, its item table as a catalog.

The sample (ZOZOTOWN fashion e-commerce, 3 positions, clicks only, 80 items;
logging policies ``random`` (uniform) and ``bts`` (Bernoulli Thompson sampling),
campaigns ``all`` / ``men`` / ``women``) ships inside the ``obp`` wheel. Install
the data alone with ``pip install --no-deps obp==0.4.1``: obp's declared
dependencies are heavy and pin old versions, and nothing here imports ``obp``;
the CSVs are found through ``importlib.metadata`` (:func:`obd_files`).

* :func:`load_obd`: the click logs, validated against ``ecomsim.data.schema``, plus
  model features (:class:`ObdData`) under an :class:`ObdEncoding`;
* :func:`obd_catalog`: the item table as a :class:`~ecomsim.catalog.Catalog` (the
  GAN's ``--data obd`` training table), with its mapping assumptions stated.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecomsim.catalog import Catalog
from ecomsim.data.schema import StepData, validate_logs

OBD_INSTALL_HINT = "install the data with `pip install --no-deps obp==0.4.1` (data only, no heavy dependencies)"
OBD_POLICIES = ("random", "bts")
OBD_CAMPAIGNS = ("all", "men", "women")
#: mapping of OBD's anonymised item table to catalog columns (see :func:`obd_catalog`)
OBD_PRICE_MEDIAN = 30.0  # currency units
OBD_PRICE_LOG_SCALE = 0.5


def obd_files(policy: str = "random", campaign: str = "all") -> tuple[Path, Path]:
    """Paths of the sample's log CSV and item-context CSV inside the installed ``obp`` wheel.

    Args:
        policy: the logging policy, one of :data:`OBD_POLICIES`.
        campaign: one of :data:`OBD_CAMPAIGNS`.

    Raises:
        ModuleNotFoundError: ``obp`` is not installed (with the install command).
        FileNotFoundError: the installed ``obp`` lacks the files.
    """
    if policy not in OBD_POLICIES:
        raise ValueError(f"policy must be one of {list(OBD_POLICIES)}, got {policy!r}")
    if campaign not in OBD_CAMPAIGNS:
        raise ValueError(f"campaign must be one of {list(OBD_CAMPAIGNS)}, got {campaign!r}")
    try:
        dist = importlib.metadata.distribution("obp")
    except importlib.metadata.PackageNotFoundError:
        raise ModuleNotFoundError(f"the Open Bandit Dataset sample needs the 'obp' package, which is not installed; {OBD_INSTALL_HINT}") from None
    want = {f"obp/dataset/obd/{policy}/{campaign}/{campaign}.csv": "log",
            f"obp/dataset/obd/{policy}/{campaign}/item_context.csv": "items"}
    found = {want[str(f).replace("\\", "/")]: Path(str(dist.locate_file(f))) for f in (dist.files or [])
             if str(f).replace("\\", "/") in want}
    missing = [name for name in want if want[name] not in found or not found[want[name]].is_file()]
    if missing:
        raise FileNotFoundError(f"the installed obp {dist.version} lacks the OBD sample files {missing}; {OBD_INSTALL_HINT}")
    return found["log"], found["items"]


# ============================================================== encoding
OBD_ENCODING_FORMAT = "ecomsim-obd-encoding-v1"


@dataclass(frozen=True)
class ObdEncoding:
    """The one-hot encoding of OBD's categorical columns, fitted once and then applied unchanged.

    Fitted on a model's training rows and stored in its card (:meth:`to_dict`), it turns
    any other file of the source (another logging policy, another campaign, a later
    week) into features of the same width and meaning. Each categorical column becomes
    one 0/1 column per known category, ``<column>_<category>``, categories sorted (the
    order ``pandas.get_dummies`` uses, so a file encoded with its own categories is
    unchanged). **Unseen categories** fall in the documented bucket "none of the known
    categories": every column of that block is 0, as for a missing value (scikit-learn's
    ``handle_unknown="ignore"``); :attr:`ObdData.unseen` counts them per column.

    What carries over in the sample (measured): the user columns share their hashes
    across files (2 of 10,000 ``random/men`` rows have a ``user_feature_2`` value unseen
    in ``random/all``), but the item table's categorical columns are hashed per file:
    every item category of ``bts/all`` or ``random/men`` is unseen by an encoding fitted
    on ``random/all``, so across files only the numeric item column, the affinity and the
    user features inform a model.

    Attributes:
        user: categories of each ``user_feature_*`` column (read as text).
        item: categories of each categorical ``item_feature_*`` column of the item table.
        item_numeric: the numeric ``item_feature_*`` columns, passed through as float32.
    """

    user: dict[str, list[str]]
    item: dict[str, list[str]]
    item_numeric: list[str]

    @classmethod
    def fit(cls, raw: pd.DataFrame, items: pd.DataFrame) -> "ObdEncoding":
        """The categories of ``raw``'s user columns and ``items``' categorical columns (labels are not read)."""
        user_cols = [c for c in raw.columns if c.startswith("user_feature_")]
        feat = [c for c in items.columns if c.startswith("item_feature_")]
        cat_cols = [c for c in feat if not pd.api.types.is_numeric_dtype(items[c])]
        return cls(user={c: sorted(set(raw[c].astype(str))) for c in user_cols},
                   item={c: sorted(set(items[c].astype(str))) for c in cat_cols},
                   item_numeric=[c for c in feat if c not in cat_cols])

    @property
    def user_names(self) -> list[str]:
        return [f"{c}_{v}" for c, cats in self.user.items() for v in cats]

    @property
    def item_names(self) -> list[str]:
        return self.item_numeric + [f"{c}_{v}" for c, cats in self.item.items() for v in cats]

    def _one_hot(self, frame: pd.DataFrame, columns: dict[str, list[str]], where: str) -> tuple[np.ndarray, dict[str, int]]:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"{where}: missing columns {missing} that the encoding was fitted with")
        blocks, unseen = [], {}
        for col, cats in columns.items():
            codes = pd.Index(cats).get_indexer(frame[col].astype(str))  # -1: unseen
            block = np.zeros((len(frame), len(cats)), dtype=np.float32)
            known = codes >= 0
            block[np.flatnonzero(known), codes[known]] = 1.0
            unseen[col] = int((~known).sum())
            blocks.append(block)
        return (np.concatenate(blocks, axis=1) if blocks else np.zeros((len(frame), 0), np.float32)), unseen

    def user_features(self, raw: pd.DataFrame, where: str = "logs") -> tuple[np.ndarray, dict[str, int]]:
        """``(n, len(user_names))`` float32 one-hots of the log's user columns, and unseen counts per column."""
        return self._one_hot(raw, self.user, where)

    def item_table(self, items: pd.DataFrame, where: str = "item table") -> tuple[pd.DataFrame, dict[str, int]]:
        """The item features indexed by ``item_id`` (numeric columns, then one-hots), and unseen counts per column."""
        missing = [c for c in ["item_id", *self.item_numeric] if c not in items.columns]
        if missing:
            raise ValueError(f"{where}: missing columns {missing} that the encoding was fitted with")
        onehot, unseen = self._one_hot(items, self.item, where)
        table = pd.concat([items[self.item_numeric].astype(np.float32).reset_index(drop=True),
                           pd.DataFrame(onehot, columns=self.item_names[len(self.item_numeric):])], axis=1)
        table.index = items["item_id"].to_numpy()
        return table, unseen

    def to_dict(self) -> dict[str, Any]:
        """JSON for a card: ``{"format", "user", "item", "item_numeric", "unseen"}``."""
        return {"format": OBD_ENCODING_FORMAT, "user": self.user, "item": self.item, "item_numeric": self.item_numeric,
                "unseen": "all-zero block: an unseen category sets none of its column's one-hot columns"}

    @classmethod
    def from_dict(cls, d: Any, where: str = "card") -> "ObdEncoding":
        """The encoding a card stored (``card["obd_encoding"]``); errors name ``where`` and the problem."""
        if not isinstance(d, dict) or d.get("format") != OBD_ENCODING_FORMAT:
            found = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"{where}: obd_encoding has format {found!r}, expected {OBD_ENCODING_FORMAT!r}")
        ok = (isinstance(d.get("user"), dict) and isinstance(d.get("item"), dict) and isinstance(d.get("item_numeric"), list)
              and all(isinstance(v, list) and all(isinstance(x, str) for x in v)
                      for v in [*d["user"].values(), *d["item"].values()]))
        if not ok:
            raise ValueError(f"{where}: obd_encoding needs user and item (column -> list of categories) and item_numeric")
        return cls(user={k: list(v) for k, v in d["user"].items()}, item={k: list(v) for k, v in d["item"].items()},
                   item_numeric=[str(c) for c in d["item_numeric"]])


# =================================================================== logs
@dataclass
class ObdData:
    """The OBD sample: the tidy frame plus model features, one row per impression.

    ``user`` ``(n, U)`` one-hot user features; ``items`` ``(n, F)`` item features
    (numeric feature, one-hot categorical features, the user's affinity with the item);
    ``position`` ``(n,)`` 0-based slot; ``click`` ``(n,)``; ``encoding`` the one-hot
    encoding used (:class:`ObdEncoding`); ``unseen`` rows (user columns) or items (item
    columns) whose category the encoding did not know, per column.
    """

    frame: pd.DataFrame
    user: np.ndarray
    items: np.ndarray
    position: np.ndarray
    click: np.ndarray
    user_names: list[str]
    item_names: list[str]
    encoding: ObdEncoding | None = None
    unseen: dict[str, int] = field(default_factory=dict)

    def steps(self, mask: np.ndarray | None = None) -> dict[int, StepData]:
        """Step arrays for :func:`ecomsim.shoppers.training.train_behavior`, one group per position."""
        mask = np.ones(len(self.click), dtype=bool) if mask is None else mask
        out = {}
        for pos in np.unique(self.position):
            m = mask & (self.position == pos)
            s = int(m.sum())
            if s == 0:
                continue
            z = np.zeros((s, 1), dtype=bool)
            nan = np.full((s, 1), np.nan)
            out[int(pos)] = StepData(
                session=self.frame["session"].to_numpy()[m], step=np.zeros(s, dtype=np.int64), user=self.user[m],
                items=self.items[m][:, None, :], item_ids=self.frame["item"].to_numpy()[m][:, None],
                positions=np.array([pos], dtype=np.float32), channel=np.zeros(s, dtype=np.int64),
                click=self.click[m][:, None], cart=z, purchase=z, left=z[:, 0], level=np.zeros(s, dtype=np.int64),
                ref_click=nan, ref_cart=nan, ref_purchase=nan, ref_leave=np.full((s, 3), np.nan))
        return out


def read_obd_files(policy: str = "random", campaign: str = "all") -> tuple[pd.DataFrame, pd.DataFrame, Path, Path]:
    """The raw log and item tables of ``policy`` / ``campaign`` and their paths, with the columns checked."""
    log_path, item_path = obd_files(policy, campaign)
    raw = pd.read_csv(log_path, index_col=0)
    items = pd.read_csv(item_path, index_col=0)
    need = ["timestamp", "item_id", "position", "click", "propensity_score"]
    missing = [c for c in need if c not in raw.columns]
    if missing:
        raise ValueError(f"{log_path}: missing columns {missing}; expected the OBD format with {need}")
    if "item_id" not in items.columns:
        raise ValueError(f"{item_path}: missing column 'item_id'; expected the OBD item context")
    return raw, items, log_path, item_path


def load_obd(policy: str = "random", campaign: str = "all", encoding: ObdEncoding | None = None,
             fit_rows: np.ndarray | None = None) -> ObdData:
    """Load the sample's click logs for ``policy`` and ``campaign`` (see :func:`obd_files`).

    Args:
        policy, campaign: which file.
        encoding: the one-hot encoding to apply, e.g. ``ObdEncoding.from_dict(card["obd_encoding"])``
            of a trained model; ``None`` fits one on this file.
        fit_rows: with ``encoding=None``, a boolean mask of the log rows to fit the user
            categories on (a model's training rows); all rows when ``None``.
    """
    raw, items, log_path, item_path = read_obd_files(policy, campaign)
    if encoding is None:
        encoding = ObdEncoding.fit(raw if fit_rows is None else raw[np.asarray(fit_rows, dtype=bool)], items)
    aff_cols = [c for c in raw.columns if c.startswith("user-item_affinity_")]
    user, unseen = encoding.user_features(raw, str(log_path))
    item_table, unseen_items = encoding.item_table(items, str(item_path))
    unseen.update(unseen_items)
    item_ids = raw["item_id"].to_numpy()
    unknown = ~np.isin(item_ids, item_table.index.to_numpy())
    if unknown.any():
        row = int(np.argmax(unknown))
        raise ValueError(f"{log_path}: row {row + 2} column 'item_id' has {item_ids[row]} not in {item_path}")
    item_feat = item_table.loc[item_ids].to_numpy(np.float32)
    aff = raw[aff_cols].to_numpy(np.float32)[np.arange(len(raw)), item_ids] if aff_cols else np.zeros(len(raw), np.float32)
    feats = np.concatenate([item_feat, np.log1p(aff)[:, None]], axis=1)
    position = raw["position"].to_numpy() - raw["position"].min()  # OBD numbers slots from 1
    user_key = raw[list(encoding.user)].astype(str).agg("|".join, axis=1)
    frame = pd.DataFrame({
        "session": np.arange(len(raw), dtype=np.int64),  # OBD rows are independent impressions
        "user": pd.factorize(user_key)[0].astype(np.int64),
        "timestamp": pd.to_datetime(raw["timestamp"], utc=True, format="ISO8601").to_numpy(),
        "channel": "unknown",
        "step": 0,
        "position": position,
        "item": item_ids,
        "price": np.nan,
        "shown": True,
        "clicked": raw["click"].astype(bool).to_numpy(),
        "carted": pd.NA,
        "purchased": pd.NA,
        "left": pd.NA,
        "propensity": raw["propensity_score"].to_numpy(),
    })
    return ObdData(validate_logs(frame, str(log_path)), user, feats, position.astype(np.int64),
                   raw["click"].to_numpy().astype(bool), encoding.user_names, encoding.item_names + ["log_affinity"],
                   encoding, unseen)


# ================================================================ catalog
def obd_catalog(policy: str = "random", campaign: str = "all", embed_dim: int = 8) -> Catalog:
    """The sample's 80-item table as a catalog. OBD anonymises its items, so the mapping states its assumptions:

    * category: ``item_feature_3`` (7 hashed values; names are their first 6 hex digits);
    * price: ``item_feature_0`` is a standardised numeric attribute, read as a log-price
      z-score: ``price = OBD_PRICE_MEDIAN * exp(OBD_PRICE_LOG_SCALE * f0)``;
    * quality: OBD has no rating, so it is 0.5 for every item (a constant column);
    * popularity: uniform (OBD's click logs, not this table, hold popularity);
    * embedding: a fixed random projection (seed 0) of the one-hots of
      ``item_feature_1`` and ``item_feature_2``, unit norm.
    """
    df = pd.read_csv(obd_files(policy, campaign)[1], index_col=0)
    n = len(df)
    codes3, names3 = pd.factorize(df["item_feature_3"].astype(str), sort=True)
    onehots = [pd.get_dummies(df[c].astype(str)).to_numpy(np.float64) for c in ("item_feature_1", "item_feature_2")]
    x = np.concatenate(onehots, axis=1)
    proj = np.random.default_rng(0).normal(size=(x.shape[1], embed_dim))
    emb = x @ proj
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    price = np.round(OBD_PRICE_MEDIAN * np.exp(OBD_PRICE_LOG_SCALE * df["item_feature_0"].to_numpy(np.float64)), 2)
    digest = hashlib.sha256(df.to_csv().encode()).hexdigest()[:12]
    return Catalog(
        item_id=df["item_id"].to_numpy(np.int64),
        category=codes3,
        price=price,
        quality=np.full(n, 0.5),
        popularity=np.full(n, 1.0 / n),
        embedding=emb.astype(np.float32),
        category_names=tuple(str(v)[:6] for v in names3),
        meta={"source": f"obd/{policy}/{campaign}/item_context.csv", "sha256_12": digest},
    )

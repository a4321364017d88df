"""Training tables for the catalog GAN: catalogs as flat tables.

A catalog *table* (``pandas.DataFrame``) has one row per item and the columns
``category`` (str), ``price`` (currency units), ``quality`` ([0, 1]),
``rel_popularity`` (``popularity * num_items``: 1.0 is an average item, so the
column means the same at every catalog size) and ``emb_0 .. emb_{d-1}``.
The GAN learns and samples such tables; :func:`table_to_catalog` turns a sampled
table into a validated :class:`~ecomsim.catalog.Catalog`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ecomsim.catalog import Catalog, make_reference_catalog
from ecomsim.data.obd import obd_catalog

#: smallest training table the GAN accepts (fewer rows leave nothing to learn a distribution from)
MIN_TRAIN_ROWS = 40


def catalog_to_table(catalog: Catalog) -> pd.DataFrame:
    """The catalog as a training table (see module docstring); ``item_id`` is dropped."""
    data: dict[str, np.ndarray] = {
        "category": np.asarray(catalog.category_names, dtype=object)[catalog.category],
        "price": catalog.price.astype(np.float64),
        "quality": catalog.quality.astype(np.float64),
        "rel_popularity": catalog.popularity * catalog.num_items,
    }
    for j in range(catalog.embed_dim):
        data[f"emb_{j}"] = catalog.embedding[:, j].astype(np.float64)
    return pd.DataFrame(data)


def embedding_columns(table: pd.DataFrame) -> list[str]:
    cols = [c for c in table.columns if c.startswith("emb_")]
    return sorted(cols, key=lambda c: int(c.split("_")[1]))


def table_to_catalog(table: pd.DataFrame, category_names: tuple[str, ...], meta: dict | None = None) -> Catalog:
    """A validated catalog from a table; popularity is ``rel_popularity`` normalised to sum to 1."""
    index = {name: i for i, name in enumerate(category_names)}
    unknown = sorted(set(table["category"]) - set(index))
    if unknown:
        raise ValueError(f"table has categories {unknown} not in category_names {list(category_names)}")
    emb_cols = embedding_columns(table)
    pop = table["rel_popularity"].to_numpy(np.float64)
    return Catalog(
        item_id=np.arange(len(table), dtype=np.int64),
        category=table["category"].map(index).to_numpy(np.int64),
        price=table["price"].to_numpy(np.float64),
        quality=table["quality"].to_numpy(np.float64),
        popularity=pop / pop.sum(),
        embedding=table[emb_cols].to_numpy(np.float32),
        category_names=tuple(category_names),
        meta=dict(meta or {}),
    )


def check_training_table(table: pd.DataFrame) -> None:
    """Raise ``ValueError`` saying why a table cannot train the GAN."""
    required = ["category", "price", "quality", "rel_popularity"]
    missing = [c for c in required if c not in table.columns]
    if missing or not embedding_columns(table):
        raise ValueError(f"training table lacks columns {missing or ['emb_0..']}; expected {required} + emb_0..emb_{{d-1}}")
    if len(table) < MIN_TRAIN_ROWS:
        raise ValueError(
            f"training table has {len(table)} rows, fewer than MIN_TRAIN_ROWS={MIN_TRAIN_ROWS}: "
            "too few to learn a distribution from (pool more items or use the reference catalog)"
        )
    num = table.drop(columns=["category"])
    if not np.isfinite(num.to_numpy(np.float64)).all():
        raise ValueError("training table has non-finite values; clean it first")
    if (table["price"] <= 0).any() or (table["rel_popularity"] <= 0).any():
        raise ValueError("training table needs price > 0 and rel_popularity > 0 in every row")


def reference_table(num_items: int = 5000, seed: int = 0) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The reference world's catalog as a table, with its category names."""
    cat = make_reference_catalog(num_items=num_items, seed=seed)
    return catalog_to_table(cat), cat.category_names


def training_table(source: str) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Resolve a training source: ``"reference"``, ``"obd"`` (``ecomsim.data.obd.obd_catalog``) or a path to a saved catalog ``.npz``."""
    if source == "reference":
        return reference_table()
    if source == "obd":
        cat = obd_catalog()
        return catalog_to_table(cat), cat.category_names
    path = Path(source)
    if path.suffix == ".npz" or path.exists():
        cat = Catalog.load(path)
        return catalog_to_table(cat), cat.category_names
    raise ValueError(f"training data must be 'reference', 'obd' or a path to a catalog .npz, got {source!r}")


def split_table(table: pd.DataFrame, holdout: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded (train, held-out) split, stratified by category; held-out rows are never trained on.

    Stratified so that the category shares of both parts agree to rounding: otherwise the
    split's own sampling noise would show up as generator error in the category distance.
    """
    if not 0.0 < holdout < 1.0:
        raise ValueError(f"holdout must be in (0, 1), got {holdout!r}")
    rng = np.random.default_rng(seed)
    hold_idx = []
    for _, rows in table.groupby("category", sort=True).indices.items():
        rows = rng.permutation(rows)
        hold_idx.extend(rows[: int(round(holdout * len(rows)))])
    mask = np.zeros(len(table), dtype=bool)
    mask[hold_idx] = True
    return table[~mask].reset_index(drop=True), table[mask].reset_index(drop=True)

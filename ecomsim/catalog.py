"""Item catalogs: arrays of item attributes, validated, saved and loaded as one file.

A :class:`Catalog` holds ``num_items`` items as columns (batch dimension first):

============== ======================= ==========================================
column         shape / dtype           meaning
============== ======================= ==========================================
item_id        (num_items,) int64      unique id
category       (num_items,) int64      index into ``category_names``
price          (num_items,) float64    price, currency units, > 0
quality        (num_items,) float64    rating in [0, 1]
popularity     (num_items,) float64    popularity prior, > 0, sums to 1
embedding      (num_items, d) float32  item feature embedding (unit-ish norm)
============== ======================= ==========================================

:func:`make_reference_catalog` is the reference world's "real" catalog: several
categories, log-normal prices per category, price-quality correlation and a
power-law popularity. The GAN (``generators``) learns from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

CATALOG_FORMAT = "ecomsim-catalog-v1"

# Reference categories with (median price, log-price std), in currency units (an item
# stands for an order line); tuned so the average order value lands near the $82-$127
# of CALIBRATION.md.
REFERENCE_CATEGORIES: dict[str, tuple[float, float]] = {
    "fashion": (110.0, 0.55),
    "shoes": (175.0, 0.45),
    "beauty": (55.0, 0.50),
    "home": (140.0, 0.70),
    "electronics": (350.0, 0.80),
    "sports": (150.0, 0.60),
    "books": (38.0, 0.35),
    "grocery": (25.0, 0.45),
}


@dataclass(frozen=True, eq=False)
class Catalog:
    """A validated table of items. Construct through keyword arguments; arrays are copied read-only."""

    item_id: np.ndarray
    category: np.ndarray
    price: np.ndarray
    quality: np.ndarray
    popularity: np.ndarray
    embedding: np.ndarray
    category_names: tuple[str, ...]
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        conv = {
            "item_id": np.int64,
            "category": np.int64,
            "price": np.float64,
            "quality": np.float64,
            "popularity": np.float64,
            "embedding": np.float32,
        }
        for name, dtype in conv.items():
            arr = np.array(getattr(self, name), dtype=dtype, copy=True)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "category_names", tuple(str(c) for c in self.category_names))
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise ``ValueError`` naming the column, the offending row and value if anything is off."""
        n = self.item_id.shape[0]
        if n < 1:
            raise ValueError("catalog must hold at least one item, got 0")
        for name in ("item_id", "category", "price", "quality", "popularity"):
            arr = getattr(self, name)
            if arr.shape != (n,):
                raise ValueError(f"catalog column {name!r} must have shape ({n},), got {arr.shape}")
        if self.embedding.ndim != 2 or self.embedding.shape[0] != n or self.embedding.shape[1] < 1:
            raise ValueError(f"catalog column 'embedding' must have shape ({n}, d>=1), got {self.embedding.shape}")
        for name in ("price", "quality", "popularity", "embedding"):
            arr = getattr(self, name)
            bad = ~np.isfinite(arr)
            if bad.any():
                row = int(np.argwhere(bad)[0][0])
                value = arr[row].tolist()
                raise ValueError(f"catalog column {name!r} has a non-finite value at row {row}: {value}")
        if len(np.unique(self.item_id)) != n:
            ids, counts = np.unique(self.item_id, return_counts=True)
            raise ValueError(f"catalog item_id must be unique, got duplicates e.g. {int(ids[counts > 1][0])}")
        num_categories = len(self.category_names)
        if num_categories < 1 or len(set(self.category_names)) != num_categories:
            raise ValueError(f"category_names must be non-empty and unique, got {list(self.category_names)}")
        bad_cat = (self.category < 0) | (self.category >= num_categories)
        if bad_cat.any():
            row = int(np.argmax(bad_cat))
            raise ValueError(
                f"catalog column 'category' must be in [0, {num_categories - 1}], got {int(self.category[row])} at row {row}"
            )
        if (self.price <= 0).any():
            row = int(np.argmax(self.price <= 0))
            raise ValueError(f"catalog column 'price' must be > 0, got {float(self.price[row])} at row {row}")
        bad_q = (self.quality < 0) | (self.quality > 1)
        if bad_q.any():
            row = int(np.argmax(bad_q))
            raise ValueError(f"catalog column 'quality' must be in [0, 1], got {float(self.quality[row])} at row {row}")
        if (self.popularity <= 0).any():
            row = int(np.argmax(self.popularity <= 0))
            raise ValueError(f"catalog column 'popularity' must be > 0, got {float(self.popularity[row])} at row {row}")
        total = float(self.popularity.sum())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"catalog column 'popularity' must sum to 1, got {total:.8f}; use Catalog.normalised_popularity")

    def equals(self, other: "Catalog") -> bool:
        """True when every column and the category names are identical, bit for bit."""
        cols = ("item_id", "category", "price", "quality", "popularity", "embedding")
        return self.category_names == other.category_names and all(
            np.array_equal(getattr(self, c), getattr(other, c)) for c in cols
        )

    # --------------------------------------------------------------- properties
    @property
    def num_items(self) -> int:
        return int(self.item_id.shape[0])

    @property
    def num_categories(self) -> int:
        return len(self.category_names)

    @property
    def embed_dim(self) -> int:
        return int(self.embedding.shape[1])

    def __len__(self) -> int:
        return self.num_items

    @staticmethod
    def normalised_popularity(popularity: np.ndarray) -> np.ndarray:
        pop = np.asarray(popularity, dtype=np.float64)
        return pop / pop.sum()

    def subset(self, index: np.ndarray | slice) -> "Catalog":
        """A new catalog with the selected rows (popularity renormalised)."""
        return Catalog(
            item_id=self.item_id[index],
            category=self.category[index],
            price=self.price[index],
            quality=self.quality[index],
            popularity=self.normalised_popularity(self.popularity[index]),
            embedding=self.embedding[index],
            category_names=self.category_names,
            meta=dict(self.meta),
        )

    def to_frame(self):
        """The catalog as a pandas DataFrame (one row per item, embedding as ``emb_0..emb_{d-1}``)."""
        import pandas as pd

        data = {
            "item_id": self.item_id,
            "category": np.asarray(self.category_names, dtype=object)[self.category],
            "price": self.price,
            "quality": self.quality,
            "popularity": self.popularity,
        }
        for j in range(self.embed_dim):
            data[f"emb_{j}"] = self.embedding[:, j]
        return pd.DataFrame(data)

    # ------------------------------------------------------------------- files
    def save(self, path: str | Path) -> Path:
        """Save as one ``.npz`` file (arrays plus a JSON header)."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        header = {"format": CATALOG_FORMAT, "category_names": list(self.category_names), "meta": self.meta}
        np.savez_compressed(
            path,
            header=np.array(json.dumps(header)),
            item_id=self.item_id,
            category=self.category,
            price=self.price,
            quality=self.quality,
            popularity=self.popularity,
            embedding=self.embedding,
        )
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Catalog":
        """Load a catalog saved by :meth:`save`; errors name the file and what is wrong.

        Raises:
            FileNotFoundError: nothing at ``path``.
            IsADirectoryError: ``path`` is a directory.
            ValueError: not a readable ``.npz`` (truncated, another format, pickled objects), a header
                that is not the JSON object :meth:`save` writes, missing arrays or invalid columns.
        """
        from ecomsim.cards import check_file

        path = check_file(path, "catalog file", "a .npz catalog file saved by Catalog.save")
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic != b"PK\x03\x04":  # a .npz is a zip archive; anything else would reach numpy's pickle fallback
            raise ValueError(f"catalog file {str(path)!r} is not a .npz (zip) archive: it starts with {magic!r}")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except Exception as exc:  # noqa: BLE001 - zip/npz corruption surfaces as many exception types
            raise ValueError(f"catalog file {str(path)!r} is not a readable .npz catalog (truncated or another "
                             f"format?): {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
        required = ("header", "item_id", "category", "price", "quality", "popularity", "embedding")
        missing = [k for k in required if k not in arrays]
        if missing:
            raise ValueError(f"catalog file {str(path)!r} lacks arrays {missing}; expected {list(required)}")
        header = _read_header(arrays.pop("header"), path)
        extra = sorted(set(arrays) - set(required))
        if extra:
            raise ValueError(f"catalog file {str(path)!r} has unexpected arrays {extra}; expected {list(required)}")
        try:
            return cls(category_names=tuple(header["category_names"]), meta=header.get("meta", {}), **arrays)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"catalog file {str(path)!r} is invalid: {exc}") from exc


def _read_header(raw: np.ndarray, path: Path) -> dict:
    """The JSON header of a catalog file: an object of format ``CATALOG_FORMAT`` with a list of category names."""
    where = f"catalog file {str(path)!r}"
    if raw.shape != () or raw.dtype.kind != "U":
        raise ValueError(f"{where} has a header array of dtype {raw.dtype} and shape {raw.shape}; expected one JSON string")
    try:
        header = json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where} has a header that is not JSON ({exc}): {str(raw)[:60]!r}") from None
    if not isinstance(header, dict):
        raise ValueError(f"{where} has a JSON header of type {type(header).__name__}; expected an object")
    if header.get("format") != CATALOG_FORMAT:
        raise ValueError(f"{where} has format {header.get('format')!r}, expected {CATALOG_FORMAT!r}")
    names = header.get("category_names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{where} header needs 'category_names', a list of strings, got {names!r}")
    if not isinstance(header.get("meta", {}), dict):
        raise ValueError(f"{where} header 'meta' must be an object, got {header['meta']!r}")
    return header


def make_reference_catalog(
    num_items: int = 5000,
    embed_dim: int = 8,
    seed: int = 0,
    categories: dict[str, tuple[float, float]] | None = None,
) -> Catalog:
    """The reference world's catalog.

    * Categories: ``REFERENCE_CATEGORIES`` with shares drawn from a Dirichlet(4).
    * Embedding: a unit category centroid plus N(0, 0.45^2) noise, renormalised,
      so items of a category cluster and categories are distinguishable.
    * Price: log-normal around the category median with the category's log-std.
    * Quality: ``sigmoid(0.9 * z_price + N(0, 0.8^2))`` where ``z_price`` is the
      within-category standardised log price (dearer items rate better, loosely).
    * Popularity: Zipf-like power law ``rank^-1.1`` over a random order that
      leans towards quality, normalised to sum to 1.
    """
    if not isinstance(num_items, int) or num_items < 1:
        raise ValueError(f"num_items must be a positive integer, got {num_items!r}")
    if not isinstance(embed_dim, int) or embed_dim < 2:
        raise ValueError(f"embed_dim must be an integer >= 2, got {embed_dim!r}")
    cats = categories or REFERENCE_CATEGORIES
    names = tuple(cats)
    rng = np.random.default_rng(seed)
    shares = rng.dirichlet(np.full(len(names), 4.0))
    category = rng.choice(len(names), size=num_items, p=shares)
    centroids = rng.normal(size=(len(names), embed_dim))
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    emb = centroids[category] + rng.normal(scale=0.45, size=(num_items, embed_dim))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    med = np.array([cats[n][0] for n in names])[category]
    sd = np.array([cats[n][1] for n in names])[category]
    z_price = rng.normal(size=num_items)
    price = np.round(med * np.exp(sd * z_price), 2)
    price = np.maximum(price, 0.5)
    quality = 1.0 / (1.0 + np.exp(-(0.9 * z_price + rng.normal(scale=0.8, size=num_items))))
    order_key = rng.gumbel(size=num_items) + 1.5 * quality
    ranks = np.empty(num_items, dtype=np.int64)
    ranks[np.argsort(-order_key)] = np.arange(1, num_items + 1)
    popularity = ranks.astype(np.float64) ** -1.1
    return Catalog(
        item_id=np.arange(num_items, dtype=np.int64),
        category=category,
        price=price,
        quality=quality,
        popularity=popularity / popularity.sum(),
        embedding=emb.astype(np.float32),
        category_names=names,
        meta={"source": "make_reference_catalog", "seed": seed, "num_items": num_items, "embed_dim": embed_dim},
    )


def shipped_catalog_path(name: str) -> Path:
    """Path of a catalog file shipped in ``ecomsim/assets`` (``<name>_catalog.npz``)."""
    ref = resources.files("ecomsim") / "assets" / f"{name}_catalog.npz"
    return Path(str(ref))


def load_catalog(spec: str) -> Catalog:
    """Resolve a catalog option: a shipped name (``"reference"``, ...) or a path to a saved catalog."""
    shipped = shipped_catalog_path(spec)
    if shipped.is_file():
        return Catalog.load(shipped)
    if spec == "reference":  # built deterministically when the shipped file is absent (e.g. a source checkout)
        return make_reference_catalog()
    path = Path(spec)
    if path.suffix == ".npz" or path.exists():  # a directory is named as such by Catalog.load
        return Catalog.load(path)
    names = sorted(p.name.removesuffix("_catalog.npz") for p in shipped.parent.glob("*_catalog.npz"))
    from ecomsim.errors import suggest

    raise ValueError(
        f"catalog must be a shipped name {names or ['reference']} or a path to a .npz catalog, got {spec!r}."
        f"{suggest(spec, names or ['reference'])}"
    )

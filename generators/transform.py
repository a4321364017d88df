"""Reversible preprocessing of catalog tables for the GAN.

Continuous columns first go through a fixed elementwise map that makes them
unbounded (``log`` for price and relative popularity, ``logit`` for quality), then
are standardised *within their category* (the condition): the generator then only
learns what is left once the category is known, which is nearly the same shape in
every category, instead of eight separate locations and scales. Categories with
fewer than ``MIN_CATEGORY_ROWS`` rows use the whole table's statistics. Then:

* ``mode`` columns (skewed or multi-modal: price, popularity, quality) get CTGAN's
  mode-specific normalisation: a Gaussian mixture (at most ``max_modes`` components,
  seeded) is fitted to the column; a value is encoded as the one-hot of its most
  likely mode plus a scalar ``alpha = (x - mu_k) / (4 sigma_k)`` in about [-1, 1].
  The generator emits the mode through a Gumbel-softmax and alpha through ``tanh``.
  Why: one global standardisation squashes a long price tail into a few outliers a
  GAN cannot reproduce; per-mode scaling gives every mode the same resolution.
* ``standard`` columns (the embedding) are standardised.
* ``constant`` columns (zero spread, e.g. OBD's quality) are not modelled at all.

The category is not part of the encoded row: it is the GAN's condition, a one-hot
over ``category_names``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from generators.data import embedding_columns

EPS_LOGIT = 1e-4
MIN_MODE_WEIGHT = 0.02  # mixture components lighter than this are dropped
MIN_CATEGORY_ROWS = 5  # fewer rows: a category's own mean and std are too noisy to use


def forward_map(kind: str, x: np.ndarray) -> np.ndarray:
    if kind == "log":
        return np.log(x)
    if kind == "logit":
        q = np.clip(x, EPS_LOGIT, 1.0 - EPS_LOGIT)  # exact 0/1 ratings are legal; logit needs them inside
        return np.log(q / (1.0 - q))
    return np.asarray(x, dtype=np.float64)


def inverse_map(kind: str, y: np.ndarray) -> np.ndarray:
    if kind == "log":
        return np.exp(y)
    if kind == "logit":
        return 0.5 * (1.0 + np.tanh(0.5 * y))  # sigmoid without overflow
    return y


#: column -> elementwise map; embedding columns use "none"
COLUMN_MAPS = {"price": "log", "quality": "logit", "rel_popularity": "log"}
MODE_COLUMNS = ("price", "quality", "rel_popularity")


@dataclass
class ColumnSpec:
    """How one continuous column is encoded (JSON-friendly, stored in the weights card)."""

    name: str
    mapping: str  # "log", "logit" or "none"
    kind: str  # "mode", "standard" or "constant"
    means: list[float]
    stds: list[float]
    cat_means: list[float]  # per category location of the mapped column
    cat_stds: list[float]  # per category scale of the mapped column

    @property
    def width(self) -> int:
        return {"mode": 1 + len(self.means), "standard": 1, "constant": 0}[self.kind]


class TableTransformer:
    """Encodes catalog tables to GAN rows and decodes generator output back to tables.

    Args:
        max_modes: upper bound on Gaussian-mixture modes per ``mode`` column.
        seed: seeds the mixture fits (``random_state``), so a fit is reproducible.
    """

    def __init__(self, max_modes: int = 6, seed: int = 0) -> None:
        self.max_modes = max_modes
        self.seed = seed
        self.columns: list[ColumnSpec] = []
        self.category_names: tuple[str, ...] = ()
        self.unit_norm_embedding = False

    # ----------------------------------------------------------------- fit
    def fit(self, table: pd.DataFrame, category_names: tuple[str, ...]) -> "TableTransformer":
        self.category_names = tuple(category_names)
        self.columns = []
        emb_cols = embedding_columns(table)
        codes = self._codes(table["category"])
        for name in list(MODE_COLUMNS) + emb_cols:
            mapping = COLUMN_MAPS.get(name, "none")
            y = forward_map(mapping, table[name].to_numpy(np.float64))
            std = float(y.std())
            if std < 1e-9:
                self.columns.append(ColumnSpec(name, mapping, "constant", [float(y.mean())], [0.0], [], []))
                continue
            cm, cs = np.full(self.num_categories, y.mean()), np.full(self.num_categories, std)
            for c in range(self.num_categories):
                yc = y[codes == c]
                if len(yc) >= MIN_CATEGORY_ROWS and yc.std() > 1e-9:
                    cm[c], cs[c] = yc.mean(), yc.std()
            r = (y - cm[codes]) / cs[codes]
            if name in MODE_COLUMNS:
                spec = self._fit_modes(name, mapping, r)
            else:
                spec = ColumnSpec(name, mapping, "standard", [float(r.mean())], [float(r.std())], [], [])
            spec.cat_means, spec.cat_stds = cm.tolist(), cs.tolist()
            self.columns.append(spec)
        norms = np.linalg.norm(table[emb_cols].to_numpy(np.float64), axis=1)
        self.unit_norm_embedding = bool(np.allclose(norms, 1.0, atol=1e-4))
        return self

    def _fit_modes(self, name: str, mapping: str, y: np.ndarray) -> ColumnSpec:
        # the number of modes is chosen by BIC: a Gaussian column keeps one mode (a plain
        # standardisation), a skewed one several. Overlapping surplus modes (what CTGAN's
        # Dirichlet-process fit gives a Gaussian) make mode membership arbitrary and hard to learn.
        from sklearn.mixture import GaussianMixture  # fitting only: sampling envs need not import sklearn

        best, best_bic = None, np.inf
        for k in range(1, int(min(self.max_modes, max(1, len(np.unique(y)) // 10))) + 1):
            gm = GaussianMixture(n_components=k, random_state=self.seed, reg_covar=1e-4, max_iter=200).fit(y[:, None])
            bic = gm.bic(y[:, None])
            if bic < best_bic - 10.0:  # a new mode must pay for itself clearly
                best, best_bic = gm, bic
        gm = best
        keep = gm.weights_ >= MIN_MODE_WEIGHT
        means = gm.means_[keep, 0]
        stds = np.sqrt(gm.covariances_[keep].reshape(-1))
        order = np.argsort(means)
        return ColumnSpec(name, mapping, "mode", means[order].tolist(), stds[order].tolist(), [], [])

    def _codes(self, categories) -> np.ndarray:
        index = {n: i for i, n in enumerate(self.category_names)}
        return np.array([index[c] for c in categories], dtype=np.int64)

    # ------------------------------------------------------------- layout
    @property
    def width(self) -> int:
        return sum(c.width for c in self.columns)

    @property
    def num_categories(self) -> int:
        return len(self.category_names)

    def spans(self) -> list[tuple[int, int, str]]:
        """Output layout ``(start, end, activation)`` with activation ``tanh``, ``softmax`` or ``linear``."""
        out, pos = [], 0
        for c in self.columns:
            if c.kind == "mode":
                out += [(pos, pos + 1, "tanh"), (pos + 1, pos + c.width, "softmax")]
            elif c.kind == "standard":
                out.append((pos, pos + 1, "linear"))
            pos += c.width
        return out

    # -------------------------------------------------------------- encode
    def encode_condition(self, categories: pd.Series | np.ndarray) -> np.ndarray:
        return np.eye(self.num_categories, dtype=np.float32)[self._codes(categories)]

    def encode(self, table: pd.DataFrame) -> np.ndarray:
        """``(rows, width)`` float32 encoded rows (category excluded: it is the condition)."""
        parts = []
        codes = self._codes(table["category"])
        for c in self.columns:
            if c.kind == "constant":
                continue
            y = forward_map(c.mapping, table[c.name].to_numpy(np.float64))
            y = (y - np.asarray(c.cat_means)[codes]) / np.asarray(c.cat_stds)[codes]
            if c.kind == "standard":
                parts.append(((y - c.means[0]) / c.stds[0])[:, None])
                continue
            mu, sd = np.asarray(c.means), np.asarray(c.stds)
            logp = -0.5 * ((y[:, None] - mu) / sd) ** 2 - np.log(sd)
            mode = logp.argmax(axis=1)
            alpha = np.clip((y - mu[mode]) / (4.0 * sd[mode]), -0.99, 0.99)  # tanh range; |alpha|>0.99 is >4 sd
            parts += [alpha[:, None], np.eye(len(mu))[mode]]
        return np.concatenate(parts, axis=1).astype(np.float32)

    def decode(self, rows: np.ndarray, categories: np.ndarray) -> pd.DataFrame:
        """A table from activated generator output ``(rows, width)`` (mode spans: one-hot or probabilities)."""
        data: dict[str, np.ndarray] = {"category": np.asarray(self.category_names, dtype=object)[categories]}
        pos = 0
        n = rows.shape[0]
        for c in self.columns:
            if c.kind == "constant":
                y = np.full(n, c.means[0])
            elif c.kind == "standard":
                y = rows[:, pos].astype(np.float64) * c.stds[0] + c.means[0]
            else:
                mode = rows[:, pos + 1 : pos + c.width].argmax(axis=1)
                alpha = rows[:, pos].astype(np.float64)
                y = alpha * 4.0 * np.asarray(c.stds)[mode] + np.asarray(c.means)[mode]
            if c.kind != "constant":
                y = y * np.asarray(c.cat_stds)[categories] + np.asarray(c.cat_means)[categories]
            pos += c.width
            data[c.name] = inverse_map(c.mapping, y)
        table = pd.DataFrame(data)
        table["price"] = np.maximum(np.round(table["price"].to_numpy(), 2), 0.01)  # cents, as real prices
        emb_cols = embedding_columns(table)
        if self.unit_norm_embedding:
            e = table[emb_cols].to_numpy(np.float64)
            table[emb_cols] = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
        return table

    # ------------------------------------------------------------- to/from JSON
    def to_dict(self) -> dict:
        return {
            "max_modes": self.max_modes,
            "seed": self.seed,
            "category_names": list(self.category_names),
            "unit_norm_embedding": self.unit_norm_embedding,
            "columns": [vars(c) for c in self.columns],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "TableTransformer":
        t = cls(max_modes=int(d["max_modes"]), seed=int(d["seed"]))
        t.category_names = tuple(d["category_names"])
        t.unit_norm_embedding = bool(d["unit_norm_embedding"])
        t.columns = [ColumnSpec(**c) for c in d["columns"]]
        return t

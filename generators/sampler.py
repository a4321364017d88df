"""A trained catalog GAN: sample catalogs of any size, category mix and price band; save and load it.

Weights ship as data: ``<name>.pt`` (the generator's ``state_dict``) plus
``<name>.json``, the card (sha256 of the weights, the encoding schema, the network
shape, the training options and fidelity at training time). Loading checks the
checksum and schema and uses ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import torch

from ecomsim.cards import check_file, check_sha256, check_state_dict, load_tensors, read_card, require_keys, sha256_file
from ecomsim.catalog import Catalog
from ecomsim.catalog_source import CatalogSupport
from ecomsim.errors import suggest
from generators.data import table_to_catalog
from generators.model import Generator, activate
from generators.transform import TableTransformer

CARD_FORMAT = "ecomsim-catalog-gan-v1"
DEFAULT_NAME = "catalog_gan"
MAX_REJECTION_ROUNDS = 50


def shipped_generator_card() -> Path:
    """Path of the shipped generator's JSON card inside ``generators/assets``.

    Next to this module rather than ``importlib.resources.files("generators")``: an
    editable install made before ``generators/__init__.py`` existed maps the package as
    a namespace package, which ``resources.files`` cannot read.
    """
    return Path(__file__).resolve().parent / "assets" / f"{DEFAULT_NAME}.json"


def allocate(num_items: int, shares: np.ndarray) -> np.ndarray:
    """Integer counts summing to ``num_items``, closest to ``num_items * shares`` (largest remainder)."""
    exact = num_items * shares
    counts = np.floor(exact).astype(np.int64)
    rest = num_items - int(counts.sum())
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:rest]] += 1
    return counts


class CatalogGAN:
    """A generator and its encoding: draws catalogs, reproducibly from a seed.

    Args:
        transformer: the fitted table encoding.
        generator: the trained generator network.
        card: metadata (training options, category shares, fidelity); see module docstring.
    """

    def __init__(self, transformer: TableTransformer, generator: Generator, card: dict) -> None:
        self.transformer = transformer
        self.generator = generator.eval()
        self.card = card
        self.device = next(generator.parameters()).device
        shares = np.array([card["category_share"][c] for c in transformer.category_names], dtype=np.float64)
        self.category_share = shares / shares.sum()

    @property
    def category_names(self) -> tuple[str, ...]:
        return self.transformer.category_names

    @property
    def embed_dim(self) -> int:
        return sum(c.name.startswith("emb_") for c in self.transformer.columns)

    # ------------------------------------------------------------ validation
    def mix_shares(self, category_mix: Mapping[str, float] | None) -> np.ndarray:
        """Normalised shares over ``category_names`` (training shares when ``None``)."""
        if category_mix is None:
            return self.category_share
        if not isinstance(category_mix, Mapping) or not category_mix:
            raise ValueError(f"category_mix must be a non-empty dict category -> share, got {category_mix!r}")
        names = list(self.category_names)
        shares = np.zeros(len(names))
        for name, share in category_mix.items():
            if name not in names:
                raise ValueError(f"category_mix has unknown category {name!r}; valid: {names}.{suggest(str(name), names)}")
            if isinstance(share, bool) or not isinstance(share, (int, float)) or not np.isfinite(share) or share < 0:
                raise ValueError(f"category_mix[{name!r}] must be a finite number >= 0, got {share!r}")
            shares[names.index(name)] = float(share)
        if shares.sum() <= 0:
            raise ValueError(f"category_mix must have a positive share somewhere, got {dict(category_mix)}")
        return shares / shares.sum()

    # --------------------------------------------------------------- sampling
    @torch.inference_mode()
    def _generate(self, categories: np.ndarray, gen: torch.Generator) -> pd.DataFrame:
        if self.device.type == "cpu" and torch.get_num_threads() > 1:
            # a few thousand rows through a small MLP: one thread is fastest, and on a busy
            # machine several spinning OpenMP threads made a 2000-item draw 25x slower (measured)
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                return self._generate(categories, gen)
            finally:
                torch.set_num_threads(threads)
        n = len(categories)
        cond = torch.zeros(n, self.transformer.num_categories, device=self.device)
        cond[torch.arange(n), torch.as_tensor(categories, device=self.device)] = 1.0
        z = torch.randn(n, self.generator.noise_dim, generator=gen, device=self.device)
        raw = self.generator(z, cond)
        rows = activate(raw, self.transformer.spans(), 1.0, gen, hard=True)
        return self.transformer.decode(rows.cpu().numpy(), categories)

    def sample_table(self, num_items: int, seed: int, category_mix: Mapping[str, float] | None = None,
                     price_band: tuple[float, float] | None = None) -> pd.DataFrame:
        """``num_items`` generated rows (a table, see ``generators.data``), shuffled.

        Category counts are exact: ``num_items * share`` rounded by largest remainder.
        ``price_band=(low, high)`` keeps only rows priced in ``[low, high]`` (rejection
        sampling); a band the generator rarely reaches for some category is an error.
        """
        if isinstance(num_items, bool) or not isinstance(num_items, (int, np.integer)) or num_items < 1:
            raise ValueError(f"num_items must be a positive integer, got {num_items!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an integer, got {seed!r}")
        shares = self.mix_shares(category_mix)
        if price_band is not None:
            lo, hi = (float(v) for v in price_band)
            if not 0 <= lo < hi:
                raise ValueError(f"price_band must be (low, high) with 0 <= low < high, got {tuple(price_band)!r}")
        counts = allocate(int(num_items), shares)
        gen = torch.Generator(device=self.device).manual_seed(int(seed) % (1 << 63))
        parts = []
        for c in np.flatnonzero(counts):
            need, got, drawn = int(counts[c]), [], 0
            for _ in range(MAX_REJECTION_ROUNDS):
                batch = need if price_band is None else max(2 * need, 256)
                t = self._generate(np.full(batch, c), gen)
                drawn += batch
                if price_band is not None:
                    t = t[(t["price"] >= lo) & (t["price"] <= hi)]
                got.append(t)
                need -= min(need, len(t))
                if need == 0:
                    break
            else:
                kept = sum(len(t) for t in got)
                raise ValueError(
                    f"price_band {price_band!r} holds too few generated {self.category_names[c]!r} items: "
                    f"{kept} of {drawn} draws ({kept / drawn:.2%}); widen the band or lower that category's share"
                )
            parts.append(pd.concat(got).iloc[: int(counts[c])])
        table = pd.concat(parts, ignore_index=True)
        perm = np.random.default_rng(int(seed) % (1 << 63)).permutation(len(table))
        return table.iloc[perm].reset_index(drop=True)

    def sample(self, num_items: int, seed: int, category_mix: Mapping[str, float] | None = None,
               price_band: tuple[float, float] | None = None) -> Catalog:
        """A validated :class:`Catalog` of ``num_items`` generated items (see :meth:`sample_table`)."""
        table = self.sample_table(num_items, seed, category_mix, price_band)
        meta = {"source": "generators.CatalogGAN", "generator_sha256": self.card.get("sha256"), "seed": int(seed),
                "category_mix": None if category_mix is None else dict(category_mix),
                "price_band": None if price_band is None else list(price_band)}
        return table_to_catalog(table, self.category_names, meta)

    def support(self) -> CatalogSupport:
        """What every catalog this generator draws satisfies (``ecomsim`` bounds ``catalog="gan"`` observations by it).

        ``tanh`` keeps a mode column's ``alpha`` in [-1, 1], so :meth:`TableTransformer.decode` puts the mapped
        value within ``(+-4 std_k + mean_k) * cat_std_c + cat_mean_c`` over modes ``k`` and categories ``c``
        (the same operations, and each is monotone); prices are then rounded to cents, at least 0.01.
        """
        span = {}
        for c in self.transformer.columns:
            if c.kind == "constant":
                span[c.name] = (c.means[0], c.means[0])
            elif c.name in ("price", "rel_popularity"):
                ends = [(a * 4.0 * sd + mu) * cs + cm for a in (-1.0, 1.0) for mu, sd in zip(c.means, c.stds)
                        for cm, cs in zip(c.cat_means, c.cat_stds)]
                span[c.name] = (min(ends), max(ends))
        price = np.maximum(np.round(np.exp(np.array(span["price"])), 2), 0.01)
        lo, hi = span["rel_popularity"]
        return CatalogSupport((float(np.log(price[0])), float(np.log(price[1]))), hi - lo)

    # ------------------------------------------------------------------ files
    def save(self, directory: str | Path, name: str = DEFAULT_NAME) -> Path:
        """Write ``<name>.pt`` and ``<name>.json`` (the card, with the weights' sha256); return the card path."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        weights = directory / f"{name}.pt"
        state = {k: v.detach().cpu() for k, v in self.generator.state_dict().items()}
        torch.save(state, weights)
        card = dict(self.card)
        card.update(format=CARD_FORMAT, weights=weights.name, sha256=sha256_file(weights),
                    schema=self.transformer.to_dict())
        self.card = card
        path = directory / f"{name}.json"
        path.write_text(json.dumps(card, indent=1, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, card_path: str | Path | None = None, device: str = "cpu") -> "CatalogGAN":
        """Load a generator from its card (the shipped one when ``None``); checks format, checksum and schema."""
        card_path = Path(card_path) if card_path is not None else shipped_generator_card()
        fix = "; build it with scripts/train_gan.py"
        card = read_card(check_file(card_path, "generator card", "a generator card (.json)", fix), CARD_FORMAT, "generator",
                         required=("weights", "sha256", "schema", "network", "category_share"))
        where = f"generator card {str(card_path)!r}"
        if not isinstance(card["network"], dict):
            raise ValueError(f"{where}: 'network' must be an object with noise_dim and gen_hidden, got {card['network']!r}")
        require_keys(card["network"], ("noise_dim", "gen_hidden"), f"{where} 'network'")
        weights = check_file(card_path.parent / str(card["weights"]), "generator weights file", fix=f" (named by {where})")
        check_sha256(weights, card["sha256"], "generator weights", "rebuild with scripts/train_gan.py")
        try:
            transformer = TableTransformer.from_dict(card["schema"])
            net = card["network"]
            generator = Generator(int(net["noise_dim"]), transformer.num_categories, transformer.width,
                                  tuple(int(h) for h in net["gen_hidden"]))
            shares = [float(card["category_share"][c]) for c in transformer.category_names]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{where} has an invalid schema, network or category_share: "
                             f"{type(exc).__name__}: {exc}") from None
        if not all(np.isfinite(shares)) or min(shares) < 0 or sum(shares) <= 0:
            raise ValueError(f"{where}: category_share must be finite shares >= 0 with a positive sum, got {shares}")
        state = check_state_dict(load_tensors(weights, "generator weights", map_location=device), weights, "generator weights")
        try:
            generator.load_state_dict(state)
        except RuntimeError as exc:
            raise ValueError(f"generator weights {str(weights)!r} do not match the card's schema: {exc}") from exc
        return cls(transformer, generator.to(device), card)

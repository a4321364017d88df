"""One PNG comparing real and synthetic catalogs: marginals and price by category."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from generators.data import embedding_columns


def comparison_figure(real: pd.DataFrame, synthetic: pd.DataFrame, path: str | Path,
                      title: str = "real (held-out) vs synthetic", extra: dict[str, pd.DataFrame] | None = None) -> Path:
    """Write ``path``: category shares, log price, quality, log relative popularity, two embedding
    dims, and log price by category as box plots. ``extra`` adds more synthetic tables (e.g. CTGAN)."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on servers
    import matplotlib.pyplot as plt

    tables = {"real": real, "synthetic": synthetic, **(extra or {})}
    colors = dict(zip(tables, ["#444444", "#d95f02", "#1b9e77", "#7570b3"]))
    emb = embedding_columns(real)[:2]
    fig, axes = plt.subplots(2, 4, figsize=(18, 8))
    ax = axes[0, 0]
    cats = sorted(real["category"].unique())
    width = 0.8 / len(tables)
    for i, (name, t) in enumerate(tables.items()):
        share = t["category"].value_counts(normalize=True).reindex(cats, fill_value=0.0)
        ax.bar(np.arange(len(cats)) + i * width, share.to_numpy(), width, label=name, color=colors[name])
    ax.set_xticks(np.arange(len(cats)) + 0.4 - width / 2, cats, rotation=45, ha="right")
    ax.set_title("category share")
    ax.legend()
    panels = [("price", np.log, "log price"), ("quality", None, "quality"),
              ("rel_popularity", np.log, "log relative popularity")] + [(e, None, e) for e in emb]
    for ax, (col, fn, label) in zip([axes[0, 1], axes[0, 2], axes[0, 3], axes[1, 0], axes[1, 1]], panels):
        values = {n: (fn(t[col].to_numpy()) if fn else t[col].to_numpy()) for n, t in tables.items()}
        lo = min(np.quantile(v, 0.001) for v in values.values())
        hi = max(np.quantile(v, 0.999) for v in values.values())
        bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 40)
        for n, v in values.items():
            ax.hist(v, bins=bins, density=True, histtype="step", lw=1.8, label=n, color=colors[n])
        ax.set_title(label)
    axes[1, 2].remove()
    axes[1, 3].remove()
    ax = fig.add_subplot(2, 4, (7, 8))
    pos, data, cols = [], [], []
    for j, cat in enumerate(cats):
        for i, (n, t) in enumerate(tables.items()):
            data.append(np.log(t.loc[t["category"] == cat, "price"].to_numpy()))
            pos.append(j * (len(tables) + 1) + i)
            cols.append(colors[n])
    bp = ax.boxplot(data, positions=pos, widths=0.8, patch_artist=True, showfliers=False)
    for patch, c in zip(bp["boxes"], cols):
        patch.set_facecolor(c)
    ax.set_xticks([j * (len(tables) + 1) + (len(tables) - 1) / 2 for j in range(len(cats))], cats, rotation=45, ha="right")
    ax.set_title("log price by category (boxes: " + ", ".join(tables) + ")")
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path

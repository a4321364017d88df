"""Global importances: mean ``|attribution|`` per feature group and head over a sample of logged steps."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecomsim.explain.shoppers import EXPLAINED_HEADS, explain_features
from ecomsim.shoppers.network import BehaviorNet


def global_importance(
    net: BehaviorNet,
    steps_data: dict,
    user_names: list[str],
    item_names: list[str],
    heads: tuple[str, ...] | list[str] = EXPLAINED_HEADS,
    sample: int = 2000,
    seed: int = 0,
    ig_steps: int = 32,
    tolerance: float = 2e-3,
) -> pd.DataFrame:
    """Mean ``|attribution|`` per feature group and head over a sample of logged steps.

    Args:
        net: the behaviour network.
        steps_data: ``{slate_size: StepData}`` logs (e.g. ``log_reference_world(...).steps``).
        user_names, item_names: the network's feature names (its card's ``feature_schema``).
        heads: heads to explain.
        sample: logged steps drawn (uniformly without replacement, pooled over slate sizes).
        seed: seeds the draw.
        ig_steps, tolerance: first-pass nodes and completeness target per unit (looser
            than for single explanations: a mean of many ``|attribution|`` barely moves).

    Returns:
        Frame indexed by group, one column per head (probability units), rows sorted by
        the mean over heads, largest first; ``attrs["units"]`` holds the number of
        explained impressions / steps per head.
    """
    rng = np.random.default_rng(seed)
    sizes = {k: len(s) for k, s in steps_data.items()}
    total = sum(sizes.values())
    if total == 0:
        raise ValueError("steps_data holds no logged steps")
    pick = np.sort(rng.choice(total, size=min(sample, total), replace=False))
    cols: dict[str, dict[str, list[np.ndarray]]] = {h: {} for h in heads}
    units = {h: 0 for h in heads}
    offset = 0
    for k, s in steps_data.items():
        sel = pick[(pick >= offset) & (pick < offset + sizes[k])] - offset
        offset += sizes[k]
        if len(sel) == 0:
            continue
        ex = explain_features(net, s.user[sel], s.items[sel], s.positions, s.channel[sel], heads=heads,
                              level=s.level[sel], user_names=user_names, item_names=item_names, steps=ig_steps,
                              tolerance=tolerance)
        for h, e in ex.items():
            names, attr = e.grouped()
            for j, g in enumerate(names):
                cols[h].setdefault(g, []).append(np.abs(attr[:, j]))
            units[h] += len(e.output)
    table = pd.DataFrame({h: {g: float(np.concatenate(v).mean()) for g, v in cols[h].items()} for h in heads}).fillna(0.0)
    table = table.loc[table.mean(axis=1).sort_values(ascending=False, kind="stable").index]
    table.index.name = "group"
    table.attrs["units"] = units
    return table


def importance_figure(table: pd.DataFrame, top: int = 12, title: str = "behaviour model: mean |attribution|"):
    """Bar chart of :func:`global_importance` (one panel per head, the ``top`` groups): a matplotlib ``Figure``."""
    from matplotlib.figure import Figure  # no pyplot: no display backend needed

    heads = list(table.columns)
    fig = Figure(figsize=(3.2 * len(heads), 0.32 * min(top, len(table)) + 1.4))
    axes = fig.subplots(1, len(heads), sharey=True, squeeze=False)[0]
    rows = table.iloc[:top][::-1]
    for ax, h in zip(axes, heads):
        ax.barh(rows.index, rows[h].to_numpy(), color="#4477aa")
        ax.set_title(h, fontsize=10)
        ax.set_xlabel("probability", fontsize=8)
        ax.tick_params(labelsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig

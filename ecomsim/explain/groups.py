"""Readable names and groups of the behaviour model's inputs (for attributions).

One-hot and embedding columns sum into groups (``category``, ``embedding``,
``segment``, ``channel``); ``price_vs_budget`` holds the four price-against-budget
columns of ``SessionTracker``. Attributions are additive, so a group's credit is the
sum of its columns'.
"""

from __future__ import annotations

PRICE_VS_BUDGET = frozenset({"log_price_over_budget", "over_budget", "sensitivity_x_log_price_over_budget",
                             "sensitivity_x_over_budget"})
# (group, exact names, name prefixes): the first rule that matches names a feature's group
GROUP_RULES: tuple[tuple[str, frozenset[str], tuple[str, ...]], ...] = (
    ("price_vs_budget", PRICE_VS_BUDGET, ()),
    ("price", frozenset({"log_price_z"}), ()),
    ("budget", frozenset({"log_budget"}), ()),
    ("price_sensitivity", frozenset({"price_sensitivity"}), ()),
    ("affinity", frozenset({"affinity", "irrelevance"}), ()),
    ("category", frozenset(), ("cat_",)),
    ("embedding", frozenset(), ("emb_",)),
    ("quality", frozenset({"quality"}), ()),
    ("popularity", frozenset({"rel_popularity"}), ()),
    ("repeats", frozenset({"repeats", "seen"}), ()),  # "seen": the observation's shown-before flag
    ("satisfied_need", frozenset({"category_bought"}), ("bought_",)),
    ("segment", frozenset(), ("segment_",)),
    ("channel", frozenset(), ("channel_",)),
    ("interest", frozenset(), ("interest_",)),  # the observation's profile interest vector
    ("session_progress", frozenset({"steps", "step_frac", "clicks", "carts", "purchases", "no_click_run",
                                    "last_clicked"}), ()),
    ("fatigue", frozenset({"irr_sum", "irr_ewma", "rep_ewma"}), ()),
    ("click_quality", frozenset({"click_quality"}), ()),
    ("position", frozenset({"position"}), ()),
)


def feature_groups(names: list[str]) -> dict[str, list[int]]:
    """Column indexes of ``names`` per readable group (rules in ``GROUP_RULES``; unmatched names are their own group)."""
    groups: dict[str, list[int]] = {}
    for j, name in enumerate(names):
        bare = name.split(".", 1)[1] if name.startswith(("user.", "item.")) else name
        group = next((g for g, exact, prefixes in GROUP_RULES if bare in exact or bare.startswith(prefixes)), bare)
        groups.setdefault(group, []).append(j)
    return groups


def input_names(user_names: list[str], item_names: list[str]) -> list[str]:
    """Columns of :attr:`Explanation.attributions`: user features, item features, ``position``.

    Names are prefixed ``user.`` / ``item.`` only if the two lists share a name.
    """
    if set(user_names) & set(item_names):
        return [f"user.{n}" for n in user_names] + [f"item.{n}" for n in item_names] + ["position"]
    return list(user_names) + list(item_names) + ["position"]

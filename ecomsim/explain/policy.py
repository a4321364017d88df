"""What a trained policy looks at: Integrated Gradients of its candidate scores w.r.t. its observation.

A policy for ``Recommend-v0`` / ``Slate-v0`` scores the ``M`` candidates (PPO: the
action logits; for slates the top slot's; DQN: the Q-values). For each observation
the score of the candidate the policy picks (the argmax) is attributed to the
observation's features, named by the env's layout (``core.layout``: ``portrait_names``,
``session_names`` and ``num_candidates`` blocks of ``candidate_names``). The chosen
candidate's own block and the other candidates' blocks are reported apart: ``chosen.affinity`` is how much the picked
item's affinity raised its score, ``others.affinity`` how much the rival items'
affinities did (summed over them).

**Baseline**: the mean observation of the explained batch (the average state the
policy met). Scores are logits / Q-values, so attributions are in those units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from ecomsim.explain.groups import feature_groups
from ecomsim.explain.shoppers import captum_ig


def policy_score_fn(model: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """``(n, obs_dim)`` float tensor -> ``(n, M)`` candidate scores of an SB3 PPO / DQN model (differentiable).

    DQN (a policy with ``q_net``): Q-values. Actor-critic (PPO, A2C): the action
    distribution's logits; for ``MultiDiscrete`` slates, the top slot's.
    """
    policy = getattr(model, "policy", None)
    if policy is None:
        raise ValueError(f"expected a Stable-Baselines3 model (with .policy), got {type(model).__name__}")
    policy.set_training_mode(False)
    if hasattr(policy, "q_net"):
        return lambda obs: policy.q_net(obs)
    if not hasattr(policy, "get_distribution"):
        raise ValueError(f"{type(policy).__name__} has neither q_net (DQN) nor get_distribution (actor-critic)")

    def scores(obs: torch.Tensor) -> torch.Tensor:
        dist = policy.get_distribution(obs).distribution
        return dist[0].logits if isinstance(dist, (list, tuple)) else dist.logits

    return scores


def observation_names(core: Any) -> tuple[list[str], list[str], int]:
    """``(context names, candidate feature names, num_candidates)`` of an env core's observation layout."""
    lay = core.layout
    context = [f"portrait.{n}" for n in lay.portrait_names] + [f"session.{n}" for n in lay.session_names]
    return context, list(lay.candidate_names), int(core.num_candidates)


@dataclass
class PolicyExplanation:
    """Attributions of a policy's chosen-candidate score over ``n`` observations.

    Attributes:
        names: ``F`` feature names: context features, then ``chosen.<name>`` and
            ``others.<name>`` per candidate feature.
        attributions: ``(n, F)`` credit in score units (logits or Q-values).
        chosen: ``(n,)`` the candidate picked (argmax of the scores).
        score: ``(n,)`` its score; ``baseline_score`` ``(n,)`` at the baseline observation.
    """

    names: list[str]
    attributions: np.ndarray
    chosen: np.ndarray
    score: np.ndarray
    baseline_score: np.ndarray

    @property
    def completeness_gap(self) -> np.ndarray:
        """``(n,)`` ``sum(attributions) - (score - baseline_score)``."""
        return self.attributions.sum(axis=1) - (self.score - self.baseline_score)

    def importance(self, by: str = "group") -> pd.DataFrame:
        """Mean ``|attribution|`` and mean attribution per feature (``by="feature"``) or readable group
        (``by="group"``: ``chosen.<group>``, ``others.<group>``, ``portrait.<group>``, ...), largest first."""
        if by not in ("group", "feature"):
            raise ValueError(f"by must be 'group' or 'feature', got {by!r}")
        names, attr = self.names, self.attributions
        if by == "group":
            parts: dict[str, list[int]] = {}
            for prefix in ("portrait", "session", "chosen", "others"):
                cols = [j for j, n in enumerate(names) if n.startswith(prefix + ".")]
                for g, idx in feature_groups([names[j].split(".", 1)[1] for j in cols]).items():
                    parts[f"{prefix}.{g}"] = [cols[i] for i in idx]
            names = list(parts)
            attr = np.stack([self.attributions[:, idx].sum(axis=1) for idx in parts.values()], axis=1)
        table = pd.DataFrame({"mean_abs_attribution": np.abs(attr).mean(axis=0), "mean_attribution": attr.mean(axis=0)},
                             index=pd.Index(names, name="feature"))
        return table.sort_values("mean_abs_attribution", ascending=False, kind="stable")


def explain_policy(model: Any, obs: np.ndarray, core: Any, steps: int = 64) -> PolicyExplanation:
    """Attribute an SB3 policy's score of its chosen candidate to the observation's features.

    Args:
        model: an SB3 PPO / DQN model (see :func:`policy_score_fn`).
        obs: ``(n, obs_dim)`` observations the policy acted on.
        core: the env's core (``env.unwrapped.core``): the layout's names.
        steps: Gauss-Legendre nodes (policy networks are small; the gap is reported).

    Returns:
        A :class:`PolicyExplanation` (baseline: the mean of ``obs``).
    """
    context, cand_names, m = observation_names(core)
    obs = np.asarray(obs, dtype=np.float32)
    c, f = len(context), len(cand_names)
    if obs.ndim != 2 or obs.shape[1] != c + m * f:
        raise ValueError(f"obs must be (n, {c + m * f}) for this env's layout ({c} context features and "
                         f"{m} candidates of {f}), got {obs.shape}")
    score_fn = policy_score_fn(model)
    param = next(model.policy.parameters())
    x = torch.as_tensor(obs, device=param.device)
    x0 = x.mean(dim=0, keepdim=True).expand_as(x).contiguous()
    with torch.no_grad():
        scores, base = score_fn(x), score_fn(x0)
    if scores.shape != (len(obs), m):
        raise ValueError(f"the policy scores {tuple(scores.shape)} candidates per observation, the env has {m}")
    chosen = scores.argmax(dim=1)
    ig = captum_ig()(score_fn)
    attr = ig.attribute(x, baselines=x0, target=chosen, n_steps=steps, method="gausslegendre").detach().cpu().numpy()
    n = len(obs)
    blocks = attr[:, c:].reshape(n, m, f)
    ch = chosen.cpu().numpy()
    own = blocks[np.arange(n), ch]
    others = blocks.sum(axis=1) - own
    names = context + [f"chosen.{nm}" for nm in cand_names] + [f"others.{nm}" for nm in cand_names]
    rows = np.arange(n)
    return PolicyExplanation(names, np.concatenate([attr[:, :c], own, others], axis=1), ch,
                             scores.cpu().numpy()[rows, ch], base.cpu().numpy()[rows, ch])


def policy_figure(table: pd.DataFrame, top: int = 15, title: str = "policy: mean |attribution| of the chosen score"):
    """Horizontal bars of :meth:`PolicyExplanation.importance` (the ``top`` rows): a matplotlib ``Figure``."""
    from matplotlib.figure import Figure

    rows = table.iloc[:top][::-1]
    fig = Figure(figsize=(6.5, 0.3 * len(rows) + 1.2))
    ax = fig.subplots()
    colors = ["#cc6677" if n.startswith("chosen.") else "#4477aa" if n.startswith("others.") else "#999933"
              for n in rows.index]
    ax.barh(rows.index, rows["mean_abs_attribution"].to_numpy(), color=colors)
    ax.set_xlabel("score units (logit / Q-value)", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig

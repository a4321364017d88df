"""Explanations: why the simulated shoppers (and the agent) act as they do.

* :mod:`ecomsim.explain.shoppers`: Integrated-Gradients attributions of the DNN
  shoppers' click, cart, purchase and leave probabilities to their named inputs
  (:func:`explain_features` on feature arrays, :func:`explain_step` on an env).
* :mod:`ecomsim.explain.importance`: global importances over logged steps, and a picture.
* :mod:`ecomsim.explain.policy`: attributions of a trained policy's scores to its
  observation.
* :mod:`ecomsim.explain.report`: the HTML report (sessions step by step, the policy's
  influential features, global importances).

Needs the optional extra ``explain`` (Captum): ``pip install "ecomsim[explain]"``.
Nothing here runs unless called: the envs' defaults never import it.
"""

from ecomsim.explain.groups import GROUP_RULES, feature_groups, input_names
from ecomsim.explain.importance import global_importance, importance_figure
from ecomsim.explain.shoppers import EXPLAINED_HEADS, Explanation, baseline_inputs, explain_features, explain_step

__all__ = [
    "EXPLAINED_HEADS", "GROUP_RULES", "Explanation", "baseline_inputs", "explain_features", "explain_step",
    "feature_groups", "global_importance", "importance_figure", "input_names",
]

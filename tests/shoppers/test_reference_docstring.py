"""The reference world's docstring is its code, term for term (README sends readers to it as the ground truth).

Three ties: every parameter of ``ReferenceParams`` is named in the docstring and every parameter-like name in its
equations is a field; each of the click, cart and purchase equations uses exactly the parameters that
``ReferenceWorld.logit_terms`` uses for that head; and ``tests/test_why.py`` checks that those terms add up to
what ``ReferenceWorld.reaction`` puts through the sigmoid. A term added to the code but not to the docstring (the
premium-price term and ``g_price`` once were) fails here.
"""

from __future__ import annotations

import dataclasses
import inspect
import re

from ecomsim.shoppers import reference
from ecomsim.shoppers.reference import ReferenceParams, ReferenceWorld

FIELDS = {f.name for f in dataclasses.fields(ReferenceParams)}
DOC = reference.__doc__
#: names in the equations that are not parameters: the state, the item and the portrait
VARIABLES = {"p_click", "p_cart", "p_buy", "theta_k", "rep_i", "sat_i", "q_i", "z_i", "r_i", "e_i", "price_i",
             "oos_i", "h_o", "h_purchase", "h_click", "a", "f", "w", "s", "k", "c", "p", "u", "e", "m", "budget",
             "o", "sigmoid", "log", "max", "sum", "mean", "normalise", "slots", "shown"}


def _equation(title: str) -> str:
    """The indented block after ``**title**`` (the equation, its continuation lines included)."""
    start = DOC.index(f"**{title}**")
    block = DOC[start:].split("::", 1)[1]
    lines = []
    for line in block.splitlines()[1:]:
        if line.strip() and not line.startswith("    "):
            break
        lines.append(line)
    return "\n".join(lines)


def _names(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))


def _code_params(head: str) -> set[str]:
    """The ``p.<name>`` parameters ``logit_terms`` puts in the dict of ``head``."""
    src = inspect.getsource(ReferenceWorld.logit_terms)
    body = src.split(f"{head} = {{", 1)[1].split("}", 1)[0]
    # the click's channel terms come from arrays built from the parameters (``_b_ch``; the position term's
    # ``_eta`` is the attention ``theta_k``, documented in its own paragraph)
    return set(re.findall(r"\bp\.(\w+)", body)) | ({"b_ch"} if head == "click" else set())


def test_every_parameter_is_documented_and_every_documented_parameter_exists():
    words = _names(DOC)
    assert FIELDS <= words, f"parameters missing from the docstring: {sorted(FIELDS - words)}"
    for title in ("Click", "Cart given click", "Purchase given cart", "Leaving"):
        unknown = _names(_equation(title)) - FIELDS - VARIABLES - {"0", "1"}
        assert not unknown, f"{title}: names in the equation that are neither parameters nor variables: {unknown}"


def test_each_equation_uses_the_parameters_its_code_uses():
    attention = DOC[DOC.index("**Attention**"):DOC.index("**Click**")]
    assert "theta_k = (1 + k) ** -eta_c" in attention and "np.log1p(positions" in inspect.getsource(
        ReferenceWorld.logit_terms)  # log theta_k = -eta_c log(1 + k)
    for title, head in (("Click", "click"), ("Cart given click", "cart"), ("Purchase given cart", "buy")):
        documented = _names(_equation(title)) & FIELDS
        assert documented == _code_params(head), (title, sorted(documented ^ _code_params(head)))

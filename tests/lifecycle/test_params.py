"""The lifecycle equations' docstring and the parameter dataclass stay tied, term for term."""

from __future__ import annotations

import dataclasses
import re

import pytest

from ecomsim.lifecycle import params as lifecycle_params
from ecomsim.lifecycle.calibration import CALIBRATED
from ecomsim.lifecycle.params import LifecycleParams

FIELDS = {f.name for f in dataclasses.fields(LifecycleParams)}


def table_rows() -> dict[str, str]:
    """``name -> source`` from the parameter table of ``LifecycleParams``' docstring."""
    rows = re.findall(r"^\s*``(\w+)``\s+(.*)$", LifecycleParams.__doc__, flags=re.M)
    return {name: text for name, text in rows}


def test_table_lists_exactly_the_fields():
    assert set(table_rows()) == FIELDS


def test_every_field_appears_in_the_equations():
    doc = lifecycle_params.__doc__
    missing = sorted(name for name in FIELDS if not re.search(rf"\b{name}\b", doc))
    assert not missing, f"parameters not in the module docstring's equations: {missing}"


def test_equation_names_that_look_like_parameters_are_fields():
    # snake_case names in the docstring's equation blocks (indented lines) must be parameters or state
    state = {"nubar_j", "L_j", "A_j", "lam_j", "haz_j", "nu_c", "phi_nc", "relevant_shown", "intent_offset",
             "pi_n", "lambda_n", "h_n", "G_n", "H_n", "centroid_c", "CHANNEL_BUDGET", "CHANNEL_PATIENCE"}
    lines = [ln for ln in lifecycle_params.__doc__.splitlines() if ln.startswith("    ")]
    names = set(re.findall(r"\b[a-zA-Z]+(?:_[a-zA-Z]+)+\b", "\n".join(lines)))
    unknown = sorted(names - FIELDS - state)
    assert not unknown, f"names in the equations that are neither parameters nor documented state: {unknown}"


def test_sources_say_fit_or_assumption_and_fit_means_calibrated():
    rows = table_rows()
    fitted = {name for name, text in rows.items() if "[CDNOW fit]" in text}
    assert fitted == set(CALIBRATED)
    assert all("[" in text for text in rows.values())


@pytest.mark.parametrize("field, value, message", [
    ("visit_rate", 0.0, "visit_rate must be > 0, got 0.0"),
    ("churn_rate", -0.1, "churn_rate must be >= 0, got -0.1"),
    ("message_cost", (0.1, -0.2, 0.0), r"message_cost must be >= 0, got \(0.1, -0.2, 0.0\)"),
    ("message_response", (0.1, 0.2), r"message_response must have one value per message kind"),
    ("coupon_days", float("nan"), "coupon_days must be a finite number, got nan"),
])
def test_bad_parameters_are_named(field, value, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(LifecycleParams(), **{field: value})

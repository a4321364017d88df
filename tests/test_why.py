"""``info["why"]`` and the ``ansi`` trace: explained from the state before the step, outcomes untouched."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import ecomsim  # noqa: F401  (registers the ids)
from ecomsim.explain.why import reason_strings, slot_reasons

pytest.importorskip("captum", reason="the DNN shoppers' reasons need the optional extra 'explain' (captum)")

KEYS = ("items", "clicked", "carted", "purchased", "clicks", "purchases", "revenue", "left", "session_length")


def _single(env_id: str, steps: int, **kwargs):
    env = gym.make(env_id, max_steps=6, **kwargs)
    rng = np.random.default_rng(5)
    obs, _ = env.reset(seed=3)
    trace, whys = [obs], []
    for _ in range(steps):
        a = rng.integers(0, 20, size=env.action_space.shape) if env.action_space.shape else int(rng.integers(0, 20))
        obs, r, te, tr, info = env.step(a)
        trace += [obs, r, te, tr, *(np.asarray(info[k]) for k in KEYS)]
        whys.append((a, info.get("why")))
        if te or tr:
            trace.append(env.reset()[0])
    return trace, whys


@pytest.mark.parametrize("env_id", ["ecomsim/Recommend-v0", "ecomsim/Slate-v0"])
@pytest.mark.parametrize("user_model", ["dnn", "reference"])
def test_explained_steps_keep_the_outcomes_bit_for_bit(env_id, user_model):
    off, _ = _single(env_id, 25, user_model=user_model)
    on, whys = _single(env_id, 25, user_model=user_model, explain=True, explain_reasons=2)
    assert len(on) == len(off) and all(np.array_equal(a, b) for a, b in zip(on, off))
    for action, why in whys:
        assert why["unit"] == ("probability" if user_model == "dnn" else "logit")
        slots = [r["slot"] for r in why["items"]]
        picked = np.atleast_1d(action)
        assert slots == [j for j in range(len(picked)) if picked[j] not in picked[:j]]  # a repeat is shown once
        for rec in why["items"]:
            heads = {"click", "purchase"} | ({"cart"} if user_model == "reference" else set())
            assert set(rec["reasons"]) == heads and all(len(v) <= 2 for v in rec["reasons"].values())
            assert 0 <= rec["p_purchase"] <= rec["p_click"] <= 1


def test_vector_env_why_per_sub_env_and_skipped_sessions():
    kw = dict(num_envs=6, max_steps=3, user_model="reference")
    plain, explained = gym.make_vec("ecomsim/Slate-v0", **kw), gym.make_vec("ecomsim/Slate-v0", explain=True, **kw)
    plain.reset(seed=1)
    explained.reset(seed=1)
    rng = np.random.default_rng(0)
    ended = np.zeros(6, dtype=bool)
    for _ in range(8):
        a = rng.integers(0, 20, size=(6, 5))
        out_a, out_b = plain.step(a), explained.step(a)
        for x, y in zip(out_a[:4], out_b[:4]):
            np.testing.assert_array_equal(x, y)
        why = out_b[4]["why"]
        assert why.shape == (6,) and why.dtype == object
        for i in range(6):
            assert (why[i] is None) == bool(ended[i])  # a session restarted by the autoreset is not stepped
            if why[i] is not None:
                assert [r["item"] for r in why[i]["items"]] == [it for it in out_b[4]["items"][i] if it >= 0]
        ended = out_b[2] | out_b[3]


def test_reference_world_reasons_are_its_equations_terms():
    env = gym.make_vec("ecomsim/Slate-v0", num_envs=16, user_model="reference")
    env.reset(seed=2)
    for _ in range(4):
        env.step(np.random.default_rng(1).integers(0, 20, size=(16, 5)))
    core = env.unwrapped.core
    items = core.candidates[:, :5]
    pos = np.arange(5.0)
    r, terms = core.shopper.reaction(items, pos), core.shopper.logit_terms(items, pos)
    sig = lambda x: 0.5 * (1.0 + np.tanh(0.5 * x))  # noqa: E731
    attraction = sum(v for k, v in terms["click"].items() if k != "position")
    np.testing.assert_allclose(np.exp(terms["click"]["position"]) * sig(attraction), r.click, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(sig(sum(terms["cart"].values())), r.cart, rtol=1e-12)
    np.testing.assert_allclose(sig(sum(terms["purchase"].values())), r.purchase, rtol=1e-12)
    # an item over budget: its price-vs-budget term lowers the purchase logit
    over = core.state.item_table.price[items] > core.portraits.budget[:, None]
    assert over.any() and (terms["purchase"]["price_vs_budget"][over] < 0).all()


def test_gather_is_what_the_step_shows():
    env = gym.make_vec("ecomsim/Slate-v0", num_envs=5)
    env.reset(seed=0)
    core = env.unwrapped.core
    slots = np.array([[0, 1, 2, 3, 4], [1, 1, 2, 2, 3], [7, 7, 7, 7, 7], [0, 3, 0, 3, 9], [19, 18, 17, 16, 15]])
    items, shown = core.gather(slots)
    np.testing.assert_array_equal(items, np.take_along_axis(core.candidates, slots, axis=1))
    info = env.step(slots)[4]
    np.testing.assert_array_equal(np.where(shown, items, -1), info["items"])


def test_ansi_render_traces_items_outcomes_patience_intent_and_reasons():
    env = gym.make("ecomsim/Slate-v0", render_mode="ansi", explain=True)
    env.reset(seed=4)
    _, _, _, _, info = env.step(np.arange(5))
    text = env.render()
    assert text.startswith("slate step 1/") and "patience" in text and "intent" in text
    assert len([ln for ln in text.splitlines() if ln.startswith("  slot ")]) == 5
    assert all(f"    why: {line}" in text for line in reason_strings(info["why"]) if line)
    assert "click:" in text and "purchase:" in text
    assert slot_reasons(info["why"], 5) == [line for line in reason_strings(info["why"])]  # distinct slots
    quiet = gym.make("ecomsim/Recommend-v0", render_mode="ansi")  # no explain: the state, no reasons
    quiet.reset(seed=4)
    quiet.step(0)
    assert "patience" in quiet.render() and "why:" not in quiet.render()
    vec = gym.make_vec("ecomsim/Slate-v0", num_envs=3, render_mode="ansi", explain=True)
    vec.reset(seed=4)
    info = vec.step(np.tile(np.arange(5), (3, 1)))[4]
    texts = vec.render()
    assert len(texts) == 3 and all(f"why: {reason_strings(info['why'][i])[0]}" in texts[i] for i in range(3))


def test_explain_option_is_checked():
    with pytest.raises(TypeError, match="explain must be True or False, got 'yes'"):
        gym.make("ecomsim/Recommend-v0", explain="yes")
    with pytest.raises(ValueError, match=r"explain_reasons must be in \[1, 100\], got 0"):
        gym.make("ecomsim/Recommend-v0", explain_reasons=0)

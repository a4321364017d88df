"""The SB3 VecEnv with ``num_workers > 1`` (``ecomsim.shards``) equals the one-process VecEnv step by step."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from agents.vec_env import EcomSB3VecEnv

threadpool_limits(1)


@pytest.mark.parametrize("user_model", ["reference", "dnn"])
def test_sharded_sb3_vec_env_equals_one_process(user_model: str) -> None:
    n = 10
    one = EcomSB3VecEnv(n, user_model=user_model, max_steps=6)
    with EcomSB3VecEnv(n, num_workers=3, user_model=user_model, max_steps=6) as sharded:
        for env in (one, sharded):
            env.seed(5)
        np.testing.assert_array_equal(one.reset(), sharded.reset())
        rng = np.random.default_rng(0)
        ends = 0
        for _ in range(200):
            actions = rng.integers(0, 20, size=n)
            o1, r1, d1, i1 = one.step(actions)
            o2, r2, d2, i2 = sharded.step(actions)
            np.testing.assert_array_equal(o1, o2)
            np.testing.assert_array_equal(r1, r2)
            np.testing.assert_array_equal(d1, d2)
            assert o1.dtype == o2.dtype and r1.dtype == r2.dtype
            for a, b in zip(i1, i2):
                assert a.keys() == b.keys()
                for key in a:
                    if key == "episode":  # "t" is wall time
                        assert (a[key]["r"], a[key]["l"]) == (b[key]["r"], b[key]["l"])
                    else:
                        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
            ends += int(d1.sum())
        assert ends > 200
        assert sharded.get_attr("step_count") == one.get_attr("step_count")
        np.testing.assert_array_equal(sharded.get_attr("candidates", [9])[0], one.get_attr("candidates", [9])[0])
        sharded.set_attr("step_count", 3, [2, 7])
        one.set_attr("step_count", 3, [2, 7])
        assert sharded.get_attr("step_count") == one.get_attr("step_count")
        assert sharded.env_method("render", indices=[0, 9]) == one.env_method("render", indices=[0, 9])


def test_close_is_idempotent_and_refuses_steps_after() -> None:
    env = EcomSB3VecEnv(4, num_workers=2, user_model="reference")
    env.reset()
    env.close()
    env.close()
    with pytest.raises(RuntimeError, match="closed"):
        env.step(np.zeros(4, dtype=np.int64))

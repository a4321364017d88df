"""Discrete CQL with d3rlpy on logged transitions, exported as a plain :class:`agents.offline.QNetwork`.

d3rlpy 2.8 pins ``gymnasium==1.0.0`` and ``gym>=0.26``, so this module runs in d3rlpy's
own venv (recipe in ``docs/offline_rl.md``); it imports d3rlpy lazily and nothing here is
needed to *use* the result: :func:`to_qnetwork` copies d3rlpy's Q-functions into our
network (tensor for tensor) and checks that both give the same Q-values and actions, so
the main environment scores the policy from the weights and card alone.

Transitions are the arrays of ``agents.minari_io.to_transitions``: ``observations``
``(S, D)``, ``actions`` ``(S,)``, ``rewards`` ``(S,)``, ``terminals`` / ``timeouts`` ``(S,)``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from agents.offline import ACTIVATIONS, QNetwork, QNetworkSpec, candidate_rows


@dataclass(frozen=True)
class CQLTrainConfig:
    """Hyperparameters of d3rlpy's ``DiscreteCQL`` (names as d3rlpy's where they map one to one).

    Attributes:
        steps: gradient steps.
        batch_size: transitions per step.
        learning_rate: Adam step size.
        gamma: discount per step.
        alpha: weight of CQL's conservative term ``logsumexp_a Q(s, a) - Q(s, a_data)``.
        target_update_interval: gradient steps between target-network copies.
        n_critics: Q-networks in the ensemble (actions by their mean Q).
        network: ``"mlp"`` (d3rlpy's vector encoder and linear head) or ``"candidate"`` (one
            scorer shared over candidates, see :class:`agents.offline.QNetworkSpec`).
        context_dim: the observation's context features for ``network="candidate"``.
        hidden_units: MLP hidden widths.
        activation: ``relu`` | ``tanh`` | ``swish`` | ``gelu``.
        observation_scaler: ``"standard"`` (mean / std of the data, stored with the weights) or ``None``.
        seed: d3rlpy's seed (Python, numpy and torch global generators: a training script's own process).
    """

    steps: int = 10_000
    batch_size: int = 128
    learning_rate: float = 3e-4
    gamma: float = 0.99
    alpha: float = 1.0
    target_update_interval: int = 1000
    n_critics: int = 1
    network: str = "mlp"
    context_dim: int | None = None
    hidden_units: tuple[int, ...] = (128, 128)
    activation: str = "relu"
    observation_scaler: str | None = "standard"
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "target_update_interval", "n_critics"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not 0 < self.learning_rate < 1:
            raise ValueError(f"learning_rate must be in (0, 1), got {self.learning_rate!r}")
        if not 0 <= self.gamma < 1:
            raise ValueError(f"gamma must be in [0, 1), got {self.gamma!r}")
        if not self.alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {list(ACTIVATIONS)}, got {self.activation!r}")
        if self.observation_scaler not in (None, "standard"):
            raise ValueError(f"observation_scaler must be None or 'standard', got {self.observation_scaler!r}")
        if self.network not in ("mlp", "candidate"):
            raise ValueError(f"network must be 'mlp' or 'candidate', got {self.network!r}")
        if self.network == "candidate" and self.context_dim is None:
            raise ValueError("network='candidate' needs context_dim (the dataset metadata's context_dim)")
        if not self.hidden_units or any(int(u) < 1 for u in self.hidden_units):
            raise ValueError(f"hidden_units must be positive widths, got {self.hidden_units!r}")

    def to_card(self) -> dict[str, Any]:
        d = asdict(self)
        d["hidden_units"] = list(self.hidden_units)
        return d


def train_cql(transitions: dict[str, np.ndarray], num_actions: int, config: CQLTrainConfig,
              log_dir: str | None = None) -> tuple[QNetwork, dict[str, Any]]:
    """Train ``DiscreteCQL`` on ``transitions``; returns the exported network and a training summary.

    Args:
        transitions: see the module docstring.
        num_actions: ``M``, the discrete actions (candidates).
        config: hyperparameters.
        log_dir: d3rlpy's metric logs go here (``None``: not written).
    """
    import logging

    import d3rlpy
    import structlog
    from d3rlpy.logging import FileAdapterFactory, NoopAdapterFactory

    # d3rlpy prints every config value (the scaler's 2 x 491 floats included) and a line per epoch: keep warnings only
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    obs = np.ascontiguousarray(transitions["observations"], dtype=np.float32)
    actions = np.asarray(transitions["actions"], dtype=np.int64)
    if actions.min() < 0 or actions.max() >= num_actions:
        raise ValueError(f"actions must lie in [0, {num_actions - 1}], got range [{actions.min()}, {actions.max()}]")
    dataset = d3rlpy.dataset.MDPDataset(
        observations=obs, actions=actions.reshape(-1, 1), rewards=np.asarray(transitions["rewards"], dtype=np.float32).reshape(-1, 1),
        terminals=np.asarray(transitions["terminals"], dtype=np.float32), timeouts=np.asarray(transitions["timeouts"], dtype=np.float32),
        action_space=d3rlpy.constants.ActionSpace.DISCRETE, action_size=num_actions)
    d3rlpy.seed(config.seed)
    scaler = None
    if config.observation_scaler == "standard":
        scaler = d3rlpy.preprocessing.StandardObservationScaler(mean=obs.mean(axis=0), std=obs.std(axis=0))
    spec = QNetworkSpec(input_dim=obs.shape[1], num_actions=num_actions, kind=config.network,
                        context_dim=config.context_dim if config.network == "candidate" else None,
                        hidden_units=tuple(int(u) for u in config.hidden_units), activation=config.activation,
                        num_critics=config.n_critics, observation_scaler=config.observation_scaler,
                        scaler_eps=float(scaler.eps) if scaler is not None else 1e-3)
    if config.network == "candidate":
        encoder, q_func = _candidate_factories(spec)
    else:
        encoder = d3rlpy.models.VectorEncoderFactory(hidden_units=list(config.hidden_units), activation=config.activation)
        q_func = d3rlpy.models.MeanQFunctionFactory()
    algo = d3rlpy.algos.DiscreteCQLConfig(
        learning_rate=config.learning_rate, batch_size=config.batch_size, gamma=config.gamma, alpha=config.alpha,
        target_update_interval=config.target_update_interval, n_critics=config.n_critics,
        encoder_factory=encoder, q_func_factory=q_func, observation_scaler=scaler,
    ).create(device="cpu:0")
    logger = FileAdapterFactory(root_dir=log_dir) if log_dir else NoopAdapterFactory()
    t0 = time.perf_counter()
    history = algo.fit(dataset, n_steps=config.steps, n_steps_per_epoch=min(config.steps, 5000), experiment_name="cql",
                       with_timestamp=False, logger_adapter=logger, show_progress=False, save_interval=10**9)
    seconds = time.perf_counter() - t0
    net = to_qnetwork(algo, spec, obs[: min(len(obs), 4096)])
    summary = {"seconds": round(seconds, 1), "d3rlpy_version": d3rlpy.__version__, "torch_version": torch.__version__,
               "epochs": [{"epoch": int(e), **{k: float(v) for k, v in m.items()}} for e, m in history]}
    return net, summary


def to_qnetwork(algo, spec: QNetworkSpec, check_obs: np.ndarray) -> QNetwork:
    """Copy a fitted d3rlpy ``DiscreteCQL``/``DQN`` (mean Q-functions over an MLP encoder) into a :class:`QNetwork`.

    Raises:
        ValueError: d3rlpy's modules do not have the spec's layout, or the copy disagrees with
            ``algo.predict`` / ``algo.predict_value`` on ``check_obs`` ``(N, D)``.
    """
    net = QNetwork(spec)
    q_funcs = algo.impl.q_function
    if len(q_funcs) != spec.num_critics:
        raise ValueError(f"d3rlpy model has {len(q_funcs)} critics, the spec {spec.num_critics}")
    for ours, theirs in zip(net.critics, q_funcs):
        head = [theirs._fc] if spec.kind == "mlp" else []  # a candidate scorer ends in its own 1-wide layer
        src = [m for m in list(theirs._encoder._layers) + head if isinstance(m, torch.nn.Linear)]
        dst = [m for m in ours if isinstance(m, torch.nn.Linear)]
        if [tuple(m.weight.shape) for m in src] != [tuple(m.weight.shape) for m in dst]:
            raise ValueError(f"d3rlpy layers {[tuple(m.weight.shape) for m in src]} do not match the spec's "
                             f"{[tuple(m.weight.shape) for m in dst]}")
        with torch.no_grad():
            for s, d in zip(src, dst):
                d.weight.copy_(s.weight)
                d.bias.copy_(s.bias)
    scaler = algo.config.observation_scaler
    if spec.observation_scaler == "standard":
        with torch.no_grad():
            net.obs_mean.copy_(torch.as_tensor(np.asarray(scaler.mean), dtype=torch.float32))
            net.obs_std.copy_(torch.as_tensor(np.asarray(scaler.std), dtype=torch.float32))
    net.eval()
    with torch.inference_mode():
        q = net(torch.as_tensor(check_obs)).numpy()
    ours = q.argmax(axis=1)
    theirs = algo.predict(check_obs)
    q_theirs = algo.predict_value(check_obs, theirs)
    gap = float(np.abs(q[np.arange(len(theirs)), theirs] - q_theirs).max())
    if gap > 1e-4 * max(1.0, float(np.abs(q_theirs).max())) or (ours != theirs).mean() > 0.001:
        raise ValueError(f"exported network disagrees with d3rlpy: max |Q| gap {gap:.2e}, "
                         f"{int((ours != theirs).sum())} of {len(ours)} greedy actions differ")
    return net


def _candidate_factories(spec: QNetworkSpec):
    """d3rlpy encoder and Q-function factories for ``kind="candidate"``: the encoder's output
    already is one Q-value per candidate, so the Q-function skips d3rlpy's linear head."""
    from dataclasses import dataclass, field

    from d3rlpy.models.encoders import EncoderFactory, register_encoder_factory
    from d3rlpy.models.q_functions import QFunctionFactory, register_q_func_factory
    from d3rlpy.models.torch import DiscreteMeanQFunction, DiscreteMeanQFunctionForwarder, QFunctionOutput

    width_in, _ = spec.scorer_dims

    class CandidateScorer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers: list[torch.nn.Module] = []
            width = width_in
            for units in spec.hidden_units:
                layers += [torch.nn.Linear(width, units), ACTIVATIONS[spec.activation]()]
                width = units
            layers.append(torch.nn.Linear(width, 1))
            self._layers = torch.nn.Sequential(*layers)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self._layers(candidate_rows(x, int(spec.context_dim), spec.num_actions)).squeeze(-1)

    class ScoresQFunction(DiscreteMeanQFunction):
        def forward(self, x):
            return QFunctionOutput(q_value=self._encoder(x), quantiles=None, taus=None)

    @dataclass()
    class CandidateEncoderFactory(EncoderFactory):
        hidden_units: list = field(default_factory=lambda: list(spec.hidden_units))

        def create(self, observation_shape):
            return CandidateScorer()

        @staticmethod
        def get_type() -> str:
            return "ecomsim_candidate"

    @dataclass()
    class CandidateQFunctionFactory(QFunctionFactory):
        def create_discrete(self, encoder, hidden_size, action_size):
            q = ScoresQFunction(encoder, hidden_size, action_size)
            q._fc.requires_grad_(False)  # unused head (d3rlpy builds one): frozen, never exported
            return q, DiscreteMeanQFunctionForwarder(q, action_size)

        @staticmethod
        def get_type() -> str:
            return "ecomsim_candidate"

    for register, cls in ((register_encoder_factory, CandidateEncoderFactory), (register_q_func_factory, CandidateQFunctionFactory)):
        try:
            register(cls)
        except AssertionError:  # registered by an earlier call in this process
            pass
    return CandidateEncoderFactory(), CandidateQFunctionFactory()

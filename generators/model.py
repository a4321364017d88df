"""The conditional WGAN-GP networks: a residual MLP generator and an MLP critic.

Every random number comes from an explicit ``torch.Generator`` (weights init, noise,
Gumbel draws, gradient-penalty mixing), so nothing touches torch's global RNG.
No dropout in the critic for the same reason; the gradient penalty regularises it.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def init_weights(module: nn.Module, gen: torch.Generator) -> None:
    """PyTorch's default Linear init (uniform +-1/sqrt(fan_in)), drawn from ``gen``."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.in_features)
            with torch.no_grad():
                m.weight.uniform_(-bound, bound, generator=gen)
                m.bias.uniform_(-bound, bound, generator=gen)


def gumbel_softmax(logits: torch.Tensor, tau: float, gen: torch.Generator) -> torch.Tensor:
    """Soft Gumbel-softmax sample with noise from ``gen`` (``F.gumbel_softmax`` uses the global RNG)."""
    u = torch.rand(logits.shape, generator=gen, device=logits.device).clamp_(1e-10, 1.0 - 1e-10)
    return torch.softmax((logits - torch.log(-torch.log(u))) / tau, dim=-1)


class Residual(nn.Module):
    """``[relu(bn(W x)), x]``: CTGAN's concatenating residual block."""

    def __init__(self, i: int, o: int) -> None:
        super().__init__()
        self.fc = nn.Linear(i, o)
        self.bn = nn.BatchNorm1d(o)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.relu(self.bn(self.fc(x))), x], dim=1)


class Generator(nn.Module):
    """Maps (noise ``(B, noise_dim)``, condition one-hot ``(B, C)``) to raw outputs ``(B, width)``."""

    def __init__(self, noise_dim: int, cond_dim: int, width: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        dim = noise_dim + cond_dim
        for h in hidden:
            layers.append(Residual(dim, h))
            dim += h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(dim, width)
        self.noise_dim = noise_dim

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(torch.cat([z, cond], dim=1)))


def activate(raw: torch.Tensor, spans: list[tuple[int, int, str]], tau: float, gen: torch.Generator | None,
             hard: bool = False) -> torch.Tensor:
    """Apply each span's activation. Softmax spans: Gumbel-softmax (``gen``) or, ``hard``, a one-hot sample."""
    parts = []
    for start, end, act in spans:
        x = raw[:, start:end]
        if act == "tanh":
            parts.append(torch.tanh(x))
        elif act == "linear":
            parts.append(x)
        elif hard:
            assert gen is not None
            y = gumbel_softmax(x, 1.0, gen)
            parts.append(nn.functional.one_hot(y.argmax(dim=1), end - start).to(raw.dtype))
        else:
            assert gen is not None
            parts.append(gumbel_softmax(x, tau, gen))
    return torch.cat(parts, dim=1)


class Critic(nn.Module):
    """Wasserstein critic on (row, condition), with ``pac`` rows packed per score (PacGAN, against mode collapse)."""

    def __init__(self, width: int, cond_dim: int, hidden: tuple[int, ...], pac: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        dim = (width + cond_dim) * pac
        for h in hidden:
            layers += [nn.Linear(dim, h), nn.LeakyReLU(0.2)]
            dim = h
        layers.append(nn.Linear(dim, 1))
        self.net = nn.Sequential(*layers)
        self.pac = pac

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = torch.cat([x, cond], dim=1)
        return self.net(h.reshape(h.shape[0] // self.pac, -1))


def gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor, cond: torch.Tensor,
                     gen: torch.Generator) -> torch.Tensor:
    """WGAN-GP penalty ``(||grad||_2 - 1)^2`` on random mixes of real and fake packs."""
    pac = critic.pac
    eps = torch.rand(real.shape[0] // pac, 1, 1, generator=gen, device=real.device)
    eps = eps.expand(-1, pac, real.shape[1]).reshape(real.shape)
    mix = (eps * real + (1.0 - eps) * fake).requires_grad_(True)
    score = critic(mix, cond)
    (grad,) = torch.autograd.grad(score.sum(), mix, create_graph=True)
    norms = grad.reshape(-1, pac * real.shape[1]).norm(2, dim=1)
    return ((norms - 1.0) ** 2).mean()

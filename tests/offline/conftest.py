"""Shared set-up of the offline-RL / OPE tests: one BLAS and torch thread (small matrices on a shared CPU)."""

from __future__ import annotations

import torch
from threadpoolctl import threadpool_limits

torch.set_num_threads(1)
threadpool_limits(1)

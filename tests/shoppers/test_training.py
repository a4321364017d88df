"""Behaviour-model training: end-of-epoch checkpoints, a stop request between batches, resume bit for bit."""

from __future__ import annotations

import pytest
import torch

from ecomsim.data.reference_logs import log_reference_world
from ecomsim.errors import TrainingStopped
from ecomsim.shoppers.training import BehaviorTrainConfig, train_behavior


@pytest.fixture(scope="module")
def logs():
    train, val, _ = log_reference_world(200, seed=0, batch=64).split((0.6, 0.2, 0.2))
    return train.steps, val.steps


def stop_after(batches: int):
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] > batches

    return should_stop


def test_stopped_then_resumed_equals_uninterrupted(logs, tmp_path):
    cfg = BehaviorTrainConfig(hidden=8, max_epochs=4, patience=10, batch_steps=128)
    whole, history = train_behavior(*logs, cfg)
    ckpt = tmp_path / "ck.pt"
    per_epoch = -(-sum(len(s) for s in logs[0].values()) // 128)  # batches per epoch
    with pytest.raises(TrainingStopped) as exc:
        train_behavior(*logs, cfg, checkpoint=ckpt, should_stop=stop_after(per_epoch + 2))
    assert exc.value.checkpoint == ckpt and exc.value.progress == "epoch 2 of at most 4 (1 done)"
    resumed, history2 = train_behavior(*logs, cfg, checkpoint=ckpt, resume=True)
    assert [h["val_loss"] for h in history2] == [h["val_loss"] for h in history]
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k


def test_stop_in_the_first_epoch_has_no_checkpoint_and_bad_resumes_are_named(logs, tmp_path):
    cfg = BehaviorTrainConfig(hidden=8, max_epochs=2, batch_steps=128)
    with pytest.raises(TrainingStopped) as exc:
        train_behavior(*logs, cfg, checkpoint=tmp_path / "ck.pt", should_stop=stop_after(0))
    assert exc.value.checkpoint is None and not (tmp_path / "ck.pt").exists()
    with pytest.raises(FileNotFoundError, match=r"resume: no behaviour checkpoint at '.*ck.pt'"):
        train_behavior(*logs, cfg, checkpoint=tmp_path / "ck.pt", resume=True)
    train_behavior(*logs, BehaviorTrainConfig(hidden=8, max_epochs=1, batch_steps=128), checkpoint=tmp_path / "ck.pt")
    with pytest.raises(ValueError, match=r"behaviour checkpoint '.*ck.pt' was written for other options or logs .*'hidden': 8"):
        train_behavior(*logs, BehaviorTrainConfig(hidden=16, max_epochs=2, batch_steps=128), checkpoint=tmp_path / "ck.pt",
                       resume=True)
    (tmp_path / "ck.pt").write_bytes(b"PK\x03\x04 torn")
    with pytest.raises(ValueError, match=r"behaviour checkpoint '.*ck.pt' is not a readable torch weights file"):
        train_behavior(*logs, cfg, checkpoint=tmp_path / "ck.pt", resume=True)

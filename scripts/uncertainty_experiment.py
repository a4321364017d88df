"""The behaviour ensemble at work: the sim-to-reference gap of PPO, and where the members disagree.

    python scripts/uncertainty_experiment.py --json                       # both sections (about 1 h on 2 shared cores)
    python scripts/uncertainty_experiment.py --sections ood --ood-steps 50   # the disagreement check alone
    python scripts/uncertainty_experiment.py --sections gap --ensemble runs/greedy_ensemble.pt --gap-figure ''

1. **Gap** (``--sections gap``): PPO (the project's defaults, ``--timesteps`` steps) trained
   in each of ``--arms`` (``agents.uncertainty.ARMS``): against one ensemble member
   (``member``: the single learned model an agent can exploit), the same with the MOPO
   penalty (``member_penalty``, ``--penalty``), with a member drawn per session
   (``per_session``) and both (``per_session_penalty``); then each agent's conversion in its
   training simulator and in the reference world on ``--sessions`` seeded sessions, the relative
   gap with its 95% interval. The question: does the gap shrink with the ensemble options?
2. **Out of distribution** (``--sections ood``): the members' disagreement per step under a
   random policy on catalogs like the logs' and on GAN catalogs with a price band or category
   mix the logs never showed (``agents.uncertainty.CATALOGS``), with 95% intervals.

Both sections use ``--ensemble``: the shipped ensemble, or one built by ``scripts/train_ensemble.py``
(on thin or biased logs: the learned model an agent can exploit; ``docs/trust.md``). Agents go to
``--out-dir/<arm>-s<seed>`` (an existing ``model.pt`` there is reused with ``--reuse``); the figures
to ``--gap-figure`` and ``--ood-figure``.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from agents.cli import option, or_empty, output_dir, output_file, parse_args, pin_threads, run
from agents.uncertainty import ARMS, CATALOGS, arm_options, catalog_disagreement, sim_reference_gap

Section = Literal["gap", "ood"]


def known_arm(name: str) -> None:
    if name not in ARMS:
        raise ValueError(f"expected one of {list(ARMS)}, got {name!r}")


def ensemble_file(path: str) -> None:
    """'default' (the shipped ensemble) or a weights file name (its contents are checked in ``main``, before any work:
    command lines in the docs parse in a checkout that has not built it)."""
    if path != "default" and not path.endswith(".pt"):
        raise ValueError(f"expected 'default' or an ensemble weights file ending in .pt, got {path!r}")


def check_ensemble(path: str) -> None:
    """Load the ensemble ``path`` names (file, card, checksum, feature schema), naming the flag if it fails."""
    from ecomsim.shoppers.ensemble import load_ensemble

    if path != "default":
        try:
            load_ensemble(path)
        except (OSError, ValueError) as exc:
            raise ValueError(f"argument --ensemble: {exc}") from None


@dataclass
class Args:
    sections: tuple[str, ...] = ("gap", "ood")
    """what to run: gap, ood (comma-separated)"""
    arms: tuple[str, ...] = option(tuple(ARMS), check=known_arm)
    """arms of the gap experiment (agents/uncertainty.py ARMS)"""
    penalty: float = option(1.0, min=0)
    """the uncertainty penalty lambda of the penalised arms"""
    member: int = option(0, min=0)
    """the ensemble member of the single-model arms"""
    ensemble: str = option("default", check=ensemble_file)
    """the behaviour ensemble of every arm and of the disagreement check: 'default' (the shipped one) or a .pt file
    written by scripts/train_ensemble.py"""
    timesteps: int = option(300_000, min=1)
    """PPO training steps per arm"""
    seeds: tuple[int, ...] = (0,)
    """training seeds (one agent per arm and seed)"""
    env_id: str = "ecomsim/Recommend-v0"
    """the env the agents learn"""
    sessions: int = option(10_000, min=1)
    """evaluation sessions per agent and world"""
    eval_seed: int = 1_000_000
    """seed of the evaluation sessions"""
    reuse: bool = False
    """reuse an agent already saved (model.pt in its run folder under the out dir) instead of training it"""
    ood_steps: int = option(100, min=1)
    """vector steps per catalog of the disagreement check"""
    ood_envs: int = option(256, min=2)
    """sessions stepped together in the disagreement check"""
    out_dir: str = option("runs/uncertainty", check=output_dir)
    """where the agents go"""
    gap_figure: str = option("docs/uncertainty_gap.png", check=or_empty(output_file))
    """figure of the gap section ('' for none)"""
    ood_figure: str = option("docs/uncertainty_ood.png", check=or_empty(output_file))
    """figure of the disagreement section ('' for none)"""
    json: bool = False
    """print the results as JSON on the last line"""
    threads: int = option(1, min=1)
    """torch and BLAS threads"""

    def __post_init__(self) -> None:
        bad = [s for s in self.sections if s not in ("gap", "ood")]
        if bad or not self.sections:
            raise ValueError(f"argument --sections: expected gap and/or ood, got {','.join(self.sections)!r}")


def gap_section(args: Args) -> dict:
    from agents.evaluation import SB3Policy
    from agents.train import AgentTrainConfig, load_model, train
    from ecomsim.registration import env_kwargs

    out = {}
    for arm in args.arms:
        options = arm_options(arm, args.penalty, args.member, args.ensemble)
        for seed in args.seeds:
            run_dir = Path(args.out_dir) / f"{arm}-s{seed}"
            t0 = time.perf_counter()
            if args.reuse and (run_dir / "model.pt").is_file():
                model = load_model(run_dir / "model.pt", "ppo", device="cpu")
            else:
                config = AgentTrainConfig(algo="ppo", env_id=args.env_id, env_options=options, timesteps=args.timesteps,
                                          seed=seed, device="cpu", eval_every=0, progress_bar=False)
                model, _ = train(config, run_dir)
            trained = time.perf_counter() - t0
            row = sim_reference_gap(lambda: SB3Policy(model, "ppo"), env_kwargs(args.env_id, **options), args.sessions,
                                    args.eval_seed)
            row.update(options=options, train_seconds=round(trained, 1), model=str(run_dir / "model.pt"))
            out[f"{arm}-s{seed}"] = row
            print(f"{arm:20s} seed {seed}: conversion sim {row['sim']['value']:.4f} reference "
                  f"{row['reference']['value']:.4f} [{row['reference']['low']:.4f}, {row['reference']['high']:.4f}], "
                  f"gap {row['relative_gap']:+.1%} [{row['relative_gap_ci95'][0]:+.1%}, "
                  f"{row['relative_gap_ci95'][1]:+.1%}] ({trained:.0f}s training)", flush=True)
    return out


def ood_section(args: Args) -> dict:
    out = {}
    ensemble = {} if args.ensemble == "default" else {"ensemble": args.ensemble}
    for name, (kind, options) in CATALOGS.items():
        row = catalog_disagreement({"mode": "recommend", **options, **ensemble}, args.ood_steps, args.ood_envs,
                                   seed=args.eval_seed)
        out[name] = {"kind": kind, "options": options, **row}
        print(f"{name:32s} ({kind:3s}) disagreement {row['mean']:.5f} [{row['low']:.5f}, {row['high']:.5f}] over "
              f"{row['steps']} steps", flush=True)
    return out


def gap_plot(path: str, rows: dict) -> None:
    from matplotlib.figure import Figure

    names = list(rows)
    fig = Figure(figsize=(9, 3.6))
    ax1, ax2 = fig.subplots(1, 2)
    y = range(len(names))
    gap = [100 * rows[n]["relative_gap"] for n in names]
    err = [[100 * (rows[n]["relative_gap"] - rows[n]["relative_gap_ci95"][0]) for n in names],
           [100 * (rows[n]["relative_gap_ci95"][1] - rows[n]["relative_gap"]) for n in names]]
    ax1.barh(list(y), gap, xerr=err, color="#4477aa", capsize=3)
    ax1.axvline(0, color="k", lw=0.8)
    ax1.set_yticks(list(y), names, fontsize=8)
    ax1.set_xlabel("conversion: training sim / reference world - 1 (%)", fontsize=8)
    ax1.set_title("sim-to-reference gap (95% CI)", fontsize=10)
    for world, color, dy in (("sim", "#cc6677", -0.15), ("reference", "#228833", 0.15)):
        v = [rows[n][world]["value"] for n in names]
        e = [[rows[n][world]["value"] - rows[n][world]["low"] for n in names],
             [rows[n][world]["high"] - rows[n][world]["value"] for n in names]]
        ax2.errorbar(v, [i + dy for i in y], xerr=e, fmt="o", color=color, label=world, capsize=3)
    ax2.set_yticks(list(y), [""] * len(names))
    ax2.set_xlabel("conversion rate", fontsize=8)
    ax2.set_title("PPO conversion (95% CI)", fontsize=10)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def ood_plot(path: str, rows: dict) -> None:
    from matplotlib.figure import Figure

    names = list(rows)[::-1]
    fig = Figure(figsize=(7, 3.2))
    ax = fig.subplots()
    v = [rows[n]["mean"] for n in names]
    e = [[rows[n]["mean"] - rows[n]["low"] for n in names], [rows[n]["high"] - rows[n]["mean"] for n in names]]
    colors = ["#228833" if rows[n]["kind"] == "in" else "#cc6677" for n in names]
    ax.barh(names, v, xerr=e, color=colors, capsize=3)
    ax.tick_params(labelsize=8)
    ax.set_xlabel("members' disagreement per step: std of expected purchases (95% CI)", fontsize=8)
    ax.set_title("green: like the training logs, red: never in them (random policy)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, __doc__)
    pin_threads(args.threads)
    check_ensemble(args.ensemble)
    t0 = time.perf_counter()
    report: dict = {"setup": {k: v for k, v in vars(args).items() if k not in ("json",)}}
    if "ood" in args.sections:
        report["ood"] = ood_section(args)
        if args.ood_figure:
            ood_plot(args.ood_figure, report["ood"])
    if "gap" in args.sections:
        report["gap"] = gap_section(args)
        if args.gap_figure:
            gap_plot(args.gap_figure, report["gap"])
    report["seconds"] = round(time.perf_counter() - t0, 1)
    if args.json:
        print(json.dumps(report, default=float))
    return 0


if __name__ == "__main__":
    run(main)

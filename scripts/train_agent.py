"""Train a recommendation policy on ecomsim and score it against the baselines by conversion.

With no arguments: PPO on ``ecomsim/Recommend-v0`` with the defaults of
``agents/defaults.py`` (a few minutes on 2 CPU cores), then random, popularity,
greedy and the LinUCB bandit are scored on the same seeded sessions, in the env's
simulator and in the reference world. Writes under ``--out`` (default
``runs/<algo>-<env>-s<seed>``): ``model.pt`` + ``model.json`` (the agent: weights and
card, ``agents/model_files.py``), ``checkpoint.pt`` + ``state.json`` (for ``--resume``),
``results.json``, ``report.png`` and TensorBoard logs in ``tb/``.

Every option is checked before any work: hyperparameters against SB3's constructor,
paths, and whether ``--num-envs`` fits in memory. Ctrl-C or SIGTERM saves a checkpoint
and prints the command that resumes (exit status 130 or 143); ``--resume`` continues.

    python scripts/train_agent.py
    python scripts/train_agent.py --algo dqn --timesteps 500000
    python scripts/train_agent.py --env-id ecomsim/Slate-v0 --out runs/slate
    python scripts/train_agent.py --env-options '{"shopper_sampling": "per_session"}' --out runs/ppo-ensemble
    python scripts/train_agent.py --algo maskable_ppo --env-options '{"inventory": {}}'
    python scripts/train_agent.py --env-id ecomsim/Inventory-v0 --user-model reference --timesteps 21600
    python scripts/train_agent.py --env-id ecomsim/Retention-v0 --user-model reference --timesteps 40000
    tensorboard --logdir runs

``ecomsim/Inventory-v0`` trains PPO with an MLP over the store's state; the final scores are
its and the store baselines' (never order, base stock with each forecaster, (s, S) tuned
on other seeds) over ``--stores`` held-out stores: profit per day, stock-out rate and
inventory turnover with 95% intervals (``agents.store_eval``), and ``report.png`` shows
stock and sales over time for one store per policy.

``ecomsim/Retention-v0`` trains PPO with an MLP over the customer's state; the final scores
are its and the retention baselines' (never offer, always 10%, the churn rule and the myopic
policy, both tuned on other customers) over ``--customers`` held-out customers: profit per
customer with a 95% interval and the share not churned at day 90 / 180 / 365
(``agents.retention``); ``report.png`` draws the retention curve of every policy.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from agents.cli import json_object, option, output_dir, parse_args, pin_threads, run
from agents.evaluation import SB3Policy, score
from agents.registry import POLICY_NAMES, policy_factory
from agents.report import plot_run, run_results, score_table, store_report, write_results
from agents.signals import resume_command, stop_signals, stopped
from agents.store_train import is_retention_env, is_store_env
from agents.train import AgentTrainConfig, check_output_dir, train
from ecomsim.errors import TrainingStopped, check_choice
from ecomsim.registration import env_kwargs


@dataclass
class Args:
    algo: Literal["ppo", "dqn", "maskable_ppo"] = "ppo"
    """the algorithm (DQN needs the Discrete actions of ecomsim/Recommend-v0; maskable_ppo an env with inventory)"""
    env_id: str = "ecomsim/Recommend-v0"
    """a registered ecomsim id"""
    timesteps: int | None = option(None, min=1)
    """training env steps (default: the algorithm's, agents/defaults.py)"""
    sessions: int = option(5000, min=1)
    """evaluation sessions per policy and world"""
    out: str | None = option(None, check=output_dir)
    """output directory (default: runs/<algo>-<env>-s<seed>)"""
    device: str = "auto"
    """auto, cpu, cuda or cuda:N (auto picks CUDA when present)"""
    resume: bool = False
    """continue from <out>/checkpoint.pt up to --timesteps"""
    trust_pickle: bool = False
    """resume from an earlier release's checkpoint.zip, an SB3 zip that is unpickled (runs code): only a run you trust"""
    seed: int = 0
    """seeds training, the sub-envs (seed + i), the periodic evaluation (seed + 10000) and the final scores (seed + 1000000)"""
    num_envs: int | None = option(None, min=1)
    """training sessions stepped together (default: the algorithm's)"""
    user_model: str | None = None
    """the simulator's shopper model (default: the env's)"""
    catalog: str | None = None
    """catalog name or file (default: the env's)"""
    channel: Literal["app", "web", "social"] | None = None
    """fix the shoppers' channel (default: the population's mix)"""
    env_options: str = "{}"
    """JSON options of the env on top of the id's, e.g. '{"inventory": {}}' or, for Inventory-v0, '{"sessions_per_day": 100}'"""
    customers: int = option(5000, min=1)
    """Retention-v0: held-out customers per policy in the final scores"""
    tune_customers: int = option(1000, min=1)
    """Retention-v0: customers that tune the churn rule and the myopic policy (seeds apart from the scored ones)"""
    stores: int = option(20, min=1)
    """Inventory-v0: held-out store episodes per policy in the final scores"""
    tune_stores: int = option(4, min=1)
    """Inventory-v0: store episodes whose demand tunes the (s, S) baseline (seeds apart from the scored ones)"""
    checkpoint_every: int = option(100_000, min=1)
    """env steps between checkpoints"""
    eval_every: int | None = option(None, min=0)
    """env steps between periodic evaluations (default: timesteps / 8; 0: none)"""
    eval_sessions: int = option(1000, min=1)
    """sessions per periodic evaluation"""
    hyperparams: str = "{}"
    """JSON overrides of agents/defaults.py, e.g. '{"learning_rate": 1e-3}'"""
    baselines: tuple[str, ...] = ("random", "popularity", "greedy", "bandit")
    """baselines scored next to the trained policy ('' for none)"""
    threads: int = option(1, min=1)
    """torch and BLAS threads (1 is fastest for these small networks)"""
    progress: bool = True
    """show the progress bar"""

    def __post_init__(self) -> None:
        for name in self.baselines:
            check_choice("--baselines", name, POLICY_NAMES)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, __doc__)
    pin_threads(args.threads)
    options = json_object("--env-options", args.env_options)
    options.update({k: v for k, v in {"user_model": args.user_model, "catalog": args.catalog,
                                      "channel": args.channel}.items() if v is not None})
    config = AgentTrainConfig(algo=args.algo, env_id=args.env_id, env_options=options, timesteps=args.timesteps,
                              seed=args.seed, device=args.device, num_envs=args.num_envs,
                              hyperparams=json_object("--hyperparams", args.hyperparams),
                              checkpoint_every=args.checkpoint_every, eval_sessions=args.eval_sessions,
                              progress_bar=args.progress)
    # a store's or a customer's episodes are its score: no session evaluation
    store = is_store_env(args.env_id) or is_retention_env(args.env_id)
    eval_every = 0 if store else (args.eval_every if args.eval_every is not None else max(1, config.timesteps // 8))
    config = dataclasses.replace(config, eval_every=eval_every)
    short = args.env_id.split("/")[-1].split("-")[0].lower()
    out = Path(args.out if args.out is not None else f"runs/{args.algo}-{short}-s{args.seed}")
    check_output_dir(out, args.resume)
    print(f"training {args.algo.upper()} on {args.env_id} for {config.timesteps} steps -> {out}")
    with stop_signals() as stop:
        try:
            with stop.deferred():
                model, summary = train(config, out, resume=args.resume, should_stop=stop, trust_pickle=args.trust_pickle)
        except TrainingStopped as exc:
            again = list(argv if argv is not None else sys.argv[1:]) + ([] if args.out else ["--out", str(out)])
            return stopped(stop, exc, resume_command("scripts/train_agent.py", again))
        if is_retention_env(args.env_id):
            return finish_retention(args, config, out, model, summary)
        if store:
            return finish_store(args, config, out, model, summary)
        return finish(args, config, options, out, model, summary)


def finish(args: Args, config: AgentTrainConfig, options: dict[str, Any], out: Path, model, summary: dict[str, Any]) -> int:
    """Score the trained policy and the baselines, write results.json and report.png."""
    start = time.time()
    kwargs = env_kwargs(args.env_id, **options)
    # far from the training seeds (seed + i) and the periodic evaluation (seed + 10_000 + i)
    eval_seed = args.seed + 1_000_000
    rows = {args.algo: score(lambda: SB3Policy(model, args.algo), kwargs, args.sessions, seed=eval_seed)}
    for name in args.baselines:
        rows[name] = score(policy_factory(name), kwargs, args.sessions, seed=eval_seed)
    print(f"\n{args.env_id} {kwargs}: {args.sessions} evaluation sessions per policy and world, 95% CIs")
    print(score_table(rows, reference="popularity" if "popularity" in rows else None))
    if kwargs.get("inventory") is not None:  # empty shelves shown and the scoring store's books (results.json: funnel)
        print("\n" + store_report(rows))

    results = run_results(config, summary, rows, kwargs, time.time() - start, args.sessions, eval_seed, out / "model.pt")
    write_results(out / "results.json", results)
    plot_run(out / "report.png", summary, rows, f"{args.algo.upper()} on {args.env_id}, {summary['timesteps']} steps")
    print(f"\nwrote {out / 'model.pt'} (+ model.json), {out / 'results.json'}, {out / 'report.png'}; "
          f"tensorboard --logdir {out / 'tb'}")
    return 0


def finish_store(args: Args, config: AgentTrainConfig, out: Path, model, summary: dict[str, Any]) -> int:
    """Score the trained store policy and the store baselines on held-out stores; results.json and report.png."""
    from agents.store_eval import compare_store_policies, plot_store_report, store_table

    seeds = [args.seed + 1_000_000 + k for k in range(args.stores)]
    tune_seeds = [args.seed + 2_000_000 + k for k in range(args.tune_stores)]
    print(f"\n{args.env_id} {config.options()}: {args.stores} held-out stores per policy, 95% intervals over stores")
    result = compare_store_policies(config.options(), seeds, tune_seeds, agents={args.algo: model})
    print(store_table(result["scores"]))
    histories = result.pop("histories")
    write_results(out / "results.json", {
        "config": config.to_dict(), "resolved_hyperparams": summary["resolved"], "timesteps": summary["timesteps"],
        "train_seconds": summary["train_seconds"], "env_options": config.options(), "seeds": seeds,
        "training_stores": summary["rollout_history"], "model": str(out / "model.pt"), **result})
    plot_store_report(out / "report.png", histories, f"{args.algo.upper()} on {args.env_id}, {summary['timesteps']} days; "
                      f"store seed {seeds[0]}")
    print(f"\nwrote {out / 'model.pt'} (+ model.json), {out / 'results.json'}, {out / 'report.png'}; "
          f"tensorboard --logdir {out / 'tb'}")
    return 0


def finish_retention(args: Args, config: AgentTrainConfig, out: Path, model, summary: dict[str, Any]) -> int:
    """Score the trained policy and the retention baselines on held-out customers; results.json and report.png."""
    from agents.retention import compare_retention_policies, plot_retention
    from ecomsim.lifecycle.retention import RetentionEnv

    seeds = [args.seed + 1_000_000 + k for k in range(args.customers)]
    tune_seeds = [args.seed + 2_000_000 + k for k in range(args.tune_customers)]
    print(f"\n{args.env_id} {config.options()}: {args.customers} held-out customers per policy, 95% intervals")
    act = lambda obs: model.predict(obs, deterministic=True)[0]  # noqa: E731
    result = compare_retention_policies(RetentionEnv(**config.options()), seeds, tune_seeds, agents={args.algo: act})
    write_results(out / "results.json", {
        "config": config.to_dict(), "resolved_hyperparams": summary["resolved"], "timesteps": summary["timesteps"],
        "train_seconds": summary["train_seconds"], "env_options": config.options(), "seeds": [seeds[0], seeds[-1]],
        "training_customers": summary["rollout_history"], "model": str(out / "model.pt"), **result})
    plot_retention(out / "report.png", result, f"{args.algo.upper()} on {args.env_id}, {summary['timesteps']} steps; "
                   f"{args.customers} customers per policy")
    print(f"\nwrote {out / 'model.pt'} (+ model.json), {out / 'results.json'}, {out / 'report.png'}; "
          f"tensorboard --logdir {out / 'tb'}")
    return 0


if __name__ == "__main__":
    run(main)

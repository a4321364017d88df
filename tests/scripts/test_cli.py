"""The one script convention: ``@dataclass Args`` parsed by ``agents.cli``, one error line, one thread setting.

Scripts are loaded in-process (their ``main`` does not run), so checking all of them costs one import each.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from agents.cli import attribute_docs, build_parser, existing_file, option, parse_args, pin_threads

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(p.stem for p in (ROOT / "scripts").glob("*.py"))


def load(name: str):
    module_name = f"_script_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, ROOT / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # inspect and get_type_hints find the Args class through it
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def parse_fails(cls, argv: list[str], capsys) -> str:
    """The one stderr line of a rejected command line (exit status 2)."""
    with pytest.raises(SystemExit) as exc:
        parse_args(cls, argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


@dataclass
class Demo:
    policy: list[str]
    """policies to score"""
    sessions: int = option(20_000, min=1)
    """sessions per policy"""
    seed: int = 0
    """evaluation seed"""
    beta: float = 0.05
    """a weight"""
    algo: Literal["ppo", "dqn"] = "ppo"
    """the algorithm"""
    timesteps: int | None = option(None, min=1)
    """training steps (default: the algorithm's)"""
    sizes: tuple[int, ...] = option((1, 64), min=1)
    """batch sizes"""
    json: bool = False
    """print JSON"""
    progress: bool = True
    """show a progress bar"""
    card: str | None = option(None, check=existing_file)
    """a file"""

    def __post_init__(self) -> None:
        if self.seed == 13:
            raise ValueError("--seed 13 is reserved, got 13")


# ------------------------------------------------------------------ parser
def test_values_are_kept_as_given():
    a = parse_args(Demo, ["--policy", "x", "--policy", "y", "--seed", "0", "--beta", "0", "--sizes", "1,8"])
    assert a == Demo(policy=["x", "y"], seed=0, beta=0.0, sizes=(1, 8))
    assert parse_args(Demo, ["--policy", "x"]).timesteps is None  # absent: None, not a made-up default
    assert parse_args(Demo, ["--policy", "x", "--sizes", ""]).sizes == ()
    assert parse_args(Demo, ["--policy", "x", "--algo=dqn", "--timesteps=5"]).algo == "dqn"
    assert parse_args(Demo, ["--policy", "x", "--card", __file__]).card == __file__


@pytest.mark.parametrize("argv, expected", [
    ([], (False, True)), (["--json"], (True, True)), (["--no-progress"], (False, False)),
    (["--json", "true", "--progress", "0"], (True, False)), (["--json=yes", "--progress=False"], (True, False)),
    (["--json", "--no-json"], (False, True)),
])
def test_booleans(argv, expected):
    a = parse_args(Demo, ["--policy", "x", *argv])
    assert (a.json, a.progress) == expected


@pytest.mark.parametrize("argv, message", [
    (["--sessions", "0"], "error: argument --sessions: expected an integer >= 1, got '0'"),
    (["--sessions", "1.5"], "error: argument --sessions: expected an integer, got '1.5'"),
    (["--beta", "nan"], "error: argument --beta: expected a finite number, got 'nan'"),
    (["--json", "maybe"], "error: argument --json/--no-json: expected one of ['true', '1', 'yes', 'false', '0', 'no'], got 'maybe'"),
    (["--no-json", "1"], "error: argument --json/--no-json: --no-json takes no value, got '1'"),
    (["--algo", "pp"], "error: argument --algo: expected one of ['ppo', 'dqn'], got 'pp'. Did you mean 'ppo'?"),
    (["--sizes", "1,0"], "error: argument --sizes: expected an integer >= 1, got '0'"),
    (["--sesions", "5"], "error: unrecognized arguments: --sesions 5. Did you mean '--sessions'?"),
    (["--sess", "5"], "error: unrecognized arguments: --sess 5."),  # no abbreviations
    (["--seed", "13"], "error: --seed 13 is reserved, got 13"),
    (["--card", "/no/such.json"], "error: argument --card: expected an existing file, got '/no/such.json'"),
    (["--card", "/tmp"], "error: argument --card: expected a file, got the directory '/tmp'"),
])
def test_bad_values_name_flag_value_and_what_is_valid(argv, message, capsys):
    err = parse_fails(Demo, ["--policy", "x", *argv], capsys)
    assert err.startswith(message), err


def test_required_and_help(capsys):
    assert "the following arguments are required: --policy" in parse_fails(Demo, [], capsys)
    text = build_parser(Demo, "demo").format_help()
    for flag, doc in [("--sessions SESSIONS", "sessions per policy (default: 20000)"),
                      ("--algo {ppo,dqn}", "the algorithm (default: 'ppo')"),
                      ("--json [true|false], --no-json", "print JSON (default: False)"),
                      ("--timesteps TIMESTEPS", "training steps (default: the algorithm's)")]:
        assert flag in text and doc in " ".join(text.split()), (flag, text)


def test_pin_threads_sets_torch_and_blas():
    import torch
    from threadpoolctl import threadpool_info

    before = torch.get_num_threads()
    try:
        pin_threads(2)
        assert torch.get_num_threads() == 2
        pin_threads(1)
        assert torch.get_num_threads() == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads must be an integer >= 1, got 0"):
        pin_threads(0)


# ----------------------------------------------------------- the scripts
@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_follows_the_convention(name):
    assert len(SCRIPTS) >= 10  # the glob found the scripts
    module = load(name)
    source = (ROOT / "scripts" / f"{name}.py").read_text()
    assert "import argparse" not in source and "os.environ" not in source  # one parser, one thread setting
    assert re.search(r"args = parse_args\(Args, argv, __doc__\)\n    pin_threads\(args.threads\)", source)
    assert source.rstrip().endswith('if __name__ == "__main__":\n    run(main)')
    docs = attribute_docs(module.Args)
    fields = [f.name for f in dataclasses.fields(module.Args) if f.init]
    assert "threads" in fields and [f for f in fields if not docs.get(f)] == []  # every flag explains itself
    text = " ".join(build_parser(module.Args, module.__doc__).format_help().split())
    for f in fields:
        assert "--" + f.replace("_", "-") in text and docs[f].split("(")[0].strip() in text, f


@pytest.mark.parametrize("name", SCRIPTS)
def test_zero_is_kept_or_refused_never_replaced(name, tmp_path, capsys):
    """Every integer flag given 0 parses to 0 or fails naming the flag; no script turns 0 into its default."""
    Args = load(name).Args
    required = {"evaluate": ["--policy", "random"], "score_offline": ["--card", "card.json"],
                "export_minari": ["--datasets-path", str(tmp_path)],
                "train_offline": ["--datasets-path", str(tmp_path), "--out", str(tmp_path / "out")]}.get(name, [])
    for f in dataclasses.fields(Args):
        if not f.init or f.type not in ("int", "int | None"):
            continue
        flag = "--" + f.name.replace("_", "-")
        low = f.metadata.get("min")
        if low is not None and low > 0:
            assert f"argument {flag}: expected an integer >= {low}, got '0'" in parse_fails(Args, [*required, flag, "0"], capsys)
        else:
            assert getattr(parse_args(Args, [*required, flag, "0"]), f.name) == 0


def commands_in(text: str) -> list[tuple[str, list[str]]]:
    """``(script, flags)`` of every ``python3 scripts/X.py ...`` command in ``text``."""
    out = []
    for m in re.finditer(r"python3? scripts/(\w+)\.py([^`\n]*)", text):
        words = []
        for w in shlex.split(m.group(2).replace("|", " | ")):
            if w in ("&&", ";", "|", "#"):
                break
            words.append(w)
        out.append((m.group(1), words))
    return out


def readme_commands() -> list[tuple[str, list[str]]]:
    """``(script, flags)`` of every ``python3 scripts/X.py ...`` command in the README."""
    return commands_in((ROOT / "README.md").read_text())


def test_readme_command_lines_parse():
    commands = readme_commands()
    assert {s for s, _ in commands} >= {"train_agent", "evaluate", "benchmark", "train_gan", "train_behavior",
                                        "behavior_report", "catalog_report", "reference_report", "reference_experiment"}
    for script, argv in commands:
        if "PATH" in " ".join(argv):  # the README's usage summary of evaluate.py, not a command to run
            continue
        parse_args(load(script).Args, argv)


@pytest.mark.parametrize("source", sorted(p.relative_to(ROOT).as_posix() for p in [*(ROOT / "docs").glob("*.md"),
                                                                                    *(ROOT / "scripts").glob("*.py")]))
def test_docs_and_docstring_command_lines_parse(source, tmp_path, monkeypatch):
    """Every command line in docs/*.md and in the scripts' docstrings parses (run from an empty folder)."""
    path = ROOT / source
    text = load(path.stem).__doc__ if path.suffix == ".py" else path.read_text()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MINARI_DATASETS_PATH", raising=False)
    for script, words in commands_in(text):
        argv = [w.strip("[]") for w in words]  # a usage summary's optional flags: ``[--sessions 20000]``
        if "--datasets-path" in argv:  # train_offline.py reads an existing folder of datasets
            (tmp_path / argv[argv.index("--datasets-path") + 1]).mkdir(parents=True, exist_ok=True)
        parse_args(load(script).Args, argv)


def test_a_bad_flag_ends_in_one_line_and_status_2():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "evaluate.py"), "--policy", "random", "--sessions", "0"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2 and proc.stderr == "error: argument --sessions: expected an integer >= 1, got '0'\n"

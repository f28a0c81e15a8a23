"""The command line's grammar: --version, global options anywhere, exit status, logs that hold
everything a job printed (native Pythia output and tracebacks included)."""

import subprocess
import sys

import pytest
import yaml

import fast2full
from fast2full.cli import COMMANDS, build_parser, main

FAST2FULL = [sys.executable, "-m", "fast2full"]


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"fast2full {fast2full.__version__}"


def test_every_subcommand_has_user_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, type(parser._subparsers._group_actions[0])))
    assert set(sub.choices) == set(COMMANDS)
    for name, p in sub.choices.items():
        text = p.format_help()
        assert "--log" in text and len(p.description) > 20, name


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["generate", "--process", "ttbar"])  # no --config, --chunk, --out
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2


def test_input_error_exits_1_naming_the_file(tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    assert main(["validate-config", str(missing)]) == 1
    assert f"{missing}: config file not found" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["before", "after"])
def test_global_options_before_or_after_the_subcommand(tmp_path, repo_root, monkeypatch, where):
    monkeypatch.chdir(repo_root)
    log = tmp_path / "v.log"
    cmd = ["validate-config", "config.yaml"]
    argv = ["--log", str(log), *cmd] if where == "before" else [*cmd, "--log", str(log)]
    assert main(argv) == 0
    assert "config.yaml: valid" in log.read_text()


def test_unexpected_error_traceback_goes_to_the_log(tmp_path, monkeypatch, capfd):
    import fast2full.cli.export_hepmc as mod

    def boom(args):
        raise RuntimeError("kaputt")

    monkeypatch.setattr(mod, "run", boom)
    log = tmp_path / "x.log"
    assert main(["export-hepmc", "--in", "a", "--out", "b", "--log", str(log)]) == 1
    text = log.read_text()
    assert "Traceback" in text and "RuntimeError: kaputt" in text
    assert "kaputt" in capfd.readouterr().err  # errors reach the terminal too


@pytest.mark.slow
def test_log_holds_native_pythia_output_terminal_only_warnings(tmp_path, repo_root):
    cfg = yaml.safe_load((repo_root / "config.yaml").read_text())
    (tmp_path / "tiny.yaml").write_text(
        yaml.safe_dump({"processes": {"zjets": {"events_per_chunk": 3}}, "generation": {"common_settings": []}})
    )
    log = tmp_path / "gen.log"
    res = subprocess.run(
        [
            *FAST2FULL,
            "generate",
            "--config",
            str(repo_root / "config.yaml"),
            "--config",
            str(tmp_path / "tiny.yaml"),
            "--process",
            "zjets",
            "--chunk",
            "0",
            "--out",
            str(tmp_path / "0.parquet"),
            "--log",
            str(log),
        ],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    text = log.read_text()
    assert "PYTHIA" in text  # Pythia's banner, printed by C++ to file descriptor 1
    assert " INFO " in text
    assert res.stdout == "" and " INFO " not in res.stderr
    assert cfg["processes"]["zjets"]["events_per_chunk"] != 3


def test_running_python_is_in_the_supported_range(repo_root):
    """pyproject.toml's requires-python is what CI runs (the range is stated and tested)."""
    import tomllib

    from packaging.specifiers import SpecifierSet

    spec = SpecifierSet(tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]["requires-python"])
    assert f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}" in spec


def test_train_reads_exactly_the_files_its_rule_gives(tmp_path):
    """`fast2full train --inputs` maps each given file to (task, domain, split); a split the job needs
    but was not given is an error naming the given files (Snakemake then knows every file read)."""
    from fast2full.cli.train import tensor_inputs
    from fast2full.common import Fast2FullError
    from fast2full.train.modes import tensor_path

    files = [str(tmp_path / f"qg/cms_like/{s}.parquet") for s in ("train", "val", "test")]
    got = tensor_inputs(files)
    assert tensor_path(got, "qg", "cms_like", "val") == tmp_path / "qg/cms_like/val.parquet"
    with pytest.raises(Fast2FullError, match="no qg/atlas_like/train tensor file among the job's --inputs"):
        tensor_path(got, "qg", "atlas_like", "train")
    with pytest.raises(Fast2FullError, match="not a tensor file"):
        tensor_inputs([str(tmp_path / "qg/cms_like/norm.json")])

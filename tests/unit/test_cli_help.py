"""``--help`` of every command: a text for each command and option, defaults written one way."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from credit_explainer import cli

pytest.importorskip("numpy")  # train's options come from train.py


def commands() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = cli.build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    parser.parse_args(["train"])  # adds train's hyperparameter options, as choosing train does
    return parser, dict(sub.choices)


def _parsers() -> dict[str, argparse.ArgumentParser]:
    """Every command's parser, and deploy's steps as ``deploy STEP``."""
    _, choices = commands()
    found = dict(choices)
    for name, parser in choices.items():
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                found |= {f"{name} {step}": p for step, p in action.choices.items()}
    return found


OURS = sorted(_parsers())


def test_every_command_has_a_help_line() -> None:
    parser, _ = commands()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert all(choice.help for choice in sub._choices_actions)
    assert "bench" in parser.format_help()


@pytest.mark.parametrize("name", OURS)
def test_every_option_has_a_help_text_stating_its_default_one_way(name: str) -> None:
    for action in _parsers()[name]._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        if action.help == argparse.SUPPRESS:
            continue
        assert action.help, f"{name} {action.option_strings or action.dest}: no help"
        assert len(set(action.option_strings)) == len(action.option_strings)
        if action.option_strings and not action.required:  # a required one has no default
            assert "(default: " in action.help, f"{name} {action.option_strings}: {action.help}"
            assert "(default: )" not in action.help, f"{name} {action.option_strings}: empty"
        assert "(default " not in action.help and "default " not in action.help.split("(")[0]


@pytest.mark.parametrize("name", OURS)
def test_every_command_has_a_description(name: str) -> None:
    assert _parsers()[name].description, f"{name}: --help has no description"


@pytest.mark.parametrize("name", OURS)
def test_a_required_option_claims_no_default(name: str) -> None:
    for action in _parsers()[name]._actions:
        if action.required and action.option_strings:
            assert "(default:" not in (action.help or ""), f"{name} {action.option_strings}"


def test_train_lists_each_hyperparameter_once() -> None:
    _, choices = commands()
    text = choices["train"].format_help()
    assert "--bootstrap BOOTSTRAP\n" in text and "--bootstrap BOOTSTRAP, --bootstrap" not in text
    assert "--n_estimators" not in text  # SageMaker's spelling: accepted, not shown
    assert choices["train"].parse_args(["--n_estimators", "7"]).n_estimators == 7


def test_warm_up_says_what_it_did(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["warm-up"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("TreeSHAP kernel ready in ") and (
        "cached in " in out or "not cached" in out
    )


def test_decision_bands_have_one_name_wherever_they_are_taken() -> None:
    _, choices = commands()
    for name in ("up", "report"):
        assert "--decision-thresholds BANDS" in choices[name].format_help(), name
    report = choices["report"]
    assert report.parse_args(["--thresholds", "a:0.1,b"]).thresholds == "a:0.1,b"  # the old name
    assert "--thresholds" not in report.format_help().replace("--decision-thresholds", "")


def test_the_registry_names_the_commands_each_module_really_adds() -> None:
    # cli's table of commands is used only when a module is absent: it must not drift from
    # what the module registers in the full install (names and aliases, in --help order).
    import importlib

    for module, _, listed in cli._COMMAND_MODULES:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module).register(sub)
        names = [(e,) if isinstance(e, str) else e for e in listed]
        assert [a.dest for a in sub._choices_actions] == [n[0] for n in names], module
        assert list(sub.choices) == [alias for n in names for alias in n], module


def test_the_registry_names_each_modules_distribution() -> None:
    from importlib.metadata import packages_distributions

    providers = packages_distributions()
    for module, distribution, _ in cli._COMMAND_MODULES:
        assert distribution in providers[module.partition(".")[0]], module


@pytest.mark.parametrize(
    ("absent", "command", "distribution", "install"),
    [
        ("credit_model.commands", "train", "credit-explainer-model", "./model_src"),
        ("credit_model.commands", "serve", "credit-explainer-model", "./model_src"),
        (
            "credit_explainer_tools.decisions",
            "decisions",
            "credit-explainer-tools",
            "./client ./model_src ./lambda_fn .",
        ),
    ],
)
def test_an_absent_command_is_listed_and_says_which_distribution_provides_it(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    absent: str,
    command: str,
    distribution: str,
    install: str,
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, absent, None)  # import raises ModuleNotFoundError
    line = (
        f"credit-explainer {command if command != 'serve' else 'serve-model'} is part of "
        f"{distribution}, which this installation lacks: "
        f"pip install {install} in the credit-explainer checkout"
    )
    assert f"(not installed: {distribution})" in cli.build_parser().format_help()
    for args in ([command, "--help"], [command, "show", "--rows", "3", "-h"]):
        assert cli.main(args) == 0
        out, err = capsys.readouterr()
        assert out.startswith(f"usage: credit-explainer {command}") and line in out and not err
    assert cli.main([command, "--rows", "3", "x.csv"]) == 2
    out, err = capsys.readouterr()
    assert err == f"error: {line}\n" and not out
    # the install command is the README's
    assert f"pip install {install}" in (Path(__file__).parents[2] / "README.md").read_text()


@pytest.mark.parametrize(
    ("library", "argv", "install"),
    [
        ("numpy", ["synth"], "./model_src"),
        ("xgboost", ["train", "--model", "xgboost"], "'./model_src[gbm]'"),  # the model's extra
        ("matplotlib", ["report"], "'./model_src[plot]'"),
        ("docker", ["deploy", "build-image"], "./client ./model_src ./lambda_fn ."),
    ],
)
def test_a_missing_library_names_the_install_that_brings_it(
    library: str, argv: list[str], install: str
) -> None:
    cli.build_parser()
    assert cli._missing_library(ModuleNotFoundError(name=library), argv) == (
        f"error: credit-explainer {argv[0]} needs {library}, which this installation lacks: "
        f"pip install {install} in the credit-explainer checkout"
    )
    assert cli._missing_library(ModuleNotFoundError(name="credit_model.x"), argv) is None


def test_monitor_help_names_what_it_reads_and_every_exit_status() -> None:
    # docs/monitoring.md: records first (or capture), and exit 3 when lines were skipped
    from credit_explainer_tools.decisions import EXIT_SKIPPED

    _, choices = commands()
    text = " ".join(choices["monitor"].format_help().split())
    assert "decision records" in text
    assert f"{EXIT_SKIPPED} done but unreadable lines were skipped" in text


def test_destroy_offers_only_options_it_uses() -> None:
    # destroy deletes the stack: sam deploy's parameters and the API's schema mean nothing to it
    _, choices = commands()
    text = choices["destroy"].format_help()
    assert "--stack-name" in text
    assert "--sam-parameter" not in text and "--schema" not in text

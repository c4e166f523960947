"""The ``credit-explainer`` command: one entry point, one subcommand per job.

Each subcommand lives in the module that owns the work and registers itself
through a ``register(subparsers)`` function; heavy libraries (scikit-learn,
shap, pandas, boto3) are imported only when a subcommand runs, so ``--help``
is fast and the client-only install can still show every command.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Final

from . import __version__
from ._config import install_hint
from ._exceptions import CreditExplainerError

# Modules that add subcommands, in the order they appear in --help, each with the extras
# its commands need beyond the base install (what to tell a client-only install to add).
_COMMAND_MODULES: tuple[tuple[str, str], ...] = (
    ("credit_model.commands", "model"),  # synth, train, serve-model, bench
    ("credit_model.infer", "model"),  # schema infer, schema check
    ("credit_explainer.local.commands", "model,api"),  # up, demo
    ("credit_explainer.scoring_cli", ""),  # score
    ("credit_explainer.decisions", ""),  # decisions show, decisions export
    ("credit_explainer.monitor", "model"),  # monitor
    ("credit_explainer.deploy.commands", "deploy"),  # deploy, batch, destroy
)
_OUR_PACKAGES: Final = frozenset(
    {"credit_explainer", "credit_schema", "credit_model", "scoring_api"}
)
# Command -> the extras it needs, filled in as the modules register their commands.
_EXTRAS: dict[str, str] = {}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="credit-explainer",
        description="Explainable credit-risk scoring: train, serve, explain, deploy.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, extras in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                continue  # that part of the project is not there (yet)
            raise
        before = set(sub.choices)
        module.register(sub)
        _EXTRAS.update(dict.fromkeys(set(sub.choices) - before, extras))
    return parser


def _missing_extra(exc: ModuleNotFoundError, argv: Sequence[str]) -> str | None:
    """The error line for a command whose extra is not installed (None: a bug of ours)."""
    top = (exc.name or "").partition(".")[0]
    if not top or top in _OUR_PACKAGES:
        return None
    command = next((a for a in argv if a in _EXTRAS), None)
    extras = _EXTRAS.get(command or "", "")
    where = f"credit-explainer {command}" if command else "this command"
    return (
        f"error: {where} needs {top}, which this installation lacks: "
        f"{install_hint(extras or 'model,api')}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        # Model commands import their libraries only now (train's options while parsing).
        args = parser.parse_args(argv)
        result = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as a command killed by SIGPIPE does;
        # stdout goes to /dev/null so that the interpreter's last flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13
    except CreditExplainerError as exc:  # the SDK's errors, where a command did not word them
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        message = _missing_extra(exc, argv)
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

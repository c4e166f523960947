"""The ``credit-explainer`` command: one entry point, one subcommand per job.

Each subcommand lives in the module that owns the work and registers itself
through a ``register(subparsers)`` function; heavy libraries (scikit-learn,
shap, pandas, boto3) are imported only when a subcommand runs, so ``--help``
is fast and the client-only install can still show every command.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import __version__

# Modules that add subcommands, in the order they appear in --help.
_COMMAND_MODULES: tuple[str, ...] = (
    "credit_model.commands",  # synth, train, serve-model
    "credit_explainer.local.commands",  # up, demo
    "credit_explainer.scoring_cli",  # score
    "credit_explainer.deploy.commands",  # deploy, build-image, create-endpoint, deploy-api, batch, destroy
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="credit-explainer",
        description="Explainable credit-risk scoring: train, serve, explain, deploy.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                continue  # that part of the project is not there (yet)
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

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
import re
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Final

from . import __version__
from ._config import install_hint
from ._exceptions import CreditExplainerError

#: Modules that add subcommands, in the order they appear in --help, each with the distribution
#: that provides it and the commands it adds (a tuple: a name and its aliases). The commands are
#: used only when the module is absent, so that --help still lists them and says where they come
#: from; tests/unit/test_cli_help.py checks them against what each module registers.
_COMMAND_MODULES: Final[tuple[tuple[str, str, tuple[str | tuple[str, ...], ...]], ...]] = (
    (
        "credit_model.commands",
        "credit-explainer-model",
        ("synth", "train", "import", "report", ("serve-model", "serve"), "warm-up", "bench"),
    ),
    ("credit_model.infer", "credit-explainer-model", ("schema",)),
    ("credit_explainer_tools.local.commands", "credit-explainer-tools", ("up", "demo")),
    ("credit_explainer.scoring_cli", "credit-explainer", ("score",)),
    ("credit_explainer_tools.decisions", "credit-explainer-tools", ("decisions",)),
    ("credit_explainer_tools.monitor", "credit-explainer-tools", ("monitor",)),
    (
        "credit_explainer_tools.deploy.commands",
        "credit-explainer-tools",
        ("deploy", "batch", "destroy"),
    ),
)
_OUR_PACKAGES: Final = frozenset(
    {"credit_explainer", "credit_schema", "credit_model", "scoring_api", "credit_explainer_tools"}
)
# Command -> the distribution that provides it, filled in as the commands are added.
_PROVIDER: dict[str, str] = {}


def _lacking(command: str, distribution: str) -> str:
    """Where an absent command comes from, and the command that installs it."""
    return (
        f"credit-explainer {command} is part of {distribution}, which this installation lacks: "
        f"{install_hint(distribution)}"
    )


def _absent(args: argparse.Namespace) -> int:
    """An absent command run: its --help (anywhere among its arguments) or one error line."""
    if {"-h", "--help"} & set(args.rest):
        args.placeholder.print_help()
        return 0
    print(f"error: {_lacking(args.absent, args.distribution)}", file=sys.stderr)
    return 2


def _add_absent(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    distribution: str,
    commands: tuple[str | tuple[str, ...], ...],
) -> None:
    """The commands of a module this installation lacks, as placeholders that say so."""
    for entry in commands:
        name, *aliases = (entry,) if isinstance(entry, str) else entry
        placeholder = sub.add_parser(
            name,
            aliases=aliases,
            help=f"(not installed: {distribution})",
            description=_lacking(name, distribution),
            usage="%(prog)s ...",
            formatter_class=argparse.RawDescriptionHelpFormatter,  # the command on one line
            prefix_chars="\0",  # every argument is one of the rest: no option is unknown
            add_help=False,
        )
        placeholder.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        placeholder.set_defaults(
            func=_absent, absent=name, distribution=distribution, placeholder=placeholder
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="credit-explainer",
        description="Explainable credit-risk scoring: train, serve, explain, deploy.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, distribution, commands in _COMMAND_MODULES:
        before = set(sub.choices)
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise
            _add_absent(sub, distribution, commands)  # that distribution is not installed
        else:
            module.register(sub)
        _PROVIDER.update(dict.fromkeys(set(sub.choices) - before, distribution))
    return parser


def _missing_library(exc: ModuleNotFoundError, argv: Sequence[str]) -> str | None:
    """The error line for a command whose library is not installed (None: a bug of ours)."""
    top = (exc.name or "").partition(".")[0]
    if not top or top in _OUR_PACKAGES:
        return None
    command = next((a for a in argv if a in _PROVIDER), None)
    where = f"credit-explainer {command}" if command else "this command"
    distribution = _PROVIDER[command] if command else "credit-explainer-tools"
    hint = install_hint(distribution, _extra_with(distribution, top))
    return f"error: {where} needs {top}, which this installation lacks: {hint}"


def _extra_with(distribution: str, library: str) -> str | None:
    """The extra of ``distribution`` that brings ``library``, read from its metadata."""
    try:
        requires = metadata.requires(distribution) or []
    except metadata.PackageNotFoundError:
        return None
    for requirement in requires:  # e.g. 'xgboost==3.2.0; extra == "gbm"'
        found = re.match(r"([A-Za-z0-9_.-]+).*;.*\bextra\s*==\s*[\"']([^\"']+)", requirement)
        if found and found[1].lower() == library.lower():
            return found[2]
    return None


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
        message = _missing_library(exc, argv)
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

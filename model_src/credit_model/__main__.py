"""``python -m credit_model serve|train|synth``: the model side's own command, without the client.

The model image's ``serve`` program runs this, so serving never imports the SDK or the local stack.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .commands import register


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m credit_model", description="Train and serve the credit-risk model."
    )
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

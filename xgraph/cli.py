"""The ``xgraph`` command: one subcommand per task, each a small function over the library.

``main`` only parses arguments and reports errors: the work lives in library
modules (``xgraph.demo`` for ``xgraph demo``).  A user error (any
:class:`~xgraph.errors.XGraphError`) is printed as one line on stderr and the
command exits with status 1, without a traceback.

    >>> from xgraph.cli import build_parser
    >>> build_parser().parse_args(['demo', '--fast']).fast
    True

Adding a subcommand: write ``add_<name>(subparsers)`` that declares its
arguments and sets ``func`` to a ``cmd_<name>(args) -> int``, then list it in
:data:`SUBCOMMANDS`.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from .errors import XGraphError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


# -- xgraph demo -----------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    """Run :func:`xgraph.demo.run_demo` with the parsed options."""
    from .demo import run_demo
    run_demo(steps=args.steps, fast=args.fast, out=lambda line: print(line, flush=True))
    return 0


def add_demo(subparsers: argparse._SubParsersAction) -> None:
    """Declare ``xgraph demo``."""
    p = subparsers.add_parser(
        "demo", help="build, inspect, lower and train a small MLP on scikit-learn's digits",
        description="Build an MLP with mx.sym, print its inferred shapes and a StableHLO excerpt, "
                    "then train it with SGD on scikit-learn's digits dataset (shipped with "
                    "scikit-learn, no download). Needs: pip install 'xgraph[examples]'.")
    p.add_argument("--steps", type=_positive_int, default=None,
                   help="number of SGD steps (default 300; 40 with --fast)")
    p.add_argument("--fast", action="store_true", help="a few steps only, for a quick check (CI)")
    p.set_defaults(func=cmd_demo)


#: Every subcommand's declaration function, in the order ``--help`` lists them.
SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (add_demo,)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``xgraph`` command, with every subcommand.

        >>> 'demo' in build_parser().format_help()
        True
    """
    from . import __version__
    parser = argparse.ArgumentParser(
        prog="xgraph", description="xgraph: a define-then-run symbolic graph compiler with an "
                                   "MXNet 1.x-shaped API, lowered to XLA through JAX.")
    parser.add_argument("--version", action="version", version=f"xgraph {__version__}")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    subparsers.required = True
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``xgraph`` command line; returns the exit status.

        >>> main(['demo', '--steps', '0'])   # doctest: +SKIP
        2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except XGraphError as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"xgraph {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"xgraph {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

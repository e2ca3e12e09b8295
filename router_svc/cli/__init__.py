"""The ``llm-router`` command line: one module per subcommand, registered in ``COMMANDS``.

Each subcommand module exposes ``register(subparsers)`` which adds its parser and sets
``func`` (a callable taking the parsed namespace and returning an exit code). Modules are
imported lazily so that ``llm-router route`` does not pay for matplotlib or the load client.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from router_core.errors import RouterError

__all__ = ["COMMANDS", "main"]

# subcommand name -> module under router_svc.cli that registers it
COMMANDS: dict[str, str] = {
    "serve": "_serve",
    "route": "_route",
    "train": "_train",
    "eval": "_eval",
    "calibrate": "_calibrate",
    "simulate": "_simulate",
    "bench": "_bench",
    "check-config": "_check_config",
    "report": "_report",
    "export-training-data": "_export",
    "convert-model": "_convert_model",
}


def _build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-router", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, module_name in COMMANDS.items():
        if wanted in COMMANDS and name != wanted:
            sub.add_parser(name)  # listed in --help, not imported
            continue
        try:
            module = importlib.import_module(f"router_svc.cli.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"router_svc.cli.{module_name}":
                raise
            sub.add_parser(name, help="(not available in this build)")
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = _build_parser(args_list)
    args = parser.parse_args(args_list)
    func = getattr(args, "func", None)
    if func is None:
        parser.error(f"the command {args.command!r} is not available in this build")
    try:
        return int(func(args) or 0)
    except RouterError as exc:
        print(f"llm-router {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

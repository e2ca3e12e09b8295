"""``llm-router check-config FILE``: validate a config file; exit 2 with the error if invalid."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from router_core.errors import ConfigError, ModelError

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``check-config`` subcommand."""
    p = subparsers.add_parser(
        "check-config", help="validate a config file", description=__doc__.splitlines()[0]
    )
    p.add_argument("file", help="the YAML config file")
    p.add_argument(
        "--with-model",
        action="store_true",
        help="also load the router model and check the catalog against its outputs",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print ``FILE: ok (...)`` and return 0, or print the one-line error and return 2."""
    from router_core._config_loader import load_config

    try:
        config = load_config(args.file)
        if args.with_model:
            from router_core._router import load_router

            load_router(config)
    except (ConfigError, ModelError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    routing = config.routing
    print(
        f"{args.file}: ok ({len(config.models)} models, {len(routing.rules)} rules, "
        f"strategy {routing.strategy})"
    )
    return 0

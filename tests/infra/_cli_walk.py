"""Run as a script: block some top-level modules, build the ``medkiosk`` parser and format every command's help.

``python tests/infra/_cli_walk.py BLOCKED,MODULES`` prints one line per command path and exits 0, or prints the
traceback of the first import that reached a blocked module and exits 1. Used by the CLI import tests, with the
blocked set standing for the extras an image does not install.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import sys
import traceback
from collections.abc import Iterator, Sequence
from types import ModuleType


class _Blocker(importlib.abc.MetaPathFinder):
    def __init__(self, blocked: set[str]) -> None:
        self.blocked = blocked

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] in self.blocked:
            raise ModuleNotFoundError(f"No module named {fullname!r} (not installed in this image)", name=fullname)
        return None


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
    yield path, parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _walk(child, (*path, name))


def main(blocked: str) -> int:
    sys.meta_path.insert(0, _Blocker({m for m in blocked.split(",") if m}))
    try:
        from medkiosk.__main__ import build_parser

        for path, text in _walk(build_parser(), ()):
            assert text.startswith("usage:"), path
            print(" ".join(path) or "medkiosk")
    except Exception:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ""))

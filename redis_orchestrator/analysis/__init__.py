"""Static analysis behind `redis-orchestrator check`: is a script or function library cluster-safe?

One module per concern: `shebang` (the `#!lua` line), `lexer`/`syntax` (Lua 5.1 AST), `keyspecs`
(Redis' command table: which arguments are keys, which commands write), `lua` (the AST walk),
`slots` (hash slots, tags, suggestions), `findings`, `report` (text / JSON), `analyzer` (the cached
conductor).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .analyzer import Analyzer
    from .findings import Finding
    from .keyspecs import CommandSpec, KeySpec, KeySpecs, load_keyspecs
    from .report import format_json, format_text
    from .slots import KeyslotReport, hash_tag, key_slot, keyslot_report, suggest_hash_tags

# Imported on first use (PEP 562): the daemon and the one-shot verbs read `findings` (Severity) and
# `shebang` through this package on every start, and should not pay for the parser, the walker and
# lupa unless they analyse something.
_WHERE = {
    "Analyzer": "analyzer",
    "Finding": "findings",
    "CommandSpec": "keyspecs",
    "KeySpec": "keyspecs",
    "KeySpecs": "keyspecs",
    "load_keyspecs": "keyspecs",
    "format_json": "report",
    "format_text": "report",
    "KeyslotReport": "slots",
    "hash_tag": "slots",
    "key_slot": "slots",
    "keyslot_report": "slots",
    "suggest_hash_tags": "slots",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = [
    "Analyzer",
    "CommandSpec",
    "Finding",
    "KeySpec",
    "KeySpecs",
    "KeyslotReport",
    "format_json",
    "format_text",
    "hash_tag",
    "key_slot",
    "keyslot_report",
    "load_keyspecs",
    "suggest_hash_tags",
]

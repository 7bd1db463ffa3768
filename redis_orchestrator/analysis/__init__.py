"""Static analysis behind `redis-orchestrator check`: is a script or function library cluster-safe?

One module per concern: `shebang` (the `#!lua` line), `lexer`/`syntax` (Lua 5.1 AST), `keyspecs`
(Redis' command table: which arguments are keys, which commands write), `lua` (the AST walk),
`slots` (hash slots, tags, suggestions), `findings`, `report` (text / JSON), `analyzer` (the cached
conductor).
"""

from __future__ import annotations

from .analyzer import Analyzer
from .findings import Finding
from .keyspecs import CommandSpec, KeySpec, KeySpecs, load_keyspecs, refresh_keyspecs
from .report import format_json, format_text
from .shebang import Shebang, parse_shebang
from .slots import KeyslotReport, hash_tag, key_slot, keyslot_report, suggest_hash_tags

__all__ = [
    "Analyzer",
    "CommandSpec",
    "Finding",
    "KeySpec",
    "KeySpecs",
    "KeyslotReport",
    "Shebang",
    "format_json",
    "format_text",
    "hash_tag",
    "key_slot",
    "keyslot_report",
    "load_keyspecs",
    "parse_shebang",
    "refresh_keyspecs",
    "suggest_hash_tags",
]

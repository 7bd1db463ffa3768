"""Static analysis behind `redis-orchestrator check`: is a script or function library cluster-safe?

One module per concern; each imports only modules listed above it (the shebang line is read by
`catalog.shebang`):

    findings         a finding, its severity, and every code with what it means
    lexer, syntax    Lua 5.1 tokens and AST (recursive descent)
    directives       what a script says in its comments: declarations, suppressions
    keyspecs         Redis' command table: which arguments are keys, which commands write
    slots            hash slots, hash tags, tag suggestions (what a tag groups), keyslot reports
    values           the abstract values of the walk: shapes, tables, closures, scopes
    derive           lupa's Lua 5.1: the syntax check, string operations run on witnesses
    declared         an entry's declared keys: / argv: / stored: patterns and the slot they name
    keyslots         the verdict on one key argument: severity is proof, with the message a user acts on
    suggest          the declarations to suggest: keys:, argv:, stored:
    state            the walk's settings, call context and findings merged per source position
    expressions      the value of each expression
    library          models of Lua's standard library, string / table, cjson / cmsgpack
    calls            calling: the script's own functions (recursion too), redis.call / pcall judged
    walker           statements and control flow: the Walker, the complete AST walk
    analyzer         the conductor: shebang, syntax, directives, walk, suppressions, cached by SHA1
    report           findings as text, JSON or GitHub workflow commands
    baseline         the findings a team accepts, matched by script, code and key expression
    sarif, junit     findings as SARIF 2.1.0 and JUnit XML
    checks           a catalog's analysis as the daemon and `check` run it
    key_suggestions  suggested declarations as YAML, written back to the catalog or the scripts
    lint             `check` as a linter: a catalog or files, baseline, formats, what fails the run
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redis_orchestrator.analysis.analyzer import Analyzer
    from redis_orchestrator.analysis.findings import Finding
    from redis_orchestrator.analysis.keyspecs import CommandSpec, KeySpec, KeySpecs, load_keyspecs
    from redis_orchestrator.analysis.report import format_json, format_text
    from redis_orchestrator.analysis.slots import KeyslotReport, hash_tag, key_slot, keyslot_report, suggest_hash_tags

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

"""What a script says to the check in its own comments: declarations and suppressions.

    -- redis-orchestrator: keys: ["{<q>}:wait", "{<q>}:active"]      KEYS patterns, as a catalog's keys:
    -- redis-orchestrator: argv: ["ARGV[1] = {<q>}:"]                 ARGV patterns, as a catalog's argv:
    -- redis-orchestrator: stored: ["{<q>}:job:<id>"]                 names read back from Redis and used
                                                                      as keys (no catalog field)
    redis.call('DEL', ARGV[1] .. id)  -- redis-orchestrator: ignore undeclared-key  prefix has {q}
    -- redis-orchestrator: ignore enumeration,undeclared-key  reason    (alone: for the next code line)

A declaration is a YAML flow sequence, the same text a catalog entry holds, so what `check` prints
can be pasted into either; it applies where the catalog entry declares nothing of that kind (and is
how a script linted without a config declares at all). A suppression names the codes it silences
(`ignore CODE[,CODE]`) and applies to its own line when it ends a line of code, else to the next line
that holds code; what follows the codes is the reason. Only comments count: the same text in a
string is data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from redis_orchestrator.analysis.lexer import TOKEN, LineMap

MARK = "redis-orchestrator:"
_DIRECTIVE = re.compile(r"^-+\s*redis-orchestrator:\s*(.*)$", re.DOTALL)
_IGNORE = re.compile(r"^ignore(?:\s+([A-Za-z][\w-]*(?:\s*,\s*[A-Za-z][\w-]*)*))?\s*(.*)$", re.DOTALL)
_DECLARE = re.compile(r"^(keys|argv|stored)\s*:\s*(.*)$", re.DOTALL)
_LONG_OPEN = re.compile(r"\[=*\[")
_LONG_CLOSE = re.compile(r"\]=*\]$")


@dataclass(frozen=True)
class Suppression:
    line: int  # where the comment is
    target: int  # the line whose findings it silences
    codes: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Directives:
    keys: tuple[str, ...] | None = None
    argv: tuple[str, ...] | None = None
    stored: tuple[str, ...] | None = None
    suppressions: tuple[Suppression, ...] = ()
    problems: tuple[tuple[int, str], ...] = ()  # (line, what is wrong) for directives that cannot be read


NONE = Directives()


def read_directives(text: str) -> Directives:
    """The directives in the comments of a Lua source (its shebang line blanked)."""
    if MARK not in text:
        return NONE
    lines = LineMap(text)
    code_lines: set[int] = set()
    comments: list[tuple[int, bool, str]] = []  # (line, alone on its line, body)
    for m in TOKEN.finditer(text):
        kind = m.lastgroup
        if kind == "ws":
            continue
        first, column = lines.position(m.start())
        if kind in ("comment", "lcomment"):
            body = m.group()
            if MARK in body:
                alone = not text[m.start() - column + 1 : m.start()].strip()
                comments.append((first, alone, body))
            continue
        code_lines.update(range(first, lines.position(m.end() - 1)[0] + 1))
    declared: dict[str, tuple[str, ...]] = {}
    suppressions: list[Suppression] = []
    problems: list[tuple[int, str]] = []
    for line, alone, body in comments:
        inside = body[2:]
        long_open = _LONG_OPEN.match(inside)
        if long_open:  # --[[ redis-orchestrator: ... ]]
            inside = _LONG_CLOSE.sub("", inside[long_open.end() :])
        used = _DIRECTIVE.match("--" + inside.lstrip("-").lstrip())
        if used is None:
            continue  # the mark is mentioned, not used: "-- see redis-orchestrator: docs"
        directive = used.group(1).strip()
        ignore = _IGNORE.match(directive)
        if ignore is not None:
            if not ignore.group(1):
                problems.append((line, "'ignore' needs the codes it silences: ignore CODE[,CODE] [reason]"))
                continue
            codes = tuple(c.strip() for c in ignore.group(1).split(","))
            target = line if not alone else min((n for n in code_lines if n > line), default=line)
            suppressions.append(Suppression(line, target, codes, ignore.group(2).strip()))
            continue
        declaration = _DECLARE.match(directive)
        if declaration is None:
            problems.append(
                (
                    line,
                    f"unknown directive {directive.split()[0] if directive else '(empty)'!r}: "
                    "use ignore, keys:, argv: or stored:",
                )
            )
            continue
        kind, value = declaration.group(1), declaration.group(2).strip()
        patterns = _patterns(value)
        if patterns is None:
            problems.append((line, f'{kind}: must be a list of strings, like {kind}: ["{{<tag>}}:<name>"]'))
        elif kind in declared:
            problems.append((line, f"{kind}: declared twice in this script"))
        else:
            declared[kind] = patterns
    return Directives(
        declared.get("keys"), declared.get("argv"), declared.get("stored"), tuple(suppressions), tuple(problems)
    )


def _patterns(value: str) -> tuple[str, ...] | None:
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return None
    if not isinstance(parsed, list) or not all(isinstance(p, str) for p in parsed):
        return None
    return tuple(parsed)

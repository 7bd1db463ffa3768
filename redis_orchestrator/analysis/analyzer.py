"""The conductor: shebang, syntax, AST walk and key patterns of one script, cached by SHA1."""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from .findings import ERROR, INFO, WARNING, Finding, Severity
from .keyspecs import KeySpecs, load_keyspecs
from .lexer import LineMap, LuaSyntaxError
from .lua import Walker
from .shebang import KNOWN_FLAGS, parse_shebang, strip_shebang
from .slots import patterns_share_slot, suggest_hash_tags
from .syntax import parse

_LUA_ERROR = re.compile(r"^[^:]*:(\d+): (.*)$", re.DOTALL)
_CACHE_SIZE = 20_000


class _LuaSyntaxChecker:
    """Redis' own language: lupa's Lua 5.1 compiles (never runs) the chunk."""

    def __init__(self) -> None:
        self._load: Any = None
        try:
            from lupa import lua51
        except ImportError:  # lupa built without Lua 5.1: our parser's verdict alone
            return
        runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
        self._load = runtime.eval(
            "function(src) local f, err = loadstring(src, '=user_script') if f then return nil end return err end"
        )

    def error(self, source: bytes) -> tuple[int, str] | None:
        if self._load is None:
            return None
        err = self._load(source)
        if err is None:
            return None
        text = err.decode("utf-8", "replace") if isinstance(err, bytes) else str(err)
        m = _LUA_ERROR.match(text)
        return (int(m.group(1)), m.group(2)) if m else (1, text)


class Analyzer:
    def __init__(self, keyspecs: KeySpecs | None = None) -> None:
        self.keyspecs = keyspecs if keyspecs is not None else load_keyspecs()
        self._lua = _LuaSyntaxChecker()
        self._cache: OrderedDict[tuple[str, str, tuple[str, ...]], tuple[Finding, ...]] = OrderedDict()

    def analyze(
        self,
        source: bytes,
        *,
        script: str,
        file: str,
        kind: str = "script",
        key_patterns: Sequence[str] = (),
    ) -> list[Finding]:
        if kind not in ("script", "function"):
            raise ValueError(f"kind must be 'script' or 'function', not {kind!r}")
        patterns = tuple(key_patterns)
        cache_key = (hashlib.sha1(source).hexdigest(), kind, patterns)
        cached = self._cache.get(cache_key)
        if cached is None:
            cached = tuple(self._analyze(source, kind, patterns))
            self._cache[cache_key] = cached
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return [replace(f, file=file, script=script) for f in cached]

    def _analyze(self, source: bytes, kind: str, key_patterns: tuple[str, ...]) -> list[Finding]:
        findings: list[Finding] = []

        def add(line: int, column: int, severity: Severity, code: str, message: str, suggestion: str) -> None:
            findings.append(Finding("", "", line, column, severity, code, message, suggestion))

        shebang = parse_shebang(source)
        library = kind == "function"
        if library and (not shebang.present or not shebang.library):
            add(
                1,
                1,
                ERROR,
                "shebang",
                "a function library must start with '#!lua name=<library>'",
                "add a first line like: #!lua name=mylib",
            )
        if shebang.present and shebang.engine != "lua":
            add(1, 1, ERROR, "shebang", f"unknown engine '{shebang.engine}' in the shebang", "use #!lua")
        for unknown_flag in sorted(shebang.flags - KNOWN_FLAGS):
            add(
                1,
                1,
                ERROR,
                "shebang",
                f"unknown shebang flag '{unknown_flag}': Redis refuses the script",
                f"use only {', '.join(sorted(KNOWN_FLAGS))}",
            )
        for option in shebang.unknown:
            add(
                1,
                1,
                ERROR,
                "shebang",
                f"unknown shebang option '{option}'",
                "only flags= (and name= for libraries)",
            )
        if "no-cluster" in shebang.flags:
            add(
                1,
                1,
                WARNING,
                "no-cluster",
                "flag no-cluster: Redis refuses to run this script in cluster mode",
                "drop no-cluster if the script is meant for the cluster",
            )

        body = strip_shebang(source)
        text = body.decode("utf-8", "replace")
        lines = LineMap(text)
        lua_error = self._lua.error(body)
        try:
            chunk = parse(text)
        except LuaSyntaxError as exc:
            line, column = lines.position(exc.pos)
            if lua_error is not None and lua_error[0] != line:
                line, column = lua_error[0], 1
            message = lua_error[1] if lua_error is not None else exc.message
            add(
                line,
                column,
                ERROR,
                "syntax",
                f"Lua syntax error: {message}",
                "fix the syntax (Redis runs Lua 5.1: no goto, no //, no integer division, no bit operators)",
            )
            return findings
        if lua_error is not None:
            # Valid for our parser but not for Lua 5.1 itself (e.g. an over-long chain or a 5.1 quirk).
            add(
                lua_error[0],
                1,
                ERROR,
                "syntax",
                f"Lua syntax error: {lua_error[1]}",
                "fix the syntax (Redis runs Lua 5.1)",
            )
            return findings

        walker = Walker(self.keyspecs, lines, library=library, readonly="no-writes" in shebang.flags)
        try:
            findings.extend(walker.run(chunk))
        except RecursionError:
            add(
                1,
                1,
                INFO,
                "analysis-skipped",
                "the script nests too deeply for the checker",
                "split deeply nested expressions",
            )
        if len(key_patterns) > 1 and not patterns_share_slot(key_patterns):
            options = suggest_hash_tags(key_patterns)
            add(
                1,
                1,
                ERROR,
                "cross-slot",
                f"declared keys {', '.join(key_patterns)} are not guaranteed to hash to one slot: "
                "the call fails "
                "with 'CROSSSLOT Keys in request don't hash to the same slot'",
                "; or ".join(options),
            )
        return sorted(findings, key=lambda f: (f.line, f.column, f.code))

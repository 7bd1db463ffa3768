"""The conductor: shebang, syntax, AST walk and key patterns of one script, cached by SHA1."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources

from redis_orchestrator.analysis.declared import Declared, read_declared
from redis_orchestrator.analysis.derive import Lua51
from redis_orchestrator.analysis.findings import ERROR, INFO, WARNING, Finding, Severity
from redis_orchestrator.analysis.keyspecs import KeySpecs, load_keyspecs
from redis_orchestrator.analysis.lexer import LineMap, LuaSyntaxError
from redis_orchestrator.analysis.slots import patterns_share_slot, suggest_hash_tags
from redis_orchestrator.analysis.suggest import KeyUsage
from redis_orchestrator.analysis.syntax import parse
from redis_orchestrator.analysis.walker import Walker
from redis_orchestrator.catalog.shebang import KNOWN_FLAGS, parse_shebang, strip_shebang

_CACHE_SIZE = 20_000


@dataclass(frozen=True)
class Analysis:
    """One script's findings (file, script and version left blank) and how it uses KEYS."""

    findings: tuple[Finding, ...]
    usage: KeyUsage


def _code_stamp() -> str:
    """What a cached analysis depends on besides the script: this package's code and its command
    table. A saved cache made by other code is not used (an upgrade re-analyses)."""
    digest = hashlib.sha1()
    package = resources.files("redis_orchestrator.analysis")
    for name in sorted(p.name for p in package.iterdir() if p.name.endswith((".py", ".json"))):
        digest.update(name.encode())
        digest.update(package.joinpath(name).read_bytes())
    return digest.hexdigest()


class Analyzer:
    """`same_slot_severity`: what an undeclared key in a declared key's slot is reported as."""

    def __init__(self, keyspecs: KeySpecs | None = None, *, same_slot_severity: Severity = INFO) -> None:
        if same_slot_severity not in (INFO, WARNING, ERROR):
            raise ValueError(f"same_slot_severity must be info, warning or error, not {same_slot_severity!r}")
        self.keyspecs = keyspecs if keyspecs is not None else load_keyspecs()
        self.same_slot_severity = same_slot_severity
        self._lua = Lua51()
        self._cache: OrderedDict[tuple[str, str, tuple[str, ...], tuple[str, ...]], Analysis] = OrderedDict()

    def analyze(
        self,
        source: bytes,
        *,
        script: str,
        file: str,
        kind: str = "script",
        key_patterns: Sequence[str] = (),
        argv_patterns: Sequence[str] = (),
        version: str = "",
    ) -> list[Finding]:
        result = self.examine(source, kind=kind, key_patterns=key_patterns, argv_patterns=argv_patterns)
        return [replace(f, file=file, script=script, version=version) for f in result.findings]

    def examine(
        self,
        source: bytes,
        *,
        kind: str = "script",
        key_patterns: Sequence[str] = (),
        argv_patterns: Sequence[str] = (),
    ) -> Analysis:
        """The cached analysis of one source (per SHA1, kind and declared patterns)."""
        if kind not in ("script", "function"):
            raise ValueError(f"kind must be 'script' or 'function', not {kind!r}")
        cache_key = (hashlib.sha1(source).hexdigest(), kind, tuple(key_patterns), tuple(argv_patterns))
        cached = self._cache.get(cache_key)
        if cached is None:
            cached = self._analyze(source, kind, read_declared(key_patterns, argv_patterns))
            self._cache[cache_key] = cached
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return cached

    # ------------------------------------------------------------------ a cache kept across restarts

    def export_cache(self) -> dict[str, object]:
        """The cache as JSON-ready data (a daemon that blocks on findings saves it in a state file,
        so a restart does not analyse a big catalog again)."""
        entries = [
            {
                "key": [key[0], key[1], list(key[2]), list(key[3])],
                "findings": [f.to_dict() for f in analysis.findings],
                "usage": {
                    "highest": analysis.usage.highest,
                    "names": [list(n) for n in analysis.usage.names],
                    "built_from": sorted(analysis.usage.built_from),
                    "argv_prefixes": sorted(analysis.usage.argv_prefixes),
                },
            }
            for key, analysis in self._cache.items()
        ]
        return {"stamp": self._stamp(), "entries": entries}

    def import_cache(self, data: object) -> int:
        """Entries of `export_cache` made by this very code and settings; the number taken (0 when
        the stamp differs or the data is not what export_cache wrote)."""
        if not isinstance(data, dict) or data.get("stamp") != self._stamp():
            return 0
        taken = 0
        for entry in data.get("entries", ()):
            try:
                sha, kind, keys, argv = entry["key"]
                usage = entry["usage"]
                analysis = Analysis(
                    findings=tuple(Finding(**{**f, "severity": Severity(f["severity"])}) for f in entry["findings"]),
                    usage=KeyUsage(
                        highest=int(usage["highest"]),
                        names=tuple((int(i), str(n)) for i, n in usage["names"]),
                        built_from=frozenset(int(i) for i in usage["built_from"]),
                        argv_prefixes=frozenset(str(a) for a in usage["argv_prefixes"]),
                    ),
                )
            except (KeyError, TypeError, ValueError):
                continue
            self._cache[(str(sha), str(kind), tuple(keys), tuple(argv))] = analysis
            taken += 1
        return taken

    def _stamp(self) -> str:
        return f"{_CODE_STAMP}/{self.same_slot_severity}"

    def _analyze(self, source: bytes, kind: str, declared: Declared) -> Analysis:
        findings: list[Finding] = []
        usage = KeyUsage()
        key_patterns = declared.keys

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
        lua_error = self._lua.syntax_error(body)
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
            return Analysis(tuple(findings), usage)
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
            return Analysis(tuple(findings), usage)

        for problem in declared.problems:
            hint = 'write ARGV patterns by position, or as "ARGV[2] = {<queue>}:"'
            add(1, 1, ERROR, "declared-pattern", problem, hint)
        # Without a shebang an undeclared key only has to be served by this node; with one (unless
        # allow-cross-slot-keys) it must be in the declared keys' slot (seen on 7.0.15).
        mode = "slot" if shebang.present and "allow-cross-slot-keys" not in shebang.flags else "node"
        walker = Walker(
            self.keyspecs,
            lines,
            library=library,
            readonly="no-writes" in shebang.flags,
            mode=mode,
            declared=declared,
            lua=self._lua,
            same_slot_severity=self.same_slot_severity,
        )
        try:
            findings.extend(walker.run(chunk))
            usage = walker.keys.frozen()
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
        return Analysis(tuple(sorted(findings, key=lambda f: (f.line, f.column, f.code))), usage)


_CODE_STAMP = _code_stamp()

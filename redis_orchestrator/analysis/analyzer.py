"""The conductor: shebang, syntax, directives, AST walk and key patterns of one script, cached by SHA1.

After the walk: keys the script fixes in different slots (state.py), a script that reads no KEYS
(a cluster client sends it to any node), the declaration that would decide each warning, and the
script's own suppressions (`-- redis-orchestrator: ignore CODE`), with the unused ones reported.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources

from redis_orchestrator.analysis.declared import read_declared
from redis_orchestrator.analysis.derive import Lua51
from redis_orchestrator.analysis.directives import Directives, read_directives
from redis_orchestrator.analysis.findings import CODES, ERROR, INFO, WARNING, Finding, Severity
from redis_orchestrator.analysis.keyslots import Decision
from redis_orchestrator.analysis.keyspecs import KeySpecs, load_keyspecs
from redis_orchestrator.analysis.lexer import LineMap, LuaSyntaxError
from redis_orchestrator.analysis.slots import patterns_share_slot, suggest_hash_tags
from redis_orchestrator.analysis.state import ALL_SERVERS
from redis_orchestrator.analysis.suggest import KeySuggestion, KeyUsage, documented_names, suggest_keys
from redis_orchestrator.analysis.syntax import parse
from redis_orchestrator.analysis.walker import Walker
from redis_orchestrator.catalog.shebang import KNOWN_FLAGS, parse_shebang, strip_shebang

_CACHE_SIZE = 20_000


@dataclass(frozen=True)
class Analysis:
    """One script's findings (file, script and version left blank), how it uses KEYS, how many
    findings its own comments silenced, and what it should declare."""

    findings: tuple[Finding, ...]
    usage: KeyUsage
    suppressed: int = 0
    suggestion: KeySuggestion | None = None


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
    """`same_slot_severity`: what an undeclared key in a declared key's slot is reported as;
    `servers`: which servers the scripts may run on ("redis", "valkey"): a global only one of them
    defines is flagged when the other may run the script."""

    def __init__(
        self,
        keyspecs: KeySpecs | None = None,
        *,
        same_slot_severity: Severity = INFO,
        servers: frozenset[str] = ALL_SERVERS,
    ) -> None:
        if same_slot_severity not in (INFO, WARNING, ERROR):
            raise ValueError(f"same_slot_severity must be info, warning or error, not {same_slot_severity!r}")
        if not servers or not servers <= ALL_SERVERS:
            raise ValueError(f"servers must be some of {sorted(ALL_SERVERS)}, not {sorted(servers)}")
        self.keyspecs = keyspecs if keyspecs is not None else load_keyspecs()
        self.same_slot_severity = same_slot_severity
        self.servers = servers
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
            cached = self._analyze(source, kind, key_patterns, argv_patterns)
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
                    "argv": [list(a) for a in analysis.usage.argv],
                    "stored": analysis.usage.stored,
                    "reads_keys": analysis.usage.reads_keys,
                },
                "suppressed": analysis.suppressed,
                "suggestion": _suggestion_to_dict(analysis.suggestion),
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
                        argv=tuple((str(r), str(role)) for r, role in usage["argv"]),
                        stored=bool(usage["stored"]),
                        reads_keys=bool(usage["reads_keys"]),
                    ),
                    suppressed=int(entry["suppressed"]),
                    suggestion=_suggestion_from_dict(entry["suggestion"]),
                )
            except (KeyError, TypeError, ValueError):
                continue
            self._cache[(str(sha), str(kind), tuple(keys), tuple(argv))] = analysis
            taken += 1
        return taken

    def _stamp(self) -> str:
        return f"{_CODE_STAMP}/{self.same_slot_severity}/{','.join(sorted(self.servers))}"

    def _analyze(self, source: bytes, kind: str, key_patterns: Sequence[str], argv_patterns: Sequence[str]) -> Analysis:
        findings: list[Finding] = []
        usage = KeyUsage()

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
        directives = read_directives(text)
        for line, problem in directives.problems:
            add(line, 1, ERROR, "directive", problem, "see README, Static analysis: directives")
        # The catalog entry's own declarations win; the script's fill in what it leaves out.
        declared = read_declared(
            key_patterns or directives.keys or (), argv_patterns or directives.argv or (), directives.stored or ()
        )
        key_patterns = declared.keys
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
            return self._finish(findings, usage, directives, walked=False)
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
            return self._finish(findings, usage, directives, walked=False)

        for problem in declared.problems:
            hint = 'write ARGV patterns by position, or as "ARGV[2] = {<queue>}:"'
            add(1, 1, ERROR, "declared-pattern", problem, hint)
        # Without a shebang an undeclared key only has to be served by this node; with one (unless
        # allow-cross-slot-keys) it must be in the declared keys' slot (seen on 7.0.15).
        mode = "slot" if shebang.present and "allow-cross-slot-keys" not in shebang.flags else "node"
        # A script that never reads KEYS gives a cluster client nothing to route by: it runs anywhere.
        keyless = (
            not library
            and not declared.keys
            and "KEYS" not in chunk.names
            and not any(ref.startswith("KEYS[") for ref in documented_names(text))
        )
        walker = Walker(
            self.keyspecs,
            lines,
            keyless=keyless,
            library=library,
            readonly="no-writes" in shebang.flags,
            mode=mode,
            declared=declared,
            lua=self._lua,
            same_slot_severity=self.same_slot_severity,
            servers=self.servers,
            text=text,
        )
        walked: list[tuple[Finding, Decision | None]] = []
        try:
            walked = walker.run(chunk)
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
        suggestion = suggest_keys(source, usage, declared) if not library else None
        declare = "\n".join(suggestion.declaration_lines()) if suggestion is not None else ""
        findings.extend(replace(f, declare=declare) if d else f for f, d in walked)
        analysis = self._finish(findings, usage, directives, walked=True)
        return replace(analysis, suggestion=suggestion)

    @staticmethod
    def _finish(findings: list[Finding], usage: KeyUsage, directives: Directives, *, walked: bool) -> Analysis:
        """Apply the script's suppressions; report the ones that silence nothing (when the walk ran:
        a script that does not parse tells nothing of what its suppressions would silence)."""
        silenced = {(s.target, code) for s in directives.suppressions for code in s.codes}
        kept = [f for f in findings if (f.line, f.code) not in silenced]
        suppressed = len(findings) - len(kept)
        reported = {(f.line, f.code) for f in findings}
        for s in directives.suppressions if walked else ():
            for code in s.codes:
                if (s.target, code) in reported:
                    continue
                what = (
                    f"'{code}' is not a code of the check ({', '.join(sorted(CODES))})"
                    if code not in CODES
                    else f"nothing is reported as {code} on line {s.target}"
                )
                kept.append(
                    Finding(
                        "",
                        "",
                        s.line,
                        1,
                        WARNING,
                        "unused-suppression",
                        f"this suppression silences nothing: {what}",
                        f"remove '{code}' from the ignore comment (or the comment): suppressions must not outlive "
                        "their reason",
                        subject=f"ignore {code}",
                    )
                )
        ordered = tuple(sorted(kept, key=lambda f: (f.line, f.column, f.code)))
        return Analysis(ordered, usage, suppressed)


_CODE_STAMP = _code_stamp()


def _suggestion_to_dict(suggestion: KeySuggestion | None) -> dict[str, list[str]] | None:
    if suggestion is None:
        return None
    return {
        "keys": list(suggestion.keys),
        "argv": list(suggestion.argv),
        "sources": list(suggestion.sources),
        "stored": list(suggestion.stored),
    }


def _suggestion_from_dict(data: dict[str, list[str]] | None) -> KeySuggestion | None:
    if data is None:
        return None
    return KeySuggestion(
        tuple(map(str, data["keys"])),
        tuple(map(str, data["argv"])),
        tuple(map(str, data["sources"])),
        tuple(map(str, data["stored"])),
    )

"""What one walk carries, under the layers that do the walking: its settings, the call context, the
findings merged per source position, and how the script uses KEYS.

The walk is one class built in layers, each a module that only imports the ones below it:

    state.py        WalkState: settings, findings (Site, Ctx, call chains), KEYS usage
    expressions.py  + the value of each expression
    library.py      + Lua's standard library, cjson / cmsgpack, string and table functions
    calls.py        + calling: Lua functions, redis.call / pcall and the other redis.* functions
    walker.py       + statements, control flow: the Walker the Analyzer runs

Expressions contain calls and a called function runs statements, so the lower layers reach the upper
ones through the two abstract methods declared here (`call`, `block`), not through imports.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from redis_orchestrator.analysis.declared import Declared
from redis_orchestrator.analysis.derive import Lua51
from redis_orchestrator.analysis.findings import INFO, Finding, Severity
from redis_orchestrator.analysis.keyslots import Judge
from redis_orchestrator.analysis.keyspecs import KeySpecs
from redis_orchestrator.analysis.lexer import LineMap
from redis_orchestrator.analysis.suggest import KeyUsage
from redis_orchestrator.analysis.syntax import Call, Node
from redis_orchestrator.analysis.values import Closure, Scope, Val, alternatives

_MAX_CHAINS = 4

Frame = tuple[str, int]  # (helper name, line of the call)
Chain = tuple[Frame, ...]
Event = tuple[int, Severity, str, str, str, Chain]  # (pos, severity, code, message, suggestion, chain)


@dataclass
class Ctx:
    readonly: bool
    function: str  # "" for a script body, else the registered function's name
    mode: str  # "node": undeclared keys must be served by this node; "slot": in the declared slot
    chain: Chain = ()
    returns: list[Val] | None = None
    ended: bool = False  # the rest of the block does not run (return, error(), break)


@dataclass
class Site:
    """One finding location, merged over every call context that reaches it."""

    line: int
    column: int
    severity: Severity
    code: str
    message: str
    suggestion: str
    chains: list[Chain] = field(default_factory=list)
    clean_context: bool = False  # reached once outside any helper chain


@dataclass
class Recorder:
    """The findings of one memoised helper call, replayed when the same call comes again."""

    base: int  # length of the caller's chain when the memoised call started
    events: list[Event] = field(default_factory=list)


@dataclass
class KeyUse:
    """How the script uses KEYS[i], for `keys:` suggestions (suggest.KeyUsage once frozen)."""

    names: dict[int, str] = field(default_factory=dict)  # index -> the local it is bound to
    highest: int = 0
    built_from: set[int] = field(default_factory=set)  # indexes used as the prefix of built keys
    argv_prefixes: set[str] = field(default_factory=set)  # "ARGV[2]" starting an undeclared key

    def frozen(self) -> KeyUsage:
        return KeyUsage(
            self.highest, tuple(sorted(self.names.items())), frozenset(self.built_from), frozenset(self.argv_prefixes)
        )


class WalkState(ABC):
    """The state every layer of the walk reads and writes; the Walker is the complete class."""

    def __init__(
        self,
        specs: KeySpecs,
        lines: LineMap,
        *,
        library: bool,
        readonly: bool,
        mode: str = "node",
        declared: Declared | None = None,
        lua: Lua51 | None = None,
        same_slot_severity: Severity = INFO,
    ) -> None:
        self.specs = specs
        self.lines = lines
        self.library = library
        self.readonly = readonly
        self.mode = mode
        self.declared = declared or Declared()
        self.lua = lua
        self.judge = Judge(self.declared, library=library, same_slot_severity=same_slot_severity)
        self.sites: dict[tuple[int, str], Site] = {}
        self.globals: dict[str, Val] = {}
        self.closures: list[Closure] = []
        self.invoked: set[int] = set()
        self.escaped: set[int] = set()
        self.memo: dict[tuple[object, ...], tuple[list[Val], list[Event]]] = {}
        self.recorders: list[Recorder] = []
        self.active: set[int] = set()
        self.multi: dict[int, list[Val]] = {}  # id(Call node) -> every value the call returned
        self.keys = KeyUse()

    # The layers above: a call expression (calls.py) and a block of statements (walker.py).
    @abstractmethod
    def call(self, node: Call, scope: Scope, ctx: Ctx) -> Val: ...

    @abstractmethod
    def block(self, body: list[Node], scope: Scope, ctx: Ctx) -> None: ...

    # ------------------------------------------------------------------ findings
    def report(self, pos: int, severity: Severity, code: str, message: str, suggestion: str, ctx: Ctx) -> None:
        for recorder in self.recorders:
            recorder.events.append((pos, severity, code, message, suggestion, ctx.chain[recorder.base :]))
        self._site(pos, severity, code, message, suggestion, ctx.chain, ctx.function)

    def _site(
        self, pos: int, severity: Severity, code: str, message: str, suggestion: str, chain: Chain, function: str
    ) -> None:
        if function:
            message = f"in function '{function}': {message}"
        site = self.sites.get((pos, code))
        if site is None:
            line, column = self.lines.position(pos)
            site = self.sites[(pos, code)] = Site(line, column, severity, code, message, suggestion)
        elif severity.rank > site.severity.rank:
            site.severity, site.message, site.suggestion = severity, message, suggestion
            site.chains = []
        elif severity.rank < site.severity.rank:
            return
        if chain:
            if chain not in site.chains:
                site.chains.append(chain)
        else:
            site.clean_context = True

    def findings(self) -> list[Finding]:
        result = []
        for site in self.sites.values():
            message = site.message + (_via(site.chains) if site.chains else "")
            result.append(Finding("", "", site.line, site.column, site.severity, site.code, message, site.suggestion))
        return sorted(result, key=lambda f: (f.line, f.column, f.code))

    # ------------------------------------------------------------------ functions the walk loses sight of
    def escape(self, val: Val) -> None:
        """`val` is handed to code the walk cannot follow: the functions in it are checked on their own."""
        for alt in alternatives(val):
            if alt.closure is not None:
                self.escaped.add(id(alt.closure))
            elif alt.kind == "table" and alt.tab is not None:
                for _, field_val in alt.tab.fields:
                    if field_val.closure is not None:
                        self.escaped.add(id(field_val.closure))


def _via(chains: list[Chain]) -> str:
    """[reached via f() called at line 30 → g() called at line 12; ...]"""
    shown = [" → ".join(f"{name}() called at line {line}" for name, line in chain) for chain in chains[:_MAX_CHAINS]]
    more = f"; and {len(chains) - _MAX_CHAINS} more call chain(s)" if len(chains) > _MAX_CHAINS else ""
    return f" [reached via {'; '.join(shown)}{more}]"

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

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace

from redis_orchestrator.analysis.declared import Declared
from redis_orchestrator.analysis.derive import Lua51
from redis_orchestrator.analysis.findings import ERROR, INFO, Finding, Severity
from redis_orchestrator.analysis.keyslots import Decision, Judge
from redis_orchestrator.analysis.keyspecs import KeySpecs
from redis_orchestrator.analysis.lexer import LineMap
from redis_orchestrator.analysis.slots import key_slot
from redis_orchestrator.analysis.suggest import KeyUsage
from redis_orchestrator.analysis.syntax import Call, Node
from redis_orchestrator.analysis.values import Closure, Scope, Val, alternatives

_MAX_CHAINS = 4
ALL_SERVERS = frozenset({"redis", "valkey"})

Frame = tuple[str, int]  # (helper name, line of the call)
Chain = tuple[Frame, ...]


@dataclass(frozen=True)
class Report:
    """What one finding says, before it is merged into its Site."""

    severity: Severity
    code: str
    message: str
    suggestion: str
    subject: str = ""  # what the finding is about, without line numbers: the key expression, a name
    decision: Decision | None = None  # the declaration that would decide a warning
    fixed: str = ""  # a key whose slot the script fixes


Event = tuple[int, Report, Chain]  # (pos, report, chain)


@dataclass(frozen=True)
class Deferred:
    """A helper called again while it runs (recursion): analysed with those arguments once the
    running call is done."""

    closure: Closure
    args: list[Val]
    tail: Val | None
    ctx: Ctx
    site: int | None


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
    """One finding location, merged over every call context that reaches it (the worst report wins)."""

    line: int
    column: int
    report: Report
    chains: list[Chain] = field(default_factory=list)
    clean_context: bool = False  # reached once outside any helper chain


@dataclass
class Recorder:
    """The findings of one memoised helper call, replayed when the same call comes again."""

    base: int  # length of the caller's chain when the memoised call started
    events: list[Event] = field(default_factory=list)


@dataclass
class KeyUse:
    """How the script uses KEYS[i] and ARGV, for `keys:` suggestions (suggest.KeyUsage once frozen)."""

    names: dict[int, str] = field(default_factory=dict)  # index -> the local it is bound to
    highest: int = 0
    built_from: set[int] = field(default_factory=set)  # indexes used as the prefix of built keys
    argv: dict[str, str] = field(default_factory=dict)  # "ARGV[2]" -> its role in a key (prefix, whole, tag)
    stored: bool = False  # a name read back from Redis decides a key's slot
    reads_keys: bool = False

    def frozen(self) -> KeyUsage:
        return KeyUsage(
            self.highest,
            tuple(sorted(self.names.items())),
            frozenset(self.built_from),
            tuple(sorted(self.argv.items())),
            self.stored,
            self.reads_keys,
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
        servers: frozenset[str] = ALL_SERVERS,
        text: str = "",
        keyless: bool = False,
    ) -> None:
        self.specs = specs
        self.lines = lines
        self.text = text
        self.servers = servers
        self.library = library
        self.readonly = readonly
        self.mode = mode
        self.declared = declared or Declared()
        self.lua = lua
        self.judge = Judge(self.declared, library=library, same_slot_severity=same_slot_severity, keyless=keyless)
        self.sites: dict[tuple[int, str], Site] = {}
        self.globals: dict[str, Val] = {}
        self.closures: list[Closure] = []
        self.invoked: set[int] = set()
        self.escaped: set[int] = set()
        self.memo: dict[tuple[object, ...], tuple[list[Val], list[Event]]] = {}
        self.recorders: list[Recorder] = []
        self.active: set[int] = set()
        self.multi: dict[int, list[Val]] = {}  # id(Call node) -> every value the call returned
        self.deferred: dict[int, list[Deferred]] = {}  # id(Function) -> its recursive calls, to run
        self.unrolled: dict[int, int] = {}  # id(Function) -> how deep its recursion is being followed
        self.keys = KeyUse()

    # The layers above: a call expression (calls.py) and a block of statements (walker.py).
    @abstractmethod
    def call(self, node: Call, scope: Scope, ctx: Ctx) -> Val: ...

    @abstractmethod
    def block(self, body: list[Node], scope: Scope, ctx: Ctx) -> None: ...

    # ------------------------------------------------------------------ findings
    def report(
        self,
        pos: int,
        severity: Severity,
        code: str,
        message: str,
        suggestion: str,
        ctx: Ctx,
        *,
        subject: str = "",
        decision: Decision | None = None,
        fixed: str = "",
    ) -> None:
        what = Report(severity, code, message, suggestion, subject or self._token(pos), decision, fixed)
        for recorder in self.recorders:
            recorder.events.append((pos, what, ctx.chain[recorder.base :]))
        self._site(pos, what, ctx.chain, ctx.function)

    def _site(self, pos: int, what: Report, chain: Chain, function: str) -> None:
        if function:
            what = replace(what, message=f"in function '{function}': {what.message}")
        site = self.sites.get((pos, what.code))
        if site is None:
            line, column = self.lines.position(pos)
            site = self.sites[(pos, what.code)] = Site(line, column, what)
        elif what.severity.rank > site.report.severity.rank:
            site.report = what
            site.chains = []
        elif what.severity.rank < site.report.severity.rank:
            return
        if chain:
            if chain not in site.chains:
                site.chains.append(chain)
        else:
            site.clean_context = True

    def _token(self, pos: int) -> str:
        """The word or string at `pos`: what a finding without a key expression is about."""
        m = _TOKEN.match(self.text, pos)
        return m.group() if m else ""

    def findings(self) -> list[tuple[Finding, Decision | None]]:
        self._fixed_keys_differ()
        result = []
        for site in self.sites.values():
            what = site.report
            message = what.message + (_via(site.chains) if site.chains else "")
            finding = Finding(
                "", "", site.line, site.column, what.severity, what.code, message, what.suggestion, subject=what.subject
            )
            result.append((finding, what.decision))
        return sorted(result, key=lambda r: (r[0].line, r[0].column, r[0].code))

    def _fixed_keys_differ(self) -> None:
        """Keys whose slot the script fixes, in two different slots: one of them is always elsewhere."""
        # key_slot applies Redis' hash-tag rule itself: each fixed key's slot, computed once.
        fixed = [
            (site, key_slot(site.report.fixed))
            for site in self.sites.values()
            if site.report.fixed and site.report.code == "undeclared-key"
        ]
        if len({slot for _, slot in fixed}) < 2:
            return
        for site, mine in fixed:
            what = site.report
            other, theirs = next((s, slot) for s, slot in fixed if slot != mine)
            message = (
                f"'{what.fixed}' is a key the script fixes in slot {mine}, and '{other.report.fixed}' (line "
                f"{other.line}) one it fixes in slot {theirs}: whatever node the script runs on, it fails unless "
                "that node serves both slots, and a call or a #!lua script that takes keys of both fails always "
                "('Script attempted to access a non local key', \"... keys that don't hash to the same slot\")"
            )
            site.report = replace(what, severity=ERROR, message=message, decision=None)

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


_TOKEN = re.compile(r"""[A-Za-z_][\w.:]*|'[^'\n]*'|"[^"\n]*"|\S""")


def _via(chains: list[Chain]) -> str:
    """[reached via f() called at line 30 → g() called at line 12; ...]"""
    shown = [" → ".join(f"{name}() called at line {line}" for name, line in chain) for chain in chains[:_MAX_CHAINS]]
    more = f"; and {len(chains) - _MAX_CHAINS} more call chain(s)" if len(chains) > _MAX_CHAINS else ""
    return f" [reached via {'; '.join(shown)}{more}]"

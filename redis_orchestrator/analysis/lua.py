"""The AST walk: follow what each redis.call argument is, and what each call may do.

Values (values.Val) carry their origin and, for strings, their shape, from which their slot follows
(keyslots.py judges each key argument). The walk is flow-aware: after an if/else a variable is one
of what the branches that go on left in it (a branch that returns or errors leaves nothing); after a
loop, what it held before or after a turn. Tables keep their elements in order where that is known
(a loop appending a key and a value on each turn makes a repeating pair, so `unpack(t)` to MSETNX
puts the keys where MSETNX reads keys).

Helpers (local functions, `M.f` fields, closures handed to pcall) are analysed per call with the
values of that call, memoised per distinct arguments. A finding in a helper is reported once, at its
source line, with the call chains that reach it; a helper never called is not analysed, one handed
to code the walk cannot follow is analysed once with unknown parameters (warnings only).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .declared import Declared
from .derive import STRING_OPS, Lua51
from .findings import ERROR, INFO, WARNING, Finding, Severity
from .keyslots import Judge, Verdict
from .keyspecs import KeySpecs, key_positions
from .lexer import LineMap
from .suggest import KeyUsage
from .syntax import (
    Assign,
    BinOp,
    Break,
    Call,
    CallStat,
    Chunk,
    Const,
    Do,
    FuncStat,
    Function,
    GenFor,
    If,
    Index,
    Local,
    Name,
    Node,
    NumFor,
    Paren,
    Repeat,
    Return,
    Str,
    Table,
    UnOp,
    While,
)
from .values import (
    NIL,
    NUMBER,
    UNKNOWN,
    Hole,
    Lit,
    Pat,
    Shape,
    Tab,
    Val,
    alternatives,
    concat,
    render,
    slot_fact,
    union,
)

SCRIPT_GLOBALS = frozenset(
    [
        "redis",
        "KEYS",
        "ARGV",
        "string",
        "table",
        "math",
        "cjson",
        "cmsgpack",
        "bit",
        "struct",
        "tonumber",
        "tostring",
        "type",
        "pairs",
        "ipairs",
        "next",
        "select",
        "unpack",
        "error",
        "assert",
        "pcall",
        "xpcall",
        "rawget",
        "rawset",
        "rawequal",
        "setmetatable",
        "getmetatable",
        "_G",
        "_VERSION",
        "loadstring",
        "gcinfo",
        "print",
        "os",
        "coroutine",
    ]
)
FUNCTION_GLOBALS = SCRIPT_GLOBALS - {"KEYS", "ARGV"}
_LIBS = frozenset({"string", "table", "math", "cjson", "cmsgpack", "bit", "struct", "os"})
_MAX_DEPTH = 8
_MAX_CHAINS = 4
# Commands that list keys: in a cluster they see only the node the script runs on.
ENUMERATING = frozenset({"scan", "keys", "randomkey"})
_FORMAT_SPEC = re.compile(r"%[-+ #0]*\d*(?:\.\d+)?([a-zA-Z%])")


@dataclass(frozen=True, eq=False)
class Closure:
    func: Function
    scope: Scope
    name: str = ""  # what call chains show: the function's name, or the local / field it was stored in

    @property
    def label(self) -> str:
        return self.name or self.func.name


def _named(val: Val, name: str) -> Val:
    """An anonymous function stored under a name is called by that name in call chains."""
    closure = val.closure
    if closure is None or closure.name or closure.func.name != "function":
        return val
    return replace(val, closure=Closure(closure.func, closure.scope, name))


@dataclass(eq=False)
class Scope:
    parent: Scope | None
    vars: dict[str, Val] = field(default_factory=dict)

    def find(self, name: str) -> Scope | None:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.vars:
                return scope
            scope = scope.parent
        return None

    def chain(self) -> list[Scope]:
        scopes: list[Scope] = []
        scope: Scope | None = self
        while scope is not None:
            scopes.append(scope)
            scope = scope.parent
        return scopes


Frame = tuple[str, int]  # (helper name, line of the call)
Chain = tuple[Frame, ...]


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
class _Recorder:
    base: int  # length of the caller's chain when the memoised call started
    events: list[tuple[int, Severity, str, str, str, Chain]] = field(default_factory=list)


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


class Walker:
    """Findings carry no file or script name: the Analyzer caches them by content and fills those in."""

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
        self.memo: dict[tuple[object, ...], tuple[list[Val], list[tuple[int, Severity, str, str, str, Chain]]]] = {}
        self.recorders: list[_Recorder] = []
        self.active: set[int] = set()
        self.multi: dict[int, list[Val]] = {}  # id(Call node) -> every value the call returned
        self.keys = KeyUse()

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

    # ------------------------------------------------------------------ entry
    def run(self, chunk: Chunk) -> list[Finding]:
        root = Scope(None)
        ctx = Ctx(readonly=self.readonly and not self.library, function="", mode=self.mode)
        self.block(chunk.body, root, ctx)
        # Helpers handed to code the walk cannot follow: check them once with unknown parameters.
        index = 0
        while index < len(self.closures):
            closure = self.closures[index]
            index += 1
            if id(closure.func) in self.invoked or id(closure) not in self.escaped:
                continue
            params = [Val("param", f"parameter '{p}' of {closure.label}()") for p in closure.func.params]
            self.invoke(closure, params, None, Ctx(readonly=False, function="", mode=self.mode), None)
        return self.findings()

    # ------------------------------------------------------------------ statements
    def block(self, body: list[Node], scope: Scope, ctx: Ctx) -> None:
        for stat in body:
            if ctx.ended:
                return
            self.statement(stat, scope, ctx)

    def nested(self, body: list[Node], scope: Scope, ctx: Ctx, bind: dict[str, Val] | None = None) -> None:
        inner = Scope(scope, dict(bind) if bind else {})
        self.block(body, inner, ctx)

    def statement(self, stat: Node, scope: Scope, ctx: Ctx) -> None:
        if isinstance(stat, CallStat):
            self.call(stat.call, scope, ctx)
        elif isinstance(stat, Local):
            vals = self.values(stat.values, scope, ctx, len(stat.names))
            for name, val in zip(stat.names, vals, strict=True):
                scope.vars[name] = _named(val, name)
                self._note_key_name(name, val)
        elif isinstance(stat, Assign):
            vals = self.values(stat.values, scope, ctx, len(stat.targets))
            for target, val in zip(stat.targets, vals, strict=True):
                self.assign(target, val, scope, ctx)
        elif isinstance(stat, If):
            self.branches(stat, scope, ctx)
        elif isinstance(stat, NumFor):
            for e in (stat.start, stat.stop, stat.step):
                if e is not None:
                    self.expr(e, scope, ctx)
            self.loop(lambda: self.nested(stat.body, scope, ctx, {stat.var: NUMBER}), scope, ctx)
        elif isinstance(stat, GenFor):
            bind = self.iteration(stat, scope, ctx)
            self.loop(lambda: self.nested(stat.body, scope, ctx, bind), scope, ctx)
        elif isinstance(stat, While):
            self.expr(stat.cond, scope, ctx)
            self.loop(lambda: self.nested(stat.body, scope, ctx), scope, ctx)
        elif isinstance(stat, Repeat):

            def turn() -> None:
                inner = Scope(scope)
                self.block(stat.body, inner, ctx)
                if not ctx.ended:
                    self.expr(stat.cond, inner, ctx)

            self.loop(turn, scope, ctx)
        elif isinstance(stat, Do):
            self.block(stat.body, Scope(scope), ctx)
        elif isinstance(stat, FuncStat):
            closure = Closure(stat.func, scope)
            self.closures.append(closure)
            val = Val("function", stat.func.name, closure=closure)
            if stat.is_local and isinstance(stat.target, Name):
                scope.vars[stat.target.name] = val
            else:
                self.assign(stat.target, val, scope, ctx)
        elif isinstance(stat, Return):
            vals = self.values(stat.values, scope, ctx, max(len(stat.values), 1))
            if ctx.returns is None:
                ctx.returns = vals
            else:
                width = max(len(vals), len(ctx.returns))
                old = ctx.returns + [NIL] * (width - len(ctx.returns))
                new = vals + [NIL] * (width - len(vals))
                ctx.returns = [union([a, b]) for a, b in zip(old, new, strict=True)]
            ctx.ended = True
        elif isinstance(stat, Break):
            ctx.ended = True

    def _note_key_name(self, name: str, val: Val) -> None:
        if val.kind == "key" and val.detail.startswith("KEYS[") and val.detail[5:-1].isdigit():
            self.keys.names.setdefault(int(val.detail[5:-1]), name)

    # ------------------------------------------------------------------ control flow
    @staticmethod
    def _snapshot(frames: list[Scope]) -> list[dict[str, Val]]:
        return [dict(s.vars) for s in frames]

    @staticmethod
    def _restore(frames: list[Scope], state: list[dict[str, Val]]) -> None:
        for scope, saved in zip(frames, state, strict=True):
            scope.vars = dict(saved)

    @staticmethod
    def _merge(frames: list[Scope], outcomes: list[list[dict[str, Val]]]) -> None:
        for k, scope in enumerate(frames):
            merged: dict[str, Val] = {}
            for name, first in outcomes[0][k].items():
                vals = [o[k].get(name, first) for o in outcomes]
                merged[name] = first if all(v == first for v in vals[1:]) else union(vals)
            scope.vars = merged

    def branches(self, stat: If, scope: Scope, ctx: Ctx) -> None:
        frames = scope.chain()
        before = self._snapshot(frames)
        outcomes: list[list[dict[str, Val]]] = []
        for cond, body in stat.clauses:
            self.expr(cond, scope, ctx)
            entry = self._snapshot(frames)
            self.nested(body, scope, ctx)
            if not ctx.ended:
                outcomes.append(self._snapshot(frames))
            ctx.ended = False
            self._restore(frames, entry)
        if stat.orelse is not None:
            self.nested(stat.orelse, scope, ctx)
            if not ctx.ended:
                outcomes.append(self._snapshot(frames))
            ctx.ended = False
        else:
            outcomes.append(self._snapshot(frames))
        if not outcomes:
            # Every branch returns or fails: nothing after the if runs on this path.
            self._restore(frames, before)
            ctx.ended = True
            return
        self._merge(frames, outcomes)

    def loop(self, turn: Callable[[], None], scope: Scope, ctx: Ctx) -> None:
        """Zero or more turns: afterwards a variable holds what it held before, or after a turn."""
        frames = scope.chain()
        before = self._snapshot(frames)
        turn()
        ctx.ended = False
        self._merge(frames, [before, self._snapshot(frames)])

    # ------------------------------------------------------------------ assignment
    def assign(self, target: Node, val: Val, scope: Scope, ctx: Ctx) -> None:
        if isinstance(target, Name):
            owner = scope.find(target.name)
            if owner is not None:
                owner.vars[target.name] = val
                return
            self.global_write(target.name, target.pos, ctx)
            self.globals[target.name] = val
            return
        if isinstance(target, Index):
            obj = self.expr(target.obj, scope, ctx)
            key = self.expr(target.key, scope, ctx)
            if obj.kind != "table" or obj.tab is None or obj.source:
                return
            tab = obj.tab
            if key.kind == "literal" and key.literal is not None:
                tab = tab.with_field(key.literal, _named(val, key.literal))
            elif key.kind == "number" and key.literal is not None and key.literal.isdigit():
                tab = tab.set_at(int(key.literal), val)
            elif _is_append(target.key, target.obj):
                tab = tab.appended(val)
            else:
                tab = tab.unordered(val)
            self.rebind(target.obj, replace(obj, tab=tab), scope, ctx)

    def rebind(self, node: Node, val: Val, scope: Scope, ctx: Ctx) -> None:
        """Store an updated table back where it was read from (a local, or a field of one)."""
        if isinstance(node, Name):
            owner = scope.find(node.name)
            if owner is not None:
                owner.vars[node.name] = val
            elif node.name in self.globals:
                self.globals[node.name] = val
        elif isinstance(node, Index) and isinstance(node.key, Str):
            parent = self.expr_quiet(node.obj, scope)
            if parent.kind == "table" and parent.tab is not None and not parent.source:
                self.rebind(node.obj, replace(parent, tab=parent.tab.with_field(node.key.value, val)), scope, ctx)

    def global_write(self, name: str, pos: int, ctx: Ctx) -> None:
        # Seen on 7.0.15: _G is read-only, so the error is "Attempt to modify a readonly table"
        # (older servers said "Script attempted to create global variable").
        if self.library:
            when = "the call fails" if ctx.function else "FUNCTION LOAD fails ('Error registering functions')"
            message = (
                f"assignment to global '{name}': Redis Functions forbid globals, {when} with "
                "'Attempt to modify a readonly table'"
            )
        else:
            message = (
                f"assignment to global '{name}': Redis fails with 'Attempt to modify a readonly table' "
                "(before 7.0: 'Script attempted to create global variable')"
            )
        self.report(pos, ERROR, "global-write", message, f"declare it: local {name} = ...", ctx)

    def iteration(self, stat: GenFor, scope: Scope, ctx: Ctx) -> dict[str, Val]:
        names = stat.names
        bound = dict.fromkeys(names, UNKNOWN)
        first = stat.exprs[0] if len(stat.exprs) == 1 else None
        if isinstance(first, Call):
            callee = self.expr(first.func, scope, ctx)
            args = [self.expr(a, scope, ctx) for a in first.args]
            if first.method == "gmatch" or (callee.kind == "libfn" and callee.literal == "string.gmatch"):
                text = callee if first.method else (args[0] if args else UNKNOWN)
                origin = f"a piece of {self.describe(text)}"
                return dict.fromkeys(names, Val("built", origin, shape=(Hole(origin),)))
            if first.method is None and callee.kind == "builtin" and callee.literal in ("ipairs", "pairs") and args:
                bound[names[0]] = NUMBER if callee.literal == "ipairs" else UNKNOWN
                if len(names) > 1:
                    bound[names[1]] = self.element(args[0]) if callee.literal == "ipairs" else self.any_value(args[0])
                return bound
            self.dispatch(first, callee, args, scope, ctx)
            return bound
        vals = [self.expr(e, scope, ctx) for e in stat.exprs]
        if vals and vals[0].kind == "builtin" and vals[0].literal == "next" and len(vals) > 1 and len(names) > 1:
            bound[names[1]] = self.element(vals[1])
        return bound

    # ------------------------------------------------------------------ expressions
    def values(self, exprs: list[Node], scope: Scope, ctx: Ctx, wanted: int) -> list[Val]:
        """`wanted` values from an expression list (the last one may expand to several)."""
        vals = [self.expr(e, scope, ctx) for e in exprs]
        if len(vals) < wanted and exprs and _multi(exprs[-1]):
            tail = self.expansion(exprs[-1], vals[-1], scope)
            tab = tail.tab or Tab()
            extra = [*tab.items[1:]] if tab.exact else []
            rest = tab.elem() or UNKNOWN
            while len(vals) < wanted:
                vals.append(extra.pop(0) if extra else (NIL if tab.exact and tail.tab else rest))
        vals.extend([NIL] * (wanted - len(vals)))
        return vals[:wanted]

    def expansion(self, expr: Node, val: Val, scope: Scope) -> Val:
        """The several values of a multi-value expression, as a sequence (a table value)."""
        if isinstance(expr, Call):
            returned = self.multi.get(id(expr))
            if returned is not None:
                return Val("table", "returned values", tab=Tab(items=tuple(returned)))
            callee = self.expr_quiet(expr.func, scope)
            if callee.literal in ("unpack", "table.unpack") and expr.args:
                source = self.expr_quiet(expr.args[0], scope)
                return self.as_sequence(source)
        if isinstance(expr, Const) and expr.kind == "...":
            return self.as_sequence(_vararg(scope))
        return Val("table", "values", tab=Tab(more=val))

    def as_sequence(self, val: Val) -> Val:
        if val.kind == "table" and val.tab is not None and not val.source:
            return val
        return Val("table", val.detail, tab=Tab(more=self.element(val)))

    def expr_quiet(self, node: Node, scope: Scope) -> Val:
        """The value of an already-checked expression (names and field reads only: no findings)."""
        if isinstance(node, Name):
            return self.lookup(node, scope, None)
        if isinstance(node, Index):
            obj = self.expr_quiet(node.obj, scope)
            key = self.expr_quiet(node.key, scope)
            return self.index(obj, key)
        if isinstance(node, Str):
            return Val("literal", literal=node.value, shape=(Lit(node.value),))
        if isinstance(node, Const) and node.kind == "number":
            return Val("number", literal=node.text, shape=(Lit(node.text),))
        if isinstance(node, Paren):
            return self.expr_quiet(node.expr, scope)
        if isinstance(node, Const) and node.kind == "...":
            return _vararg(scope)
        return UNKNOWN

    def lookup(self, node: Name, scope: Scope, ctx: Ctx | None) -> Val:
        owner = scope.find(node.name)
        if owner is not None:
            return owner.vars[node.name]
        name = node.name
        if name in self.globals:
            return self.globals[name]
        known = FUNCTION_GLOBALS if self.library else SCRIPT_GLOBALS
        if name == "KEYS":
            val = Val("table", "KEYS", tab=Tab(), source="KEYS")
        elif name == "ARGV":
            val = Val("table", "ARGV", tab=Tab(), source="ARGV")
        elif name == "redis":
            val = Val("redis")
        elif name in _LIBS:
            val = Val("lib", literal=name)
        else:
            val = Val("builtin", literal=name)
        if name not in known and ctx is not None:
            if self.library and name in ("KEYS", "ARGV"):
                message = f"{name} does not exist in Redis Functions"
                hint = f"use the callback's {'first' if name == 'KEYS' else 'second'} parameter instead"
            else:
                message = (
                    f"read of undefined global '{name}': Redis fails with 'Script attempted to access "
                    "nonexistent global variable'"
                )
                hint = f"declare '{name}' local, or check its spelling"
            # Reading KEYS/ARGV in a Function indexes nil: a certain error at call time.
            severity = ERROR if self.library and name in ("KEYS", "ARGV") else WARNING
            self.report(node.pos, severity, "undefined-global", message, hint, ctx)
            if name not in ("KEYS", "ARGV"):
                val = Val("unknown", f"global '{name}'")
        return val

    def key_val(self, index: int | None, source: str) -> Val:
        """KEYS[index] (a function's keys[index]); index None when not a literal."""
        name = "KEYS" if source == "KEYS" else source
        detail = f"{name}[{index}]" if index is not None else f"{name}[i]"
        if index is not None:
            self.keys.highest = max(self.keys.highest, index)
        pattern = self.declared.key_pattern(index) if index is not None and source == "KEYS" else None
        if pattern is not None:
            return Val("key", detail, shape=(Pat(pattern, detail),))
        shared = self.declared.shared_hashed_part() if source == "KEYS" and index is None else None
        if shared is not None and all("{" + shared + "}" in p for p in self.declared.keys):
            # Which key is unknown, but every declared key carries the same tag.
            return Val("key", detail, shape=(Pat("{" + shared + "}", detail), Hole(f"the rest of {detail}")))
        return Val("key", detail, shape=(Hole(detail, key_index=index if index is not None else 0),))

    def argv_val(self, ref: str) -> Val:
        """ARGV[1], ARGV[1][2] (decoded), ARGV[1][7].queueKey; a function's args[1]."""
        pattern = self.declared.argv_pattern(ref) if not self.library else None
        shape: Shape = (Pat(pattern, ref),) if pattern is not None else (Hole(ref),)
        return Val("argv", ref, shape=shape)

    def any_value(self, obj: Val) -> Val:
        """What `pairs(obj)` yields as values: elements and fields."""
        if obj.kind == "table" and obj.tab is not None and not obj.source:
            return obj.tab.any_value() or UNKNOWN
        return self.element(obj)

    def element(self, obj: Val) -> Val:
        """What iterating `obj` (or indexing it with an unknown key) yields."""
        return self.index(obj, UNKNOWN)

    def index(self, obj: Val, key: Val) -> Val:
        if obj.kind == "either":
            return union(self.index(alt, key) for alt in obj.alts)
        number = int(key.literal) if key.kind == "number" and key.literal and key.literal.isdigit() else None
        if obj.kind == "table":
            if obj.source in ("KEYS",) or (self.library and obj.source == "keys"):
                return self.key_val(number, obj.source)
            if obj.source in ("ARGV", "args") or obj.source.startswith("ARGV["):
                if number is None:
                    what = f"{obj.source}[i]" if obj.source in ("ARGV", "args") else f"an element of {obj.source}"
                    return Val("argv", what, shape=(Hole(what),))
                return self.argv_val(f"{obj.source}[{number}]")
            tab = obj.tab or Tab()
            if key.kind == "literal" and key.literal is not None:
                found = tab.field(key.literal)
                if found is not None:
                    return found
            if number is not None and tab.exact:
                return tab.items[number - 1] if 1 <= number <= len(tab.items) else NIL
            if number is not None and 1 <= number <= len(tab.items):
                return tab.items[number - 1]
            if number is None and key.kind != "literal":
                return tab.any_value() or UNKNOWN  # t[k]: a field or an element
            return tab.elem() or UNKNOWN
        if obj.kind == "reply":
            return obj
        name = key.literal if key.kind == "literal" else None
        if obj.kind == "redis" and name is not None:
            return Val("redis-call" if name in ("call", "pcall") else "redis-fn", literal=name)
        if obj.kind == "lib" and name is not None:
            return Val("libfn", literal=f"{obj.literal}.{name}")
        if obj.kind == "param":
            return obj
        if obj.kind == "argv":
            # A part of a table decoded from ARGV: still the caller's data.
            if number is None and name is None:
                return Val("argv", f"a part of {obj.detail}", shape=(Hole(f"a part of {obj.detail}"),))
            return self.argv_val(obj.detail + (f"[{number}]" if number is not None else f".{name}"))
        return UNKNOWN

    def expr(self, node: Node, scope: Scope, ctx: Ctx) -> Val:
        if isinstance(node, Name):
            return self.lookup(node, scope, ctx)
        if isinstance(node, Str):
            return Val("literal", literal=node.value, shape=(Lit(node.value),))
        if isinstance(node, Index):
            obj = self.expr(node.obj, scope, ctx)
            key = self.expr(node.key, scope, ctx)
            return self.index(obj, key)
        if isinstance(node, Call):
            return self.call(node, scope, ctx)
        if isinstance(node, Const):
            if node.kind == "number":
                return Val("number", literal=node.text, shape=(Lit(node.text),))
            if node.kind == "...":
                return self.element(_vararg(scope))
            return NIL if node.kind == "nil" else Val("bool")
        if isinstance(node, BinOp):
            left = self.expr(node.left, scope, ctx)
            right = self.expr(node.right, scope, ctx)
            if node.op == "..":
                return self.concat(left, right)
            if node.op == "and":
                return right
            if node.op == "or":
                # `x or ""` is the nil-default idiom: the empty name is a sentinel tested before use.
                sentinel = right.kind in ("nil", "error") or (right.kind == "literal" and right.literal == "")
                return left if sentinel else union([left, right])
            return NUMBER if node.op in "+-*/%^" else Val("bool")
        if isinstance(node, UnOp):
            operand = self.expr(node.operand, scope, ctx)
            if node.op == "-" and operand.kind == "number" and operand.literal is not None:
                text = "-" + operand.literal
                return Val("number", literal=text, shape=(Lit(text),))
            return NUMBER if node.op != "not" else Val("bool")
        if isinstance(node, Paren):
            return self.expr(node.expr, scope, ctx)
        if isinstance(node, Function):
            closure = Closure(node, scope)
            self.closures.append(closure)
            return Val("function", node.name, closure=closure)
        if isinstance(node, Table):
            return self.table(node, scope, ctx)
        return UNKNOWN

    def table(self, node: Table, scope: Scope, ctx: Ctx) -> Val:
        items = [self.expr(e, scope, ctx) for e in node.items]
        tab = Tab(items=tuple(items))
        if node.items and _multi(node.items[-1]):
            tail = self.expansion(node.items[-1], items[-1], scope).tab or Tab()
            tab = Tab(items=tuple(items[:-1]) + tail.items, cycle=tail.cycle, more=tail.more)
        for key_node, value_node in node.keyed:
            key = self.expr(key_node, scope, ctx)
            value = self.expr(value_node, scope, ctx)
            if key.kind == "literal" and key.literal is not None:
                tab = tab.with_field(key.literal, value)
            elif key.kind == "number" and key.literal is not None and key.literal.isdigit():
                tab = tab.set_at(int(key.literal), value)
            else:
                tab = tab.unordered(value)
        return Val("table", "a table", tab=tab)

    # ------------------------------------------------------------------ strings
    def shape(self, val: Val) -> Shape:
        if val.shape is not None:
            return val.shape
        return (Hole(self.origin(val), stored=val.kind == "reply"),)

    def origin(self, val: Val) -> str:
        if val.kind == "reply" or val.kind == "param" or val.detail:
            return val.detail or val.kind
        if val.kind == "unknown":
            return "a value the checker cannot follow"
        return f"a {val.kind}"

    def concat(self, left: Val, right: Val) -> Val:
        results = []
        for a in alternatives(left)[:4]:
            for b in alternatives(right)[:4]:
                if a.kind == "nil" or b.kind == "nil":
                    continue  # Lua raises "attempt to concatenate a nil value": no call follows
                shape = concat(self.shape(a), self.shape(b))
                if len(shape) == 1 and isinstance(shape[0], Lit):
                    results.append(Val("literal", literal=shape[0].text, shape=shape))
                else:
                    results.append(Val("built", shape=shape))
        return union(results)

    def describe(self, val: Val) -> str:
        if val.kind == "literal":
            return f"the string literal {val.literal!r}"
        if val.kind in ("key", "argv", "reply", "param"):
            return val.detail or val.kind
        if val.kind == "number":
            return "a number"
        if val.shape is not None:
            return render(val.shape)
        return self.origin(val)

    def derived(self, op: str, text: Val, args: list[Val]) -> Val:
        """`text:op(args...)` / string.op(text, ...): the tag survives when the witnesses say so."""
        results = []
        literal_args: list[str | float] | None = []
        for arg in args:
            if arg.kind == "literal" and arg.literal is not None and literal_args is not None:
                literal_args.append(arg.literal)
            elif arg.kind == "number" and arg.literal is not None and literal_args is not None:
                try:
                    literal_args.append(float(arg.literal) if "." in arg.literal else int(arg.literal, 0))
                except ValueError:
                    literal_args = None
            else:
                literal_args = None
        for alt in alternatives(text):
            if alt.kind == "nil":
                continue
            shape = self.shape(alt)
            kept = None
            if op in STRING_OPS and literal_args is not None and self.lua is not None:
                kept = self.lua.tag_kept(op, shape, literal_args)
            if kept is not None:
                results.append(Val("built", shape=kept))
                continue
            # Where the cut falls is unknown: it keeps the source's tag, or not.
            what = f"string.{op} of {render(shape)}"
            fact = slot_fact(shape)
            if fact.keys_index >= 0:
                results.append(Val("built", what, shape=(Hole(what, key_index=fact.keys_index),)))
            else:
                cut_of_tagged = fact.stored or (fact.hashed is not None and self.declared.slot_owner(fact.hashed))
                results.append(Val("built", what, shape=(Hole(what, stored=bool(cut_of_tagged)),)))
        return union(results)

    def formatted(self, args: list[Val]) -> Val:
        """string.format('{%s}:job:%s', a, b) -> its shape, piece by piece."""
        fmt = args[0] if args else UNKNOWN
        if fmt.kind != "literal" or fmt.literal is None:
            return Val("built", "built with string.format", shape=(Hole("a string.format result"),))
        shape: Shape = ()
        position = 1
        last = 0
        for m in _FORMAT_SPEC.finditer(fmt.literal):
            shape = concat(shape, (Lit(fmt.literal[last : m.start()]),)) if m.start() > last else shape
            last = m.end()
            conv = m.group(1)
            if conv == "%":
                shape = concat(shape, (Lit("%"),))
                continue
            arg = args[position] if position < len(args) else UNKNOWN
            position += 1
            if conv in "sq" and len(alternatives(arg)) == 1:
                shape = concat(shape, self.shape(arg))
            elif conv in "dicouxXeEfgG":
                shape = concat(shape, NUMBER.shape or ())
            else:
                shape = concat(shape, (Hole(f"a string.format %{conv} of {self.describe(arg)}"),))
        if last < len(fmt.literal):
            shape = concat(shape, (Lit(fmt.literal[last:]),))
        return Val("built", shape=shape)

    def joined(self, table: Val, sep: Val) -> Val:
        """table.concat(t, sep) of a table whose elements are known in order."""
        tab = table.tab if table.kind == "table" and not table.source else None
        if tab is None or not tab.exact or sep.kind not in ("literal", "nil") or len(tab.items) > 16:
            return Val("built", "built with table.concat", shape=(Hole("a table.concat result"),))
        shape: Shape = ()
        for i, item in enumerate(tab.items):
            if i and sep.literal:
                shape = concat(shape, (Lit(sep.literal),))
            if len(alternatives(item)) != 1:
                return Val("built", "built with table.concat", shape=(Hole("a table.concat result"),))
            shape = concat(shape, self.shape(item))
        return Val("built", shape=shape)

    # ------------------------------------------------------------------ calls
    def call(self, node: Call, scope: Scope, ctx: Ctx) -> Val:
        callee = self.expr(node.func, scope, ctx)
        args = [self.expr(a, scope, ctx) for a in node.args]
        return self.dispatch(node, callee, args, scope, ctx)

    def dispatch(self, node: Call, callee: Val, args: list[Val], scope: Scope, ctx: Ctx) -> Val:
        if node.method is not None:
            return self.method_call(node, callee, args, scope, ctx)
        if callee.kind == "redis-call":
            return self.redis_call(node, node.args, args, scope, ctx)
        if callee.kind == "builtin" and callee.literal in ("pcall", "xpcall") and args:
            target = args[0]
            if target.kind == "redis-call" and callee.literal == "pcall":
                return self.redis_call(node, node.args[1:], args[1:], scope, ctx)
            passed = args[1:] if callee.literal == "pcall" else []
            return self.call_value(node, target, passed, node.args[1:], scope, ctx)
        if callee.kind == "redis-fn":
            return self.redis_fn(node, callee.literal or "", args, ctx)
        if callee.kind == "libfn":
            return self.lib_call(node, callee.literal or "", args, scope, ctx)
        if callee.kind == "builtin":
            return self.builtin(node, callee.literal or "", args, scope, ctx)
        return self.call_value(node, callee, args, node.args, scope, ctx)

    def call_value(
        self, node: Call, callee: Val, args: list[Val], arg_nodes: list[Node], scope: Scope, ctx: Ctx
    ) -> Val:
        closures = [alt for alt in alternatives(callee) if alt.closure is not None]
        if not closures:
            for arg in args:
                self.escape(arg)
            return UNKNOWN
        tail = self.expansion(arg_nodes[-1], args[-1], scope) if arg_nodes and _multi(arg_nodes[-1]) else None
        results = []
        returned: list[list[Val]] = []
        for alt in closures:
            assert alt.closure is not None
            values = self.invoke(alt.closure, args, tail, ctx, node.pos)
            returned.append(values)
            results.append(values[0] if values else NIL)
        if len(returned) == 1:
            self.multi[id(node)] = returned[0]
        return union(results)

    def escape(self, val: Val) -> None:
        for alt in alternatives(val):
            if alt.closure is not None:
                self.escaped.add(id(alt.closure))
            elif alt.kind == "table" and alt.tab is not None:
                for _, field_val in alt.tab.fields:
                    if field_val.closure is not None:
                        self.escaped.add(id(field_val.closure))

    def method_call(self, node: Call, obj: Val, args: list[Val], scope: Scope, ctx: Ctx) -> Val:
        method = node.method or ""
        member = self.index(obj, Val("literal", literal=method)) if obj.kind == "table" else UNKNOWN
        if member.closure is not None or member.kind == "either":
            return self.call_value(node, member, [obj, *args], [node.func, *node.args], scope, ctx)
        return self.string_call(method, obj, args)

    def string_call(self, name: str, text: Val, args: list[Val]) -> Val:
        if name == "format":
            return self.formatted([text, *args])
        if name in ("len", "byte", "find"):
            return NUMBER
        if name == "rep" and text.kind == "literal":
            return Val("built", shape=(Hole(f"string.rep of {text.literal!r}"),))
        if name in ("lower", "upper") and text.kind == "literal" and text.literal is not None:
            out = text.literal.lower() if name == "lower" else text.literal.upper()
            return Val("literal", literal=out, shape=(Lit(out),))
        return self.derived(name, text, args)

    def lib_call(self, node: Call, name: str, args: list[Val], scope: Scope, ctx: Ctx) -> Val:
        if name.startswith("string."):
            short = name[len("string.") :]
            if short == "char":
                return Val("built", "built with string.char", shape=(Hole("a string.char result"),))
            if short == "gmatch":
                return UNKNOWN
            return self.string_call(short, args[0] if args else UNKNOWN, args[1:])
        if name == "table.concat":
            return self.joined(args[0] if args else UNKNOWN, args[1] if len(args) > 1 else NIL)
        if name == "table.insert" and args:
            table = args[0]
            if table.kind == "table" and table.tab is not None and not table.source and node.args:
                tab = table.tab.appended(args[-1]) if len(args) == 2 else table.tab.unordered(args[-1])
                self.rebind(node.args[0], replace(table, tab=tab), scope, ctx)
            return NIL
        if name == "table.remove" and args:
            return self.element(args[0])
        if name in ("cmsgpack.unpack", "cjson.decode") and args:
            source = args[0]
            if source.kind == "argv" and source.detail.startswith("ARGV[") and source.detail[5:-1].isdigit():
                return Val("table", f"the table decoded from {source.detail}", tab=Tab(), source=source.detail)
            if source.kind == "argv":
                return Val("table", f"the table decoded from {source.detail}", tab=Tab(more=source))
            if source.kind == "reply":
                return replace(source, detail=f"a value decoded from {source.detail}")
            return UNKNOWN
        if name.startswith("math.") or name.startswith("bit."):
            return NUMBER
        if name in ("cjson.encode", "cmsgpack.pack"):
            return Val("built", f"encoded with {name}", shape=(Hole(f"a {name} result"),))
        for arg in args:
            self.escape(arg)  # table.sort(t, cmp) and the like call it where the walk cannot see
        return UNKNOWN

    def builtin(self, node: Call, name: str, args: list[Val], scope: Scope, ctx: Ctx) -> Val:
        if name == "error":
            ctx.ended = True
            return Val("error")
        if name == "tostring" and args:
            arg = args[0]
            if arg.kind == "number":
                return arg
            return arg if arg.shape is not None or arg.kind in ("reply", "param", "argv", "key") else UNKNOWN
        if name == "tonumber":
            return NUMBER
        if name == "assert" and args:
            return args[0]
        if name in ("unpack", "table.unpack") and args:
            sequence = self.as_sequence(args[0]).tab or Tab()
            if len(args) > 1:
                return self.element(args[0])
            self.multi[id(node)] = list(sequence.items) if sequence.exact else []
            if not sequence.exact:
                self.multi.pop(id(node), None)
            return sequence.items[0] if sequence.items else (sequence.elem() or NIL)
        if name == "select" and args:
            return NUMBER if args[0].literal == "#" else self.element(_vararg(scope))
        if name in ("ipairs", "pairs", "next"):
            return Val("builtin", literal=name)
        if name == "setmetatable" and len(args) > 1:
            result = _with_metatable(args[0], args[1])
            if result is not args[0]:
                self.rebind(node.args[0], result, scope, ctx)  # it changes the table in place
            return result
        if name == "type":
            return Val("built", "a type name", shape=(Hole("a type name", brace_free=True),))
        for arg in args:
            self.escape(arg)
        return UNKNOWN

    def redis_fn(self, node: Call, name: str, args: list[Val], ctx: Ctx) -> Val:
        if name == "register_function":
            self.register(node, args, ctx)
            return NIL
        if name == "sha1hex":
            return Val("built", "a SHA1", shape=(Hole("a SHA1 hex digest", brace_free=True),))
        if name in ("error_reply", "status_reply"):
            return Val("reply", f"redis.{name}")
        return UNKNOWN

    def invoke(self, closure: Closure, args: list[Val], tail: Val | None, ctx: Ctx, site: int | None) -> list[Val]:
        func = closure.func
        self.invoked.add(id(func))
        params = list(args[: len(func.params)])
        extra = tail.tab if tail is not None and tail.tab is not None else Tab()
        pending = list(extra.items)
        while len(params) < len(func.params):
            if pending:
                params.append(pending.pop(0))
            elif not extra.exact:
                params.append(extra.elem() or UNKNOWN)
            else:
                params.append(NIL)
        surplus = tuple(args[len(func.params) :])
        vararg = Val("table", "...", tab=Tab(items=surplus + tuple(pending), cycle=extra.cycle, more=extra.more))
        frame: Chain = ctx.chain if site is None else (*ctx.chain, (closure.label, self.lines.position(site)[0]))
        memo_key = (id(closure), tuple(params), vararg if func.vararg else None, ctx.readonly, ctx.mode, ctx.function)
        hit = self.memo.get(memo_key)
        if hit is not None:
            returns, events = hit
            for pos, severity, code, message, suggestion, suffix in events:
                # The suffix starts with the frame of the memoised call; this call's frame replaces it.
                chain = frame + suffix[1:] if site is not None else ctx.chain + suffix
                for recorder in self.recorders:
                    recorder.events.append((pos, severity, code, message, suggestion, chain[recorder.base :]))
                self._site(pos, severity, code, message, suggestion, chain, ctx.function)
            return returns
        if id(func) in self.active or len(self.active) >= _MAX_DEPTH:
            return [UNKNOWN]
        self.active.add(id(func))
        scope = Scope(closure.scope)
        for name, val in zip(func.params, params, strict=True):
            scope.vars[name] = val
        if func.vararg:
            scope.vars["..."] = vararg
            scope.vars.setdefault("arg", vararg)  # Lua 5.1's compatibility table of the extra arguments
        inner = Ctx(readonly=ctx.readonly, function=ctx.function, mode=ctx.mode, chain=frame)
        recorder = _Recorder(base=len(ctx.chain))
        self.recorders.append(recorder)
        try:
            self.block(func.body, scope, inner)
        finally:
            self.recorders.pop()
            self.active.discard(id(func))
        returns = inner.returns or [NIL]
        self.memo[memo_key] = (returns, recorder.events)
        return returns

    def register(self, node: Call, args: list[Val], ctx: Ctx) -> None:
        """redis.register_function('name', fn) or the table form {function_name=, callback=, flags=}."""
        name = args[0].literal if args and args[0].literal is not None else "?"
        callback = args[1] if len(args) > 1 else UNKNOWN
        flags: set[str] = set()
        if args and args[0].kind == "table" and args[0].tab is not None:
            tab = args[0].tab
            function_name = tab.field("function_name")
            name = function_name.literal if function_name is not None and function_name.literal else "?"
            callback = tab.field("callback") or UNKNOWN
            flag_table = tab.field("flags")
            if flag_table is not None and flag_table.tab is not None:
                flags.update(v.literal for v in flag_table.tab.items if v.literal is not None)
        if callback.closure is None:
            self.escape(callback)
            return
        func = callback.closure.func
        keys_name = func.params[0] if func.params else "keys"
        args_name = func.params[1] if len(func.params) > 1 else "args"
        keys = Val("table", keys_name, tab=Tab(), source="keys")
        argv = Val("table", args_name, tab=Tab(), source="args")
        mode = "node" if "allow-cross-slot-keys" in flags else "slot"
        fctx = Ctx(readonly="no-writes" in flags, function=name, mode=mode)
        self.invoke(callback.closure, [keys, argv], None, fctx, None)

    # ------------------------------------------------------------------ redis.call
    def redis_call(self, node: Call, arg_nodes: list[Node], args: list[Val], scope: Scope, ctx: Ctx) -> Val:
        if not args:
            return Val("reply", "a reply")
        open_tail = _multi(arg_nodes[-1])
        tail = self.expansion(arg_nodes[-1], args[-1], scope) if open_tail else None
        fixed = args[:-1] if open_tail else args
        if tail is not None and tail.tab is not None and tail.tab.exact:
            fixed = [*fixed, *tail.tab.items]  # unpack of a table known in full: plain arguments
            tail = None
        command = args[0].literal if args[0].kind == "literal" else None
        if command is None or not fixed:
            self.report(
                _start(arg_nodes[0]),
                WARNING,
                "dynamic-command",
                f"the command name is not a literal ({self.describe(args[0])}): its keys and write flag "
                "cannot be checked",
                "call each command with a literal name, e.g. redis.call('GET', KEYS[1])",
                ctx,
            )
            return Val("reply", "a command's reply")
        sub = fixed[1].literal if len(fixed) > 1 else None
        spec = self.specs.lookup(command, sub)
        upper = command.upper()
        reply_detail = f"the reply of redis.call('{upper}')"
        local = command.lower() in ENUMERATING
        reply = Val("reply", reply_detail, local_only=local)
        if spec is None:
            self.report(
                _start(arg_nodes[0]),
                WARNING,
                "unknown-command",
                f"'{command}' is not in the command table ({self.specs.source or 'key specs'})",
                "check the spelling; for a module's command, refresh the table from a node that has "
                "the module (refresh_keyspecs)",
                ctx,
            )
            return reply
        if "noscript" in spec.flags:
            self.report(
                _start(arg_nodes[0]),
                ERROR,
                "noscript-command",
                f"{upper} is not allowed from scripts ('This Redis command is not allowed from script')",
                "do it from the client, outside the script",
                ctx,
            )
        if spec.writes and ctx.readonly:
            what = (
                f"function '{ctx.function}' is registered with flags no-writes"
                if ctx.function
                else "the script has '#!lua flags=no-writes'"
            )
            self.report(
                _start(node),
                ERROR,
                "write-in-readonly",
                f"{upper} writes but {what}: Redis fails with 'Write commands are not allowed from read-only scripts'",
                "drop the no-writes flag (the script then cannot run with EVALSHA_RO/FCALL_RO or on "
                "replicas), or move the write to another script",
                ctx,
            )
        if local:
            self.enumeration(upper, fixed, arg_nodes, ctx)

        if tail is not None and tail.tab is not None and tail.tab.cycle and not tail.tab.more:
            # A repeating sequence (pairs appended in a loop): lay two rounds out as plain arguments.
            fixed = [*fixed, *tail.tab.items, *tail.tab.cycle, *tail.tab.cycle]
            tail = None

        def literal_at(i: int) -> str | None:
            return fixed[i].literal if 0 <= i < len(fixed) and fixed[i].kind in ("literal", "number") else None

        positions, tail_keys = key_positions(spec, len(fixed), literal_at, tail is not None)
        spread = tail if tail_keys else None  # keys from unpack(...): as many as the table holds
        many = spread is not None or len(positions) > 1
        for p in positions:
            self.check_key(upper, p, fixed[p], arg_nodes[min(p, len(arg_nodes) - 1)], ctx, many)
        if spread is not None:
            self.check_key(upper, len(fixed), (spread.tab or Tab()).elem() or UNKNOWN, arg_nodes[-1], ctx, many)
        return reply

    def enumeration(self, command: str, fixed: list[Val], arg_nodes: list[Node], ctx: Ctx) -> None:
        pattern: Val | None = None
        if command == "KEYS" and len(fixed) > 1:
            pattern = fixed[1]
        elif command == "SCAN":
            for i in range(2, len(fixed) - 1):
                if fixed[i].kind == "literal" and (fixed[i].literal or "").upper() == "MATCH":
                    pattern = fixed[i + 1]
        if pattern is not None and all(self.judge.in_declared_slot(self.shape(alt)) for alt in alternatives(pattern)):
            return  # every name it can match carries the declared keys' tag: all in this slot
        self.report(
            _start(arg_nodes[0]),
            WARNING,
            "enumeration",
            f"{command} in a cluster sees only the keys of the node the script runs on: it never fails, "
            "it silently misses the keys other nodes hold",
            "keep the names to enumerate in a set (or list, sorted set) passed in KEYS; or enumerate from "
            "the client on every primary; or match only names that carry the declared keys' hash tag",
            ctx,
        )

    def check_key(self, command: str, position: int, val: Val, node: Node, ctx: Ctx, many: bool) -> None:
        """`many`: the call takes more than one key (a mixed-slot call fails even on one node)."""
        worst: Verdict | None = None
        for alt in alternatives(val):
            shape = self.shape(alt)
            verdict = self.judge.verdict(
                command, position, alt, shape, self.describe(alt), ctx.mode, ctx.function, many
            )
            if verdict is not None and (worst is None or verdict.severity.rank > worst.severity.rank):
                worst = verdict
            fact = slot_fact(self.shape(alt)) if alt.kind != "key" else None
            if fact is not None and fact.keys_index > 0:
                self.keys.built_from.add(fact.keys_index)
            if fact is not None and fact.blocker_first and fact.blocker.startswith("ARGV["):
                self.keys.argv_prefixes.add(fact.blocker)
        if worst is not None:
            self.report(_start(node), worst.severity, worst.code, worst.message, worst.suggestion, ctx)


def _with_metatable(obj: Val, meta: Val) -> Val:
    """setmetatable(t, mt): t answers with mt.__index's fields (the class idiom) besides its own."""
    if obj.kind != "table" or obj.tab is None or meta.kind != "table" or meta.tab is None:
        return obj
    # Tables are values here, so `M.__index = M` holds M as it was then: M's own fields, as they are
    # now, are the methods of that idiom; an __index table of other methods adds its own.
    index = meta.tab.field("__index")
    methods = list(meta.tab.fields)
    if index is not None and index.kind == "table" and index.tab is not None:
        methods += index.tab.fields
    tab = obj.tab
    for name, val in methods:
        if name != "__index" and tab.field(name) is None:
            tab = tab.with_field(name, val)
    return replace(obj, tab=tab)


def _via(chains: list[Chain]) -> str:
    """[reached via f() called at line 30 → g() called at line 12; ...]"""
    shown = [" → ".join(f"{name}() called at line {line}" for name, line in chain) for chain in chains[:_MAX_CHAINS]]
    more = f"; and {len(chains) - _MAX_CHAINS} more call chain(s)" if len(chains) > _MAX_CHAINS else ""
    return f" [reached via {'; '.join(shown)}{more}]"


def _multi(node: Node) -> bool:
    """An expression that may stand for several values at the end of a list."""
    return isinstance(node, Call) or (isinstance(node, Const) and node.kind == "...")


def _is_append(key: Node, table: Node) -> bool:
    """`t[#t + 1]`: the next free position."""
    return (
        isinstance(key, BinOp)
        and key.op == "+"
        and isinstance(key.left, UnOp)
        and key.left.op == "#"
        and _same_ref(key.left.operand, table)
        and isinstance(key.right, Const)
        and key.right.text == "1"
    )


def _same_ref(a: Node, b: Node) -> bool:
    if isinstance(a, Name) and isinstance(b, Name):
        return a.name == b.name
    if isinstance(a, Index) and isinstance(b, Index) and isinstance(a.key, Str) and isinstance(b.key, Str):
        return a.key.value == b.key.value and _same_ref(a.obj, b.obj)
    return False


def _vararg(scope: Scope) -> Val:
    owner = scope.find("...")
    return owner.vars["..."] if owner else Val("table", "...", tab=Tab(more=UNKNOWN))


def _start(node: Node) -> int:
    """Where an expression starts in the source (a call's position is its opening parenthesis)."""
    while True:
        if isinstance(node, Call):
            node = node.func
        elif isinstance(node, Index):
            node = node.obj
        elif isinstance(node, BinOp):
            node = node.left
        else:
            return node.pos

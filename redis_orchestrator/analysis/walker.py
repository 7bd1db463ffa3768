"""The AST walk: follow what each redis.call argument is, and what each call may do.

This layer runs the statements: scopes, assignment, if/else, loops, return / break / error, and the
helpers handed to code the walk cannot follow. Below it, calls.py judges the calls, library.py models
the libraries, expressions.py gives each expression its value (state.py lists the layers).

Values (values.Val) carry their origin and, for strings, their shape, from which their slot follows
(keyslots.py judges each key argument). The walk is flow-aware: after an if/else a variable is one
of what the branches that go on left in it (a branch that returns or errors leaves nothing); after a
loop, what it held before or after a turn. Tables keep their elements in order where that is known
(a loop appending a key and a value on each turn makes a repeating pair, so `unpack(t)` to MSETNX
puts the keys where MSETNX reads keys).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from redis_orchestrator.analysis.calls import Calls
from redis_orchestrator.analysis.expressions import named
from redis_orchestrator.analysis.findings import ERROR, Finding
from redis_orchestrator.analysis.keyslots import Decision
from redis_orchestrator.analysis.state import Ctx
from redis_orchestrator.analysis.syntax import (
    Assign,
    BinOp,
    Break,
    Call,
    CallStat,
    Chunk,
    Const,
    Do,
    FuncStat,
    GenFor,
    If,
    Index,
    Local,
    Name,
    Node,
    NumFor,
    Repeat,
    Return,
    Str,
    UnOp,
    While,
)
from redis_orchestrator.analysis.values import NIL, NUMBER, UNKNOWN, Closure, Hole, Scope, Val, union


class Walker(Calls):
    """Findings carry no file or script name: the Analyzer caches them by content and fills those in."""

    # ------------------------------------------------------------------ entry
    def run(self, chunk: Chunk) -> list[tuple[Finding, Decision | None]]:
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
                scope.vars[name] = named(val, name)
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
                tab = tab.with_field(key.literal, named(val, key.literal))
            elif key.kind == "number" and key.literal is not None and key.literal.isdigit():
                tab = tab.set_at(int(key.literal), val)
            elif _is_append(target.key, target.obj):
                tab = tab.appended(val)
            else:
                tab = tab.unordered(val)
            self.rebind(target.obj, replace(obj, tab=tab), scope, ctx)

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

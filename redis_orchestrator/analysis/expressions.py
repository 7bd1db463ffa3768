"""The value of each expression: names and globals, KEYS / ARGV and their elements, indexing,
concatenation, table constructors, multiple values, and how a value reads in a message.

Values (values.Val) carry their origin and, for strings, their shape, from which their slot follows.
A call inside an expression is evaluated by the calls layer above (`self.call`).
"""

from __future__ import annotations

from dataclasses import replace

from redis_orchestrator.analysis.findings import ERROR, WARNING
from redis_orchestrator.analysis.state import Ctx, WalkState
from redis_orchestrator.analysis.syntax import (
    BinOp,
    Call,
    Const,
    Function,
    Index,
    Name,
    Node,
    Paren,
    Str,
    Table,
    UnOp,
)
from redis_orchestrator.analysis.values import (
    NIL,
    NUMBER,
    UNKNOWN,
    Closure,
    Hole,
    Lit,
    Pat,
    Scope,
    Shape,
    Tab,
    Val,
    alternatives,
    concat,
    render,
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


def named(val: Val, name: str) -> Val:
    """An anonymous function stored under a name is called by that name in call chains."""
    closure = val.closure
    if closure is None or closure.name or closure.func.name != "function":
        return val
    return replace(val, closure=Closure(closure.func, closure.scope, name))


def may_expand(node: Node) -> bool:
    """An expression that may stand for several values at the end of a list."""
    return isinstance(node, Call) or (isinstance(node, Const) and node.kind == "...")


def vararg(scope: Scope) -> Val:
    owner = scope.find("...")
    return owner.vars["..."] if owner else Val("table", "...", tab=Tab(more=UNKNOWN))


class Expressions(WalkState):
    def values(self, exprs: list[Node], scope: Scope, ctx: Ctx, wanted: int) -> list[Val]:
        """`wanted` values from an expression list (the last one may expand to several)."""
        vals = [self.expr(e, scope, ctx) for e in exprs]
        if len(vals) < wanted and exprs and may_expand(exprs[-1]):
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
            return self.as_sequence(vararg(scope))
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
            return vararg(scope)
        return UNKNOWN

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

    def lookup(self, node: Name, scope: Scope, ctx: Ctx | None) -> Val:
        owner = scope.find(node.name)
        if owner is not None:
            return owner.vars[node.name]
        name = node.name
        if name in self.globals:
            return self.globals[name]
        known = FUNCTION_GLOBALS if self.library else SCRIPT_GLOBALS
        if name == "server":
            # Valkey >= 8's alias of `redis`: its calls are checked all the same.
            if ctx is not None:
                self.server_specific(node.pos, name, ctx)
            return Val("redis")
        if name == "os" and ctx is not None:
            self.server_specific(node.pos, name, ctx)
        if name == "KEYS":
            self.keys.reads_keys = True
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

    def server_specific(self, pos: int, name: str, ctx: Ctx) -> None:
        """A global that only some servers define (REDIS_FACTS.md, "Across versions")."""
        if "redis" not in self.servers:
            return
        if name == "server":
            self.report(
                pos,
                ERROR,
                "portability",
                "'server' is Valkey's alias of 'redis' (Valkey >= 8): Redis has no such global and fails the "
                "script with \"Script attempted to access nonexistent global variable 'server'\": this script "
                "runs on Valkey >= 8 only",
                "write redis.call / redis.pcall, which every server has; or, if these scripts only ever run on "
                "Valkey, say so: check --servers valkey",
                ctx,
            )
        else:
            self.report(
                pos,
                WARNING,
                "portability",
                "'os' (os.clock) exists on Redis >= 7.4 and Valkey 9.1, not on Redis 7.0 (seen on 7.0.15: "
                "\"Script attempted to access nonexistent global variable 'os'\"): this script runs on those "
                "servers only",
                "measure time with redis.call('TIME'), which every server has (frozen at the script's start on "
                "Redis >= 7.4 and Valkey 9.1)",
                ctx,
            )

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
        shape: Shape = (Pat(pattern, ref),) if pattern is not None else (Hole(ref, ref=ref),)
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
                if number is None and obj.source.startswith("ARGV[") and key.kind == "literal" and key.literal:
                    return self.argv_val(f"{obj.source}.{key.literal}")  # cjson.decode(ARGV[1]).queueKey
                if number is None:
                    what = f"{obj.source}[i]" if obj.source in ("ARGV", "args") else f"an element of {obj.source}"
                    return Val("argv", what, shape=(Hole(what, ref=f"{obj.source}[i]"),))
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
                part = f"a part of {obj.detail}"
                return Val("argv", part, shape=(Hole(part, ref=f"{obj.detail}[i]"),))
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
                return self.element(vararg(scope))
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
        if node.items and may_expand(node.items[-1]):
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

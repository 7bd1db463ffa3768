"""The AST walk: follow where each redis.call argument comes from, and what each call may do.

Values are abstracted to their origin (`Val.kind`): a declared key (`key`), ARGV / a function's args
(`argv`), a string literal, a concatenation, string.format, a command's reply, a helper's parameter,
or `unknown`. Tables carry the origin of their elements, so `KEYS`, a function's `keys` parameter,
`{KEYS[1], KEYS[2]}` and a table filled from KEYS in a loop all yield `key` when indexed, unpacked
or iterated with ipairs/pairs. Aliases (`local call = redis.call`), `pcall(redis.call, ...)` and
local helper functions (analysed per call site with the origins of their arguments) are followed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .findings import ERROR, WARNING, Finding, Severity
from .keyspecs import KeySpecs, key_positions
from .lexer import LineMap
from .syntax import (
    Assign,
    BinOp,
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
_MAX_DEPTH = 8


@dataclass(frozen=True, eq=False)
class Closure:
    func: Function
    scope: Scope


@dataclass(frozen=True)
class Val:
    kind: str
    detail: str = ""
    literal: str | None = None
    elem: Val | None = None  # for tables: what indexing / iterating yields
    closure: Closure | None = None


UNKNOWN = Val("unknown")
NIL = Val("nil")
KEY = Val("key", "KEYS[i]")
ARGV_ELEM = Val("argv", "ARGV")
KEYS_TABLE = Val("table", "KEYS", elem=KEY)
ARGV_TABLE = Val("table", "ARGV", elem=ARGV_ELEM)


def join(a: Val, b: Val) -> Val:
    """What a variable holds when it may hold either: the less safe of the two."""
    if a == b:
        return a
    if a.kind == "table" and b.kind == "table":
        if a.elem is None:
            return b
        if b.elem is None:
            return a
        return replace(a, elem=join(a.elem, b.elem))
    if a.kind == "key":
        return b
    return a


@dataclass(eq=False)
class Scope:
    parent: Scope | None
    vars: dict[str, tuple[Val, int]] = field(default_factory=dict)  # name -> (value, branch depth)

    def find(self, name: str) -> Scope | None:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.vars:
                return scope
            scope = scope.parent
        return None


@dataclass
class Ctx:
    readonly: bool
    function: str  # "" for a script body, else the registered function's name
    depth: int = 0  # branch depth (if/loop bodies)
    returns: Val | None = None
    helper: str = ""  # set while analysing a helper's body for a call site: "helper() called at 12"


class Walker:
    """Findings carry no file or script name: the Analyzer caches them by content and fills those in."""

    def __init__(self, specs: KeySpecs, lines: LineMap, *, library: bool, readonly: bool) -> None:
        self.specs = specs
        self.lines = lines
        self.library = library
        self.readonly = readonly
        self.findings: dict[tuple[int, str], Finding] = {}
        self.globals: dict[str, Val] = {}
        self.closures: list[Closure] = []
        self.analysed: set[int] = set()
        self.memo: dict[tuple[int, tuple[str, ...], bool], Val] = {}
        self.active: set[int] = set()
        self.call_depth = 0

    # ------------------------------------------------------------------ findings
    def report(self, pos: int, severity: Severity, code: str, message: str, suggestion: str, ctx: Ctx) -> None:
        if (pos, code) in self.findings:
            return
        line, column = self.lines.position(pos)
        where = f"in function '{ctx.function}': " if ctx.function else ""
        if ctx.helper:
            where += f"({ctx.helper}) "
        self.findings[(pos, code)] = Finding("", "", line, column, severity, code, where + message, suggestion)

    # ------------------------------------------------------------------ entry
    def run(self, chunk: Chunk) -> list[Finding]:
        root = Scope(None)
        ctx = Ctx(readonly=self.readonly and not self.library, function="")
        self.block(chunk.body, root, ctx)
        # Helpers never called from analysed code: check them with unknown parameters.
        index = 0
        while index < len(self.closures):
            closure = self.closures[index]
            index += 1
            if id(closure.func) in self.analysed:
                continue
            params = [Val("param", f"parameter '{p}' of {closure.func.name}()") for p in closure.func.params]
            self.invoke(closure, params, None, Ctx(readonly=False, function=""), closure.func.pos)
        return sorted(self.findings.values(), key=lambda f: (f.line, f.column, f.code))

    # ------------------------------------------------------------------ statements
    def block(self, body: list[Node], scope: Scope, ctx: Ctx) -> None:
        for stat in body:
            self.statement(stat, scope, ctx)

    def nested(self, body: list[Node], scope: Scope, ctx: Ctx, bind: dict[str, Val] | None = None) -> None:
        inner = Scope(scope)
        ctx.depth += 1
        if bind:
            for name, val in bind.items():
                inner.vars[name] = (val, ctx.depth)
        self.block(body, inner, ctx)
        ctx.depth -= 1

    def statement(self, stat: Node, scope: Scope, ctx: Ctx) -> None:
        if isinstance(stat, CallStat):
            self.call(stat.call, scope, ctx)
        elif isinstance(stat, Local):
            vals = self.values(stat.values, scope, ctx, len(stat.names))
            for name, val in zip(stat.names, vals, strict=True):
                scope.vars[name] = (val, ctx.depth)
        elif isinstance(stat, Assign):
            vals = self.values(stat.values, scope, ctx, len(stat.targets))
            for target, val in zip(stat.targets, vals, strict=True):
                self.assign(target, val, scope, ctx)
        elif isinstance(stat, If):
            for cond, body in stat.clauses:
                self.expr(cond, scope, ctx)
                self.nested(body, scope, ctx)
            if stat.orelse is not None:
                self.nested(stat.orelse, scope, ctx)
        elif isinstance(stat, NumFor):
            for e in (stat.start, stat.stop, stat.step):
                if e is not None:
                    self.expr(e, scope, ctx)
            self.nested(stat.body, scope, ctx, {stat.var: Val("number")})
        elif isinstance(stat, GenFor):
            self.nested(stat.body, scope, ctx, self.iteration(stat, scope, ctx))
        elif isinstance(stat, While):
            self.expr(stat.cond, scope, ctx)
            self.nested(stat.body, scope, ctx)
        elif isinstance(stat, Repeat):
            inner = Scope(scope)
            ctx.depth += 1
            self.block(stat.body, inner, ctx)
            self.expr(stat.cond, inner, ctx)
            ctx.depth -= 1
        elif isinstance(stat, Do):
            self.block(stat.body, Scope(scope), ctx)
        elif isinstance(stat, FuncStat):
            if stat.is_local and isinstance(stat.target, Name):
                closure = Closure(stat.func, scope)
                scope.vars[stat.target.name] = (Val("function", stat.func.name, closure=closure), ctx.depth)
                self.closures.append(closure)
            else:
                val = self.expr(stat.func, scope, ctx)
                self.assign(stat.target, val, scope, ctx)
        elif isinstance(stat, Return):
            vals = [self.expr(v, scope, ctx) for v in stat.values]
            first = vals[0] if vals else NIL
            ctx.returns = first if ctx.returns is None else join(ctx.returns, first)

    def assign(self, target: Node, val: Val, scope: Scope, ctx: Ctx) -> None:
        if isinstance(target, Name):
            owner = scope.find(target.name)
            if owner is not None:
                old, depth = owner.vars[target.name]
                owner.vars[target.name] = (val if ctx.depth <= depth else join(old, val), depth)
                return
            self.global_write(target.name, target.pos, ctx)
            self.globals[target.name] = val
            return
        if isinstance(target, Index):
            obj = self.expr(target.obj, scope, ctx)
            self.expr(target.key, scope, ctx)
            if obj.kind == "table" and isinstance(target.obj, Name):
                self.store_element(target.obj.name, obj, val, scope)

    def store_element(self, name: str, table: Val, val: Val, scope: Scope) -> None:
        owner = scope.find(name)
        if owner is None or name in ("KEYS", "ARGV"):
            return
        merged = replace(table, elem=val if table.elem is None else join(table.elem, val))
        owner.vars[name] = (merged, owner.vars[name][1])

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
        vals = [self.expr(e, scope, ctx) for e in stat.exprs]
        first = stat.exprs[0] if stat.exprs else None
        names = stat.names
        bound = {n: UNKNOWN for n in names}
        if isinstance(first, Call) and first.args:
            callee = self.expr_quiet(first.func, scope)
            source = self.expr_quiet(first.args[0], scope)
            if callee.kind == "builtin" and callee.literal in ("ipairs", "pairs"):
                bound[names[0]] = Val("number") if callee.literal == "ipairs" else UNKNOWN
                if len(names) > 1:
                    bound[names[1]] = source.elem or UNKNOWN
            elif callee.kind == "libfn" and callee.literal == "string.gmatch":
                bound = {n: replace(source, detail=f"a piece of {source.detail or source.kind}") for n in names}
        elif vals and vals[0].kind == "builtin" and vals[0].literal == "next" and len(vals) > 1:
            bound[names[0]] = UNKNOWN
            if len(names) > 1:
                bound[names[1]] = vals[1].elem or UNKNOWN
        return bound

    # ------------------------------------------------------------------ expressions
    def values(self, exprs: list[Node], scope: Scope, ctx: Ctx, wanted: int) -> list[Val]:
        """`wanted` values from an expression list (the last one may expand to several)."""
        vals = [self.expr(e, scope, ctx) for e in exprs]
        if len(vals) < wanted and exprs and isinstance(exprs[-1], (Call, Const)):
            tail = self.expansion(exprs[-1], vals[-1], scope)
            vals.extend([tail] * (wanted - len(vals)))
        vals.extend([NIL] * (wanted - len(vals)))
        return vals[:wanted]

    def expansion(self, expr: Node, val: Val, scope: Scope) -> Val:
        """What each of the several values of a multi-value expression is."""
        if isinstance(expr, Call):
            callee = self.expr_quiet(expr.func, scope)
            if callee.literal in ("unpack", "table.unpack") and expr.args:
                return self.expr_quiet(expr.args[0], scope).elem or UNKNOWN
        if isinstance(expr, Const) and expr.kind == "...":
            return _vararg(scope)
        return val

    def expr_quiet(self, node: Node, scope: Scope) -> Val:
        """The origin of an already-checked expression (names and field reads only: no findings)."""
        if isinstance(node, Name):
            return self.lookup(node, scope, None)
        if isinstance(node, Index):
            obj = self.expr_quiet(node.obj, scope)
            return self.index(obj, node.key.value if isinstance(node.key, Str) else None)
        if isinstance(node, Str):
            return Val("literal", literal=node.value)
        if isinstance(node, Paren):
            return self.expr_quiet(node.expr, scope)
        return UNKNOWN

    def lookup(self, node: Name, scope: Scope, ctx: Ctx | None) -> Val:
        owner = scope.find(node.name)
        if owner is not None:
            return owner.vars[node.name][0]
        name = node.name
        if name in self.globals:
            return self.globals[name]
        known = FUNCTION_GLOBALS if self.library else SCRIPT_GLOBALS
        if name == "KEYS":
            val = KEYS_TABLE
        elif name == "ARGV":
            val = ARGV_TABLE
        elif name == "redis":
            val = Val("redis")
        elif name in ("string", "table", "math", "cjson", "cmsgpack", "bit", "struct", "os"):
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

    def index(self, obj: Val, key: str | None) -> Val:
        if obj.kind == "table":
            return obj.elem or UNKNOWN
        if obj.kind == "reply":
            return replace(obj, detail=obj.detail)
        if obj.kind == "redis" and key is not None:
            return Val("redis-call" if key in ("call", "pcall") else "redis-fn", literal=key)
        if obj.kind == "lib" and key is not None:
            return Val("libfn", literal=f"{obj.literal}.{key}")
        if obj.kind in ("argv", "param"):
            return obj
        return UNKNOWN

    def expr(self, node: Node, scope: Scope, ctx: Ctx) -> Val:
        if isinstance(node, Name):
            return self.lookup(node, scope, ctx)
        if isinstance(node, Str):
            return Val("literal", literal=node.value)
        if isinstance(node, Index):
            obj = self.expr(node.obj, scope, ctx)
            key = self.expr(node.key, scope, ctx)
            val = self.index(obj, key.literal if isinstance(node.key, Str) else None)
            if val.kind == "key" and obj.detail:
                detail = f"{obj.detail}[{key.literal}]" if key.literal is not None else val.detail
                return replace(val, detail=detail)
            return val
        if isinstance(node, Call):
            return self.call(node, scope, ctx)
        if isinstance(node, Const):
            if node.kind == "number":
                return Val("number", literal=node.text)
            if node.kind == "...":
                return _vararg(scope)
            return NIL if node.kind == "nil" else Val("bool")
        if isinstance(node, BinOp):
            left = self.expr(node.left, scope, ctx)
            right = self.expr(node.right, scope, ctx)
            if node.op == "..":
                return Val("concat", "built by concatenation")
            if node.op == "and":
                return right
            if node.op == "or":
                return left if right.kind in ("nil", "error") else join(left, right)
            return Val("number") if node.op in "+-*/%^" else Val("bool")
        if isinstance(node, UnOp):
            self.expr(node.operand, scope, ctx)
            return Val("number") if node.op != "not" else Val("bool")
        if isinstance(node, Paren):
            return self.expr(node.expr, scope, ctx)
        if isinstance(node, Function):
            closure = Closure(node, scope)
            self.closures.append(closure)
            return Val("function", node.name, closure=closure)
        if isinstance(node, Table):
            vals = [self.expr(e, scope, ctx) for e in node.items]
            for k, v in node.keyed:
                self.expr(k, scope, ctx)
                vals.append(self.expr(v, scope, ctx))
            elem: Val | None = None
            for item in vals:
                elem = item if elem is None else join(elem, item)
            return Val("table", "a table", elem=elem)
        return UNKNOWN

    # ------------------------------------------------------------------ calls
    def call(self, node: Call, scope: Scope, ctx: Ctx) -> Val:
        callee = self.expr(node.func, scope, ctx)
        args = [self.expr(a, scope, ctx) for a in node.args]
        if node.method is not None:
            if node.method == "format":
                return Val("format", "built with string.format")
            return Val("derived", f"derived with :{node.method}()")
        if callee.kind == "redis-call":
            return self.redis_call(node, node.args, args, scope, ctx)
        if callee.kind == "builtin" and callee.literal == "pcall" and args and args[0].kind == "redis-call":
            return self.redis_call(node, node.args[1:], args[1:], scope, ctx)
        if callee.kind == "redis-fn" and callee.literal == "register_function":
            self.register(node, args, ctx)
            return NIL
        if callee.kind == "libfn":
            name = callee.literal or ""
            if name == "string.format":
                return Val("format", "built with string.format")
            if name in ("table.concat", "string.rep"):
                return Val("concat", f"built with {name}")
            if name == "table.insert" and args and isinstance(node.args[0], Name):
                self.store_element(node.args[0].name, args[0], args[-1], scope)
            if name in ("string.lower", "string.upper", "string.sub", "string.gsub"):
                return Val("derived", f"derived with {name}()")
            return UNKNOWN
        if callee.kind == "builtin":
            if callee.literal == "error":
                return Val("error")
            if callee.literal == "tostring" and args:
                return args[0] if args[0].kind in ("key", "argv", "reply", "param", "literal") else UNKNOWN
            if callee.literal == "unpack" and args:
                return args[0].elem or UNKNOWN
            if callee.literal in ("ipairs", "pairs", "next"):
                return callee
            return UNKNOWN
        if callee.kind == "function" and callee.closure is not None:
            tail = (
                self.expansion(node.args[-1], args[-1], scope)
                if node.args and isinstance(node.args[-1], (Call, Const))
                else None
            )
            return self.invoke(callee.closure, args, tail, ctx, node.pos)
        return UNKNOWN

    def invoke(self, closure: Closure, args: list[Val], tail: Val | None, ctx: Ctx, site: int) -> Val:
        func = closure.func
        self.analysed.add(id(func))
        params = list(args[: len(func.params)])
        params.extend([tail or NIL] * (len(func.params) - len(params)))
        memo_key = (
            id(func),
            tuple(f"{v.kind}/{v.elem.kind if v.elem else ''}" for v in params),
            ctx.readonly,
        )
        if memo_key in self.memo:
            return self.memo[memo_key]
        if id(func) in self.active or self.call_depth >= _MAX_DEPTH:
            return UNKNOWN
        self.active.add(id(func))
        self.call_depth += 1
        scope = Scope(closure.scope)
        for name, val in zip(func.params, params, strict=True):
            scope.vars[name] = (val, 0)
        if func.vararg:
            scope.vars["..."] = (tail or UNKNOWN, 0)
        helper = ctx.helper if site == func.pos else f"{func.name}() called at line {self.lines.position(site)[0]}"
        inner = Ctx(readonly=ctx.readonly, function=ctx.function, helper=helper)
        self.block(func.body, scope, inner)
        self.call_depth -= 1
        self.active.discard(id(func))
        result = inner.returns or NIL
        self.memo[memo_key] = result
        return result

    def register(self, node: Call, args: list[Val], ctx: Ctx) -> None:
        """redis.register_function('name', fn) or the table form {function_name=, callback=, flags=}."""
        name = args[0].literal if args and args[0].literal is not None else "?"
        callback = args[1] if len(args) > 1 else UNKNOWN
        flags: set[str] = set()
        if node.args and isinstance(node.args[0], Table):
            table = node.args[0]
            callback = UNKNOWN
            for key, value in table.keyed:
                field_name = key.value if isinstance(key, Str) else ""
                if field_name == "function_name" and isinstance(value, Str):
                    name = value.value
                elif field_name == "callback":
                    if isinstance(value, Function):
                        callback = self._closure_of(value)
                    elif isinstance(value, Name):
                        callback = self._closure_named(value.name)
                    else:
                        callback = self.expr_quiet(value, Scope(None))
                elif field_name == "flags" and isinstance(value, Table):
                    flags.update(v.value for v in value.items if isinstance(v, Str))
        if callback.closure is None:
            return
        func = callback.closure.func
        keys = Val("table", func.params[0] if func.params else "keys", elem=Val("key", "keys[i]"))
        args_name = func.params[1] if len(func.params) > 1 else "args"
        argv = Val("table", args_name, elem=Val("argv", args_name))
        fctx = Ctx(readonly="no-writes" in flags, function=name)
        self.invoke(callback.closure, [keys, argv], None, fctx, func.pos)

    def _closure_of(self, func: Function) -> Val:
        for c in reversed(self.closures):
            if c.func is func:
                return Val("function", func.name, closure=c)
        return UNKNOWN

    def _closure_named(self, name: str) -> Val:
        for c in reversed(self.closures):
            if c.func.name == name:
                return Val("function", name, closure=c)
        return UNKNOWN

    def redis_call(self, node: Call, arg_nodes: list[Node], args: list[Val], scope: Scope, ctx: Ctx) -> Val:
        if not args:
            return Val("reply")
        open_tail = isinstance(arg_nodes[-1], (Call, Const)) and not (
            isinstance(arg_nodes[-1], Const) and arg_nodes[-1].kind != "..."
        )
        tail = self.expansion(arg_nodes[-1], args[-1], scope) if open_tail else None
        fixed = args[:-1] if open_tail else args
        command = args[0].literal
        if command is None or not fixed:
            self.report(
                arg_nodes[0].pos,
                WARNING,
                "dynamic-command",
                f"the command name is not a literal ({args[0].detail or args[0].kind}): its keys and "
                "write flag cannot be checked",
                "call each command with a literal name, e.g. redis.call('GET', KEYS[1])",
                ctx,
            )
            return Val("reply", "a command's reply")
        sub = fixed[1].literal if len(fixed) > 1 else None
        spec = self.specs.lookup(command, sub)
        upper = command.upper()
        reply = Val("reply", f"the reply of {upper}", elem=Val("reply", f"the reply of {upper}"))
        if spec is None:
            self.report(
                arg_nodes[0].pos,
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
                arg_nodes[0].pos,
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

        def literal_at(i: int) -> str | None:
            return fixed[i].literal if 0 <= i < len(fixed) else None

        positions, tail_keys = key_positions(spec, len(fixed), literal_at, open_tail)
        for p in positions:
            self.check_key(upper, p, fixed[p], arg_nodes[p], ctx)
        if tail_keys and tail is not None:
            self.check_key(upper, len(fixed), tail, arg_nodes[-1], ctx)
        return reply

    def check_key(self, command: str, position: int, val: Val, node: Node, ctx: Ctx) -> None:
        if val.kind == "key":
            return
        keys_name = "the callback's keys (first parameter)" if ctx.function else "KEYS"
        origin = _describe(val, self.library)
        severity = WARNING if val.kind == "param" else ERROR
        message = (
            f"{command} key argument #{position} {origin}, not from {keys_name}: in a cluster it fails "
            "with 'Script attempted to access a non local key' whenever it hashes to another node"
        )
        if val.kind == "reply":
            hint = (
                "keys read from a reply cannot be declared in advance: pass them in KEYS (read them with a "
                "first call), or give them and the key they come from one hash tag"
            )
        elif ctx.function:
            hint = "pass the key name in FCALL's keys and read it as keys[i] in the callback"
        else:
            hint = (
                "pass the full key name in KEYS (EVALSHA sha numkeys key...) and use KEYS[i]; build names "
                "on the client, not in the script"
            )
        if val.kind == "param":
            message += "; the helper is never called from analysed code"
        self.report(_start(node), severity, "undeclared-key", message, hint, ctx)


def _describe(val: Val, library: bool) -> str:
    kind = val.kind
    if kind == "literal":
        return f"is the string literal '{val.literal}'"
    if kind == "argv":
        return f"comes from {val.detail or ('args' if library else 'ARGV')}"
    if kind == "concat":
        return "is built by concatenation"
    if kind == "format":
        return "is built with string.format"
    if kind == "derived":
        return f"is {val.detail}"
    if kind == "number":
        return "is a number"
    if kind in ("reply", "param") or val.detail:
        return f"comes from {val.detail}"
    return "is not taken from KEYS"


def _vararg(scope: Scope) -> Val:
    owner = scope.find("...")
    return owner.vars["..."][0] if owner else UNKNOWN


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

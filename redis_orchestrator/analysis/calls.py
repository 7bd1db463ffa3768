"""Calls: which function a call reaches, the script's own functions run with the call's values, and
each redis.call / pcall judged: its command, write flag, and every key argument's slot (keyslots.py
gives the verdict per value).

Helpers (local functions, `M.f` fields, closures handed to pcall) are analysed per call with the
values of that call, memoised per distinct arguments. A finding in a helper is reported once, at its
source line, with the call chains that reach it; a helper never called is not analysed, one handed
to code the walk cannot follow is analysed once with unknown parameters (warnings only). Functions
registered with redis.register_function are analysed with the keys and flags they are registered with.
"""

from __future__ import annotations

from redis_orchestrator.analysis.expressions import may_expand
from redis_orchestrator.analysis.findings import ERROR, WARNING
from redis_orchestrator.analysis.keyslots import Verdict
from redis_orchestrator.analysis.keyspecs import key_positions
from redis_orchestrator.analysis.library import Library
from redis_orchestrator.analysis.state import Chain, Ctx, Deferred, Recorder
from redis_orchestrator.analysis.syntax import BinOp, Call, Index, Node
from redis_orchestrator.analysis.values import (
    NIL,
    UNKNOWN,
    Closure,
    Hole,
    Lit,
    Pat,
    Piece,
    Scope,
    Shape,
    Tab,
    Val,
    alternatives,
    slot_fact,
    union,
)

_MAX_DEPTH = 8
_MAX_UNROLL = 3  # levels of recursion analysed with their own arguments
# Commands that list keys: in a cluster they see only the node the script runs on.
ENUMERATING = frozenset({"scan", "keys", "randomkey"})


class Calls(Library):
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
        tail = self.expansion(arg_nodes[-1], args[-1], scope) if arg_nodes and may_expand(arg_nodes[-1]) else None
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

    def method_call(self, node: Call, obj: Val, args: list[Val], scope: Scope, ctx: Ctx) -> Val:
        method = node.method or ""
        member = self.index(obj, Val("literal", literal=method)) if obj.kind == "table" else UNKNOWN
        if member.closure is not None or member.kind == "either":
            return self.call_value(node, member, [obj, *args], [node.func, *node.args], scope, ctx)
        return self.string_call(method, obj, args)

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
            for pos, what, suffix in events:
                # The suffix starts with the frame of the memoised call; this call's frame replaces it.
                chain = frame + suffix[1:] if site is not None else ctx.chain + suffix
                for recorder in self.recorders:
                    recorder.events.append((pos, what, chain[recorder.base :]))
                self._site(pos, what, chain, ctx.function)
            return returns
        if id(func) in self.active:
            # Recursion: the running call has not finished, so this one's values cannot be known yet.
            # With arguments of its own (a child key, a parent now set) it is analysed once the
            # running call is done, a few levels deep.
            if any(p.kind != "nil" for p in params) and self.unrolled.get(id(func), 0) < _MAX_UNROLL:
                self.deferred.setdefault(id(func), []).append(Deferred(closure, args, tail, ctx, site))
            return [UNKNOWN]
        if len(self.active) >= _MAX_DEPTH:
            return [UNKNOWN]
        self.active.add(id(func))
        scope = Scope(closure.scope)
        for name, val in zip(func.params, params, strict=True):
            scope.vars[name] = val
        if func.vararg:
            scope.vars["..."] = vararg
            scope.vars.setdefault("arg", vararg)  # Lua 5.1's compatibility table of the extra arguments
        inner = Ctx(readonly=ctx.readonly, function=ctx.function, mode=ctx.mode, chain=frame)
        recorder = Recorder(base=len(ctx.chain))
        self.recorders.append(recorder)
        try:
            self.block(func.body, scope, inner)
            self.active.discard(id(func))
            self._unroll(id(func))
        finally:
            self.recorders.pop()
            self.active.discard(id(func))
        returns = inner.returns or [NIL]
        self.memo[memo_key] = (returns, recorder.events)
        return returns

    def _unroll(self, func_id: int) -> None:
        """Run the recursive calls a finished call made, with their own arguments."""
        pending = self.deferred.pop(func_id, [])
        if not pending:
            return
        self.unrolled[func_id] = self.unrolled.get(func_id, 0) + 1
        try:
            for call in pending:
                self.invoke(call.closure, call.args, call.tail, call.ctx, call.site)
        finally:
            self.unrolled[func_id] -= 1

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
        commands = alternatives(args[0])
        if len(commands) > 1 and all(c.kind == "literal" for c in commands):
            # `local cmd = up and 'INCRBY' or 'DECRBY'`: each command it may be is checked.
            return union(self.redis_call(node, arg_nodes, [c, *args[1:]], scope, ctx) for c in commands)
        open_tail = may_expand(arg_nodes[-1])
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
            pattern = self.enumeration(upper, fixed, arg_nodes, ctx)
            reply = Val("reply", reply_detail, local_only=True, shape=self.listed(pattern))

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

    def enumeration(self, command: str, fixed: list[Val], arg_nodes: list[Node], ctx: Ctx) -> Val | None:
        """The enumeration warning, unless the names matched all carry the declared keys' tag; the
        MATCH pattern, if any."""
        pattern: Val | None = None
        if command == "KEYS" and len(fixed) > 1:
            pattern = fixed[1]
        elif command == "SCAN":
            for i in range(2, len(fixed) - 1):
                if fixed[i].kind == "literal" and (fixed[i].literal or "").upper() == "MATCH":
                    pattern = fixed[i + 1]
        if pattern is not None and all(self.judge.in_declared_slot(self.shape(alt)) for alt in alternatives(pattern)):
            return pattern  # every name it can match carries the declared keys' tag: all in this slot
        self.report(
            _start(arg_nodes[0]),
            WARNING,
            "enumeration",
            f"{command} in a cluster sees only the keys of the node the script runs on: it never fails itself, "
            "it silently misses the keys other nodes hold (and the names it lists span this node's slots)",
            "keep the names to enumerate in a set (or list, sorted set) passed in KEYS; or enumerate from "
            "the client on every primary; or match only names that carry the declared keys' hash tag",
            ctx,
        )
        return pattern

    def listed(self, pattern: Val | None) -> Shape | None:
        """What the names a MATCH pattern lists look like: the pattern up to its first wildcard, then
        text read from Redis. `ARGV[1] .. '*'` lists names starting with ARGV[1]."""
        if pattern is None or len(alternatives(pattern)) != 1:
            return None
        kept: list[Piece] = []
        for piece in self.shape(pattern):
            if isinstance(piece, Hole):
                kept.append(piece)
                continue
            cut = min((i for i in (piece.text.find(c) for c in "*?[\\") if i >= 0), default=-1)
            if cut < 0:
                kept.append(piece)
                continue
            if cut:
                kept.append(Lit(piece.text[:cut]) if isinstance(piece, Lit) else Pat(piece.text[:cut], piece.origin))
            break
        if not kept:
            return None
        return (*kept, Hole("the rest of a name it listed", stored=True))

    def check_key(self, command: str, position: int, val: Val, node: Node, ctx: Ctx, many: bool) -> None:
        """`many`: the call takes more than one key (a mixed-slot call fails even on one node)."""
        worst: Verdict | None = None
        subject = ""
        for alt in alternatives(val):
            shape = self.shape(alt)
            desc = self.describe(alt)
            verdict = self.judge.verdict(command, position, alt, shape, desc, ctx.mode, ctx.function, many)
            if verdict is not None and (worst is None or verdict.severity.rank > worst.severity.rank):
                worst, subject = verdict, desc
            fact = slot_fact(shape) if alt.kind != "key" else None
            if fact is not None and fact.keys_index > 0:
                self.keys.built_from.add(fact.keys_index)
            decision = verdict.decision if verdict is not None else None
            if decision is not None and decision.kind == "argv":
                self.keys.argv.setdefault(decision.ref, decision.role)
            elif decision is not None and decision.kind == "stored":
                self.keys.stored = True
        if worst is not None:
            self.report(
                _start(node),
                worst.severity,
                worst.code,
                worst.message,
                worst.suggestion,
                ctx,
                subject=f"{command} {subject}",
                decision=worst.decision,
                fixed=worst.fixed,
            )


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

"""Models of what a script calls besides its own functions and redis.*: Lua's base functions (tostring,
unpack, select, setmetatable, error, ...), the string and table libraries, cjson / cmsgpack, math and
bit. Each returns the value the call gives as far as keys go: what it is built from, which table it
decodes, which elements it yields.

`KEYS[1]:sub(1, -5)` and the other string operations that may keep a tag are run on witnesses
(derive.py) when their arguments are literals.
"""

from __future__ import annotations

import re
from dataclasses import replace

from redis_orchestrator.analysis.derive import STRING_OPS
from redis_orchestrator.analysis.expressions import Expressions, vararg
from redis_orchestrator.analysis.state import Ctx
from redis_orchestrator.analysis.syntax import Call
from redis_orchestrator.analysis.values import (
    NIL,
    NUMBER,
    UNKNOWN,
    Hole,
    Lit,
    Scope,
    Shape,
    Tab,
    Val,
    alternatives,
    concat,
    render,
    slot_fact,
    union,
)

_FORMAT_SPEC = re.compile(r"%[-+ #0]*\d*(?:\.\d+)?([a-zA-Z%])")


class Library(Expressions):
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
            return NUMBER if args[0].literal == "#" else self.element(vararg(scope))
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

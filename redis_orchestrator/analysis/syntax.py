"""A small Lua 5.1 AST and a recursive-descent parser for it.

luaparser (ANTLR) takes ~25 ms for a 40-line script, which makes 1,000 scripts cost ~25 s; this
parser keeps only what the analysis reads and takes well under a millisecond. Syntax errors are
confirmed by lupa's real Lua 5.1 (see derive.py), so this parser only has to be right on valid code.
Positions are character offsets into the source; lexer.LineMap turns them into line:column.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis_orchestrator.analysis.lexer import LuaSyntaxError, Token, tokenize


class Node:
    __slots__ = ()
    pos: int  # character offset where the node starts (a call: its argument list)


@dataclass(slots=True, eq=False)
class Name(Node):
    name: str
    pos: int


@dataclass(slots=True, eq=False)
class Str(Node):
    value: str
    pos: int


@dataclass(slots=True, eq=False)
class Const(Node):
    kind: str  # "nil" | "true" | "false" | "number" | "..."
    pos: int
    text: str = ""


@dataclass(slots=True, eq=False)
class Index(Node):
    obj: Node
    key: Node
    pos: int


@dataclass(slots=True, eq=False)
class Call(Node):
    func: Node
    args: list[Node]
    pos: int
    method: str | None = None  # obj:method(args)


@dataclass(slots=True, eq=False)
class Function(Node):
    params: list[str]
    vararg: bool
    body: list[Node]
    pos: int
    name: str = "function"


@dataclass(slots=True, eq=False)
class Table(Node):
    items: list[Node]
    keyed: list[tuple[Node, Node]]
    pos: int


@dataclass(slots=True, eq=False)
class BinOp(Node):
    op: str
    left: Node
    right: Node
    pos: int


@dataclass(slots=True, eq=False)
class UnOp(Node):
    op: str
    operand: Node
    pos: int


@dataclass(slots=True, eq=False)
class Paren(Node):
    expr: Node
    pos: int


@dataclass(slots=True, eq=False)
class Local(Node):
    names: list[str]
    values: list[Node]
    pos: int


@dataclass(slots=True, eq=False)
class Assign(Node):
    targets: list[Node]
    values: list[Node]
    pos: int


@dataclass(slots=True, eq=False)
class CallStat(Node):
    call: Call
    pos: int


@dataclass(slots=True, eq=False)
class Do(Node):
    body: list[Node]
    pos: int


@dataclass(slots=True, eq=False)
class While(Node):
    cond: Node
    body: list[Node]
    pos: int


@dataclass(slots=True, eq=False)
class Repeat(Node):
    body: list[Node]
    cond: Node
    pos: int


@dataclass(slots=True, eq=False)
class If(Node):
    clauses: list[tuple[Node, list[Node]]]
    orelse: list[Node] | None
    pos: int


@dataclass(slots=True, eq=False)
class NumFor(Node):
    var: str
    start: Node
    stop: Node
    step: Node | None
    body: list[Node]
    pos: int


@dataclass(slots=True, eq=False)
class GenFor(Node):
    names: list[str]
    exprs: list[Node]
    body: list[Node]
    pos: int


@dataclass(slots=True, eq=False)
class FuncStat(Node):
    target: Node  # Name, or Index chain for `function a.b:c()`
    func: Function
    is_local: bool
    pos: int


@dataclass(slots=True, eq=False)
class Return(Node):
    values: list[Node]
    pos: int


@dataclass(slots=True, eq=False)
class Break(Node):
    pos: int


@dataclass(slots=True)
class Chunk:
    body: list[Node]
    names: frozenset[str] = frozenset()  # every identifier the chunk uses ("KEYS" in names: it reads KEYS)


_BINARY = {
    "or": (1, 1),
    "and": (2, 2),
    "<": (3, 3),
    ">": (3, 3),
    "<=": (3, 3),
    ">=": (3, 3),
    "~=": (3, 3),
    "==": (3, 3),
    "..": (5, 4),
    "+": (6, 6),
    "-": (6, 6),
    "*": (7, 7),
    "/": (7, 7),
    "%": (7, 7),
    "^": (10, 9),
}
_UNARY_PRIORITY = 8
_BLOCK_END = frozenset({"end", "else", "elseif", "until", "<eof>"})


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.toks = tokens
        self.i = 0

    # ------------------------------------------------------------------ helpers
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def error(self, what: str) -> LuaSyntaxError:
        tok = self.tok
        return LuaSyntaxError(f"{what} near '{tok.value}'", tok.pos)

    def check(self, value: str) -> bool:
        tok = self.toks[self.i]
        return tok.value == value and tok.kind in ("op", "kw")

    def accept(self, value: str) -> bool:
        if self.check(value):
            self.i += 1
            return True
        return False

    def expect(self, value: str) -> Token:
        tok = self.toks[self.i]
        if tok.value != value or tok.kind not in ("op", "kw"):
            raise self.error(f"'{value}' expected")
        self.i += 1
        return tok

    def at_block_end(self) -> bool:
        tok = self.toks[self.i]
        return tok.kind in ("kw", "eof") and tok.value in _BLOCK_END

    def name(self) -> str:
        tok = self.toks[self.i]
        if tok.kind != "name":
            raise self.error("<name> expected")
        self.i += 1
        return tok.value

    # ------------------------------------------------------------------ statements
    def block(self) -> list[Node]:
        body: list[Node] = []
        while not self.at_block_end():
            tok = self.toks[self.i]
            if tok.kind == "kw" and tok.value == "return":
                self.i += 1
                values: list[Node] = []
                if not (self.at_block_end() or self.check(";")):
                    values = self.exprlist()
                self.accept(";")
                body.append(Return(values, tok.pos))
                return body
            if tok.kind == "kw" and tok.value == "break":
                self.i += 1
                self.accept(";")
                body.append(Break(tok.pos))
                return body
            body.append(self.statement())
            self.accept(";")
        return body

    def statement(self) -> Node:
        tok = self.tok
        if tok.kind == "kw":
            v = tok.value
            if v == "local":
                self.i += 1
                if self.accept("function"):
                    name = self.name()
                    func = self.funcbody(tok.pos, name)
                    return FuncStat(Name(name, tok.pos), func, True, tok.pos)
                names = [self.name()]
                while self.accept(","):
                    names.append(self.name())
                values = self.exprlist() if self.accept("=") else []
                return Local(names, values, tok.pos)
            if v == "if":
                self.i += 1
                clauses: list[tuple[Node, list[Node]]] = []
                cond = self.expr()
                self.expect("then")
                clauses.append((cond, self.block()))
                orelse: list[Node] | None = None
                while True:
                    if self.accept("elseif"):
                        cond = self.expr()
                        self.expect("then")
                        clauses.append((cond, self.block()))
                    elif self.accept("else"):
                        orelse = self.block()
                        self.expect("end")
                        break
                    else:
                        self.expect("end")
                        break
                return If(clauses, orelse, tok.pos)
            if v == "while":
                self.i += 1
                cond = self.expr()
                self.expect("do")
                body = self.block()
                self.expect("end")
                return While(cond, body, tok.pos)
            if v == "do":
                self.i += 1
                body = self.block()
                self.expect("end")
                return Do(body, tok.pos)
            if v == "for":
                self.i += 1
                first = self.name()
                if self.accept("="):
                    start = self.expr()
                    self.expect(",")
                    stop = self.expr()
                    step = self.expr() if self.accept(",") else None
                    self.expect("do")
                    body = self.block()
                    self.expect("end")
                    return NumFor(first, start, stop, step, body, tok.pos)
                names = [first]
                while self.accept(","):
                    names.append(self.name())
                self.expect("in")
                exprs = self.exprlist()
                self.expect("do")
                body = self.block()
                self.expect("end")
                return GenFor(names, exprs, body, tok.pos)
            if v == "repeat":
                self.i += 1
                body = self.block()
                self.expect("until")
                return Repeat(body, self.expr(), tok.pos)
            if v == "function":
                self.i += 1
                name_pos = self.tok.pos
                full = self.name()
                target: Node = Name(full, name_pos)
                is_method = False
                while self.check(".") or self.check(":"):
                    is_method = self.tok.value == ":"
                    self.i += 1
                    key_tok = self.tok
                    key = self.name()
                    full += (":" if is_method else ".") + key
                    target = Index(target, Str(key, key_tok.pos), key_tok.pos)
                    if is_method:
                        break
                func = self.funcbody(tok.pos, full, method=is_method)
                return FuncStat(target, func, False, tok.pos)
        # exprstat: a call or an assignment
        expr = self.suffixedexp()
        if self.check("=") or self.check(","):
            targets = [expr]
            while self.accept(","):
                targets.append(self.suffixedexp())
            self.expect("=")
            for target in targets:
                if not isinstance(target, (Name, Index)):
                    raise LuaSyntaxError("syntax error near '='", tok.pos)
            return Assign(targets, self.exprlist(), tok.pos)
        if not isinstance(expr, Call):
            raise LuaSyntaxError("syntax error", self.tok.pos)
        return CallStat(expr, tok.pos)

    def funcbody(self, pos: int, name: str, method: bool = False) -> Function:
        self.expect("(")
        params: list[str] = ["self"] if method else []
        vararg = False
        if not self.check(")"):
            while True:
                if self.accept("..."):
                    vararg = True
                    break
                params.append(self.name())
                if not self.accept(","):
                    break
        self.expect(")")
        body = self.block()
        self.expect("end")
        return Function(params, vararg, body, pos, name)

    # ------------------------------------------------------------------ expressions
    def exprlist(self) -> list[Node]:
        exprs = [self.expr()]
        while self.accept(","):
            exprs.append(self.expr())
        return exprs

    def expr(self, limit: int = 0) -> Node:
        tok = self.tok
        if (tok.kind == "op" and tok.value in ("-", "#")) or (tok.kind == "kw" and tok.value == "not"):
            self.i += 1
            left: Node = UnOp(tok.value, self.expr(_UNARY_PRIORITY), tok.pos)
        else:
            left = self.simpleexp()
        while True:
            tok = self.tok
            prio = _BINARY.get(tok.value) if tok.kind in ("op", "kw") else None
            if prio is None or prio[0] <= limit:
                return left
            self.i += 1
            right = self.expr(prio[1])
            left = BinOp(tok.value, left, right, tok.pos)

    def simpleexp(self) -> Node:
        tok = self.tok
        kind = tok.kind
        if kind == "str":
            self.i += 1
            return Str(tok.value, tok.pos)
        if kind == "num":
            self.i += 1
            return Const("number", tok.pos, tok.value)
        if kind == "kw":
            if tok.value in ("nil", "true", "false"):
                self.i += 1
                return Const(tok.value, tok.pos)
            if tok.value == "function":
                self.i += 1
                return self.funcbody(tok.pos, "function")
        if kind == "op":
            if tok.value == "...":
                self.i += 1
                return Const("...", tok.pos)
            if tok.value == "{":
                return self.table()
        return self.suffixedexp()

    def primaryexp(self) -> Node:
        tok = self.tok
        if tok.kind == "name":
            self.i += 1
            return Name(tok.value, tok.pos)
        if self.accept("("):
            inner = self.expr()
            self.expect(")")
            return Paren(inner, tok.pos)
        raise self.error("unexpected symbol")

    def suffixedexp(self) -> Node:
        expr = self.primaryexp()
        while True:
            tok = self.tok
            if tok.kind == "op":
                v = tok.value
                if v == ".":
                    self.i += 1
                    key_tok = self.tok
                    expr = Index(expr, Str(self.name(), key_tok.pos), tok.pos)
                    continue
                if v == "[":
                    self.i += 1
                    key = self.expr()
                    self.expect("]")
                    expr = Index(expr, key, tok.pos)
                    continue
                if v == ":":
                    self.i += 1
                    method = self.name()
                    expr = Call(expr, self.callargs(), tok.pos, method)
                    continue
                if v == "(" or v == "{":
                    expr = Call(expr, self.callargs(), tok.pos)
                    continue
            elif tok.kind == "str":
                expr = Call(expr, self.callargs(), tok.pos)
                continue
            return expr

    def callargs(self) -> list[Node]:
        tok = self.tok
        if tok.kind == "str":
            self.i += 1
            return [Str(tok.value, tok.pos)]
        if tok.value == "{":
            return [self.table()]
        self.expect("(")
        if self.accept(")"):
            return []
        args = self.exprlist()
        self.expect(")")
        return args

    def table(self) -> Table:
        start = self.expect("{")
        items: list[Node] = []
        keyed: list[tuple[Node, Node]] = []
        while not self.check("}"):
            tok = self.tok
            if tok.kind == "op" and tok.value == "[":
                self.i += 1
                key = self.expr()
                self.expect("]")
                self.expect("=")
                keyed.append((key, self.expr()))
            elif tok.kind == "name" and self.toks[self.i + 1].value == "=" and self.toks[self.i + 1].kind == "op":
                self.i += 2
                keyed.append((Str(tok.value, tok.pos), self.expr()))
            else:
                items.append(self.expr())
            if not (self.accept(",") or self.accept(";")):
                break
        self.expect("}")
        return Table(items, keyed, start.pos)


def parse(text: str) -> Chunk:
    """The chunk's AST; LuaSyntaxError (with a character offset) when it is not valid Lua 5.1."""
    tokens = tokenize(text)
    parser = _Parser(tokens)
    body = parser.block()
    if parser.tok.kind != "eof":
        raise parser.error("'<eof>' expected")
    return Chunk(body, frozenset(t.value for t in tokens if t.kind == "name"))

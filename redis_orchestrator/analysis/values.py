"""What the walker knows about a value: where it comes from, what its text is made of, what it holds.

A string value carries a *shape*: a tuple of pieces.

    Lit("bull:")                    text written in the script
    Pat("{<queue>}:wait", "KEYS[1]") a declared pattern (catalog `keys:` / `argv:`); placeholders
                                    stand for non-empty text without braces
    Hole("ARGV[2]", ref="ARGV[2]")  text nobody declared (ARGV without a pattern: `ref` is how
                                    an `argv:` entry would name it, a reply, ...)
    Hole("KEYS[1]", key_index=1)    the whole of KEYS[1], whose pattern is not declared
    Hole("a number", brace_free=True)
    Hole("the reply of redis.call('GET')", stored=True)   a name read from Redis

`KEYS[1] .. ":" .. ARGV[2]` is (Pat or Hole of KEYS[1], Lit(":"), Hole("ARGV[2]")). From the shape
follows what is known of the key's slot (`slot_fact`), by Redis' rule: the hashed part is the text
between the first `{` and the first `}` after it when that text is non-empty, else the whole key.
What `slot_fact` cannot compute it attributes: to the hole that *decides* the slot (it starts the key,
or sits in a tag the script opens: `ARGV[1] .. id`, `'{user:' .. ARGV[1] .. '}'`), or to a hole
*mixed* with text the script fixed (`'lock:' .. ARGV[1]`: every value of ARGV[1] lands in its own
slot).

Tables carry their elements (`Tab`): the known positions, then a repeated cycle (what a loop
appends on each turn: `{KEYS[i], ARGV[i]}` pairs for MSETNX) or any number of `more`, and named
fields (`M.helper`). A value that may be one of several (an if/else join) is `either` with `alts`.

A function value carries its `Closure`: the function's AST and the `Scope` it was made in, whose
variables are its upvalues. Both live here, beside `Val`, because each holds the other: a scope maps
names to values and a value may hold a closure; the walker modules above build and read them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from redis_orchestrator.analysis.syntax import Function

_MAX_ALTS = 8
_MAX_FUNCTIONS = 256
_MAX_ITEMS = 64


@dataclass(frozen=True, slots=True)
class Lit:
    text: str


@dataclass(frozen=True, slots=True)
class Pat:
    text: str
    origin: str


@dataclass(frozen=True, slots=True)
class Hole:
    origin: str
    key_index: int = -1  # >= 1: all of KEYS[key_index] (pattern not declared); 0: all of some KEYS[i]
    brace_free: bool = False
    stored: bool = False  # a name read from Redis, or cut from a tagged name: it may carry a tag
    ref: str = ""  # the caller's value an `argv:` entry names: "ARGV[1]", "ARGV[2][1]", "ARGV[3].key"


Piece = Lit | Pat | Hole
Shape = tuple[Piece, ...]

# Stands for text of a brace-free hole inside a hashed part: never equal to a declared pattern.
UNSEEN = "\x00"


@dataclass(frozen=True, slots=True)
class SlotFact:
    """What a shape says about its key's slot.

    `hashed`: the hashed part as pattern text, when known (equal texts -> same slot); `tagged` when
    it is the text of a complete hash tag (else the whole key is hashed).
    `keys_index`: >= 0 when the slot is KEYS[keys_index]'s if that key carries a complete tag.
    `stored`: the slot is that of a name read from Redis or cut from a tagged name (its origin).
    Otherwise `hole` hides the slot, and `blocker` is its origin. `decides`: that hole decides the
    slot (it starts the key, or sits in a tag the script opens, `in_tag`): a value that may carry, or
    name, the tag the call's other keys share. Not `decides`: the whole key is hashed and the hole
    follows text the script fixed, so the slot moves with the hole's value.
    """

    hashed: str | None = None
    tagged: bool = False
    keys_index: int = -1
    stored: str = ""
    blocker: str = ""
    hole: Hole | None = None
    decides: bool = False
    in_tag: bool = False


def concat(left: Shape, right: Shape) -> Shape:
    if left and right and isinstance(left[-1], Lit) and isinstance(right[0], Lit):
        return (*left[:-1], Lit(left[-1].text + right[0].text), *right[1:])
    return left + right


def slot_fact(shape: Shape) -> SlotFact:
    """The hashed part of any string of this shape, or why it cannot be known."""
    tag: list[str] | None = None  # text after the first '{', while its '}' is not seen
    whole_key = False  # an empty tag "{}" was seen: the whole key is hashed
    head = False  # text the script fixed (or a number) comes before this point of the key
    for piece in shape:
        if isinstance(piece, Hole):
            if piece.brace_free:
                if tag is not None:
                    tag.append(UNSEEN)
                head = True
                continue
            if tag is None and not whole_key and piece.key_index >= 0:
                # All before it is brace-free text: the first '{', if any, is KEYS[i]'s.
                return SlotFact(keys_index=piece.key_index)
            if tag is None and not whole_key and piece.stored and not head:
                return SlotFact(stored=piece.origin, hole=piece, decides=True)
            # Inside braces the script wrote ('{user:' .. ARGV[1] .. '}') the author tags by entity:
            # the caller's value names it, as it may name the entity of KEYS. Outside any tag, after
            # text the script fixed ('lock:' .. ARGV[1]), the whole key is hashed and moves with it.
            in_tag = tag is not None and not whole_key
            decides = in_tag or (tag is None and not whole_key and not head)
            return SlotFact(blocker=piece.origin, hole=piece, decides=decides, in_tag=in_tag)
        if whole_key:
            continue
        text = piece.text
        if tag is None:
            start = text.find("{")
            if start < 0:
                head = head or bool(text)
                continue
            tag = []
            text = text[start + 1 :]
        end = text.find("}")
        if end < 0:
            tag.append(text)
            continue
        hashed = "".join(tag) + text[:end]
        if hashed:
            return SlotFact(hashed=hashed, tagged=True)
        whole_key = True
    return SlotFact(hashed="".join(UNSEEN if isinstance(p, Hole) else p.text for p in shape))


def witness(shape: Shape, hole: Hole | None, value: str) -> str:
    """A key of this shape with `hole` set to `value`, the other holes to 'x' (placeholders to
    their names): what the error messages show as the keys a call would really use."""
    parts = []
    for piece in shape:
        if isinstance(piece, Lit):
            parts.append(piece.text)
        elif isinstance(piece, Pat):
            parts.append(piece.text.replace("<", "").replace(">", ""))
        elif piece is hole:
            parts.append(value)
        else:
            parts.append("7" if piece.brace_free else "x")
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class Tab:
    items: tuple[Val, ...] = ()
    cycle: tuple[Val, ...] = ()
    more: Val | None = None
    fields: tuple[tuple[str, Val], ...] = ()

    @property
    def exact(self) -> bool:
        return not self.cycle and self.more is None

    def elem(self) -> Val | None:
        vals = [*self.items, *self.cycle]
        if self.more is not None:
            vals.append(self.more)
        return union(vals) if vals else None

    def any_value(self) -> Val | None:
        vals = [*self.items, *self.cycle, *(v for _, v in self.fields)]
        if self.more is not None:
            vals.append(self.more)
        return union(vals) if vals else None

    def field(self, name: str) -> Val | None:
        for key, val in self.fields:
            if key == name:
                return val
        return None

    def with_field(self, name: str, val: Val) -> Tab:
        return replace(self, fields=(*(f for f in self.fields if f[0] != name), (name, val)))

    def appended(self, val: Val) -> Tab:
        if self.exact and len(self.items) < _MAX_ITEMS:
            return replace(self, items=(*self.items, val))
        return self.unordered(val)

    def set_at(self, position: int, val: Val) -> Tab:
        if self.exact and 1 <= position <= len(self.items):
            items = list(self.items)
            items[position - 1] = val
            return replace(self, items=tuple(items))
        if self.exact and position == len(self.items) + 1:
            return self.appended(val)
        return self.unordered(val)

    def unordered(self, val: Val | None = None) -> Tab:
        """Positions no longer known: every element is one of what it held, or `val`."""
        parts = [e for e in (self.elem(), val) if e is not None]
        return Tab(more=union(parts) if parts else None, fields=self.fields)


def join_tabs(a: Tab, b: Tab) -> Tab:
    if a == b:
        return a
    fields = dict(a.fields)
    for name, val in b.fields:
        fields[name] = union([fields[name], val]) if name in fields else val
    joined_fields = tuple(fields.items())
    if a.exact and b.exact:
        shorter, longer = (a, b) if len(a.items) <= len(b.items) else (b, a)
        if longer.items[: len(shorter.items)] == shorter.items and len(longer.items) > len(shorter.items):
            # What a loop does: zero or more turns, each appending the same values.
            return Tab(items=shorter.items, cycle=longer.items[len(shorter.items) :], fields=joined_fields)
    if a.items == b.items and a.cycle == b.cycle and a.more == b.more:
        return Tab(a.items, a.cycle, a.more, joined_fields)
    parts = [e for e in (a.elem(), b.elem()) if e is not None]
    return Tab(more=union(parts) if parts else None, fields=joined_fields)


@dataclass(frozen=True, slots=True)
class Val:
    kind: str
    detail: str = ""  # where it comes from, for messages: "KEYS[1]", "the reply of SMEMBERS"
    literal: str | None = None
    shape: Shape | None = None
    tab: Tab | None = None
    closure: Closure | None = None
    alts: tuple[Val, ...] = ()
    local_only: bool = False  # names read from this node (SCAN, KEYS, RANDOMKEY): served here
    source: str = ""  # tables: "KEYS", "ARGV", "ARGV[1]" (decoded), "keys"/"args" (a function's)


@dataclass(frozen=True, eq=False)
class Closure:
    func: Function
    scope: Scope
    name: str = ""  # what call chains show: the function's name, or the local / field it was stored in

    @property
    def label(self) -> str:
        return self.name or self.func.name


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


UNKNOWN = Val("unknown")
NIL = Val("nil")
NUMBER = Val("number", shape=(Hole("a number", brace_free=True),))


def alternatives(val: Val) -> tuple[Val, ...]:
    return val.alts if val.kind == "either" else (val,)


def union(vals: Iterable[Val]) -> Val:
    """A value that may be any of `vals`. nil is dropped: a nil key is a Lua error, not a slot one,
    and optional parameters are nil in the calls that do not use them; so is "" beside other values."""
    flat: list[Val] = []
    tables: list[Val] = []
    for val in vals:
        for alt in alternatives(val):
            if alt.kind == "nil":
                continue
            if alt.kind == "table" and alt.tab is not None:
                tables.append(alt)
            elif alt not in flat:
                flat.append(alt)
    if tables:
        merged = tables[0]
        for other in tables[1:]:
            if other != merged:
                assert merged.tab is not None and other.tab is not None
                source = merged.source if merged.source == other.source else ""
                merged = Val("table", merged.detail, tab=join_tabs(merged.tab, other.tab), source=source)
        flat.append(merged)
    if len(flat) > 1:
        # `local x = ""` then set in a branch: the empty string is a sentinel tested before use.
        flat = [v for v in flat if not (v.kind == "literal" and v.literal == "")] or flat[:1]
    if not flat:
        return NIL
    if len(flat) == 1:
        return flat[0]
    functions = [v for v in flat if v.closure is not None]
    others = [v for v in flat if v.closure is None]
    if len(others) > _MAX_ALTS:
        others = [*others[: _MAX_ALTS - 1], Val("unknown", "one of many values")]
    # A dispatch table (`handlers[name](...)`) may hold many functions: keep them all to analyse each.
    flat = others + functions[:_MAX_FUNCTIONS]
    return Val("either", alts=tuple(flat))


def render(shape: Shape) -> str:
    """A shape as the Lua expression a reader recognises: KEYS[1] .. ':' .. ARGV[2]."""
    parts: list[str] = []
    for piece in shape:
        if isinstance(piece, Lit):
            parts.append(repr(piece.text))
        elif isinstance(piece, Pat):
            parts.append(piece.origin)
        else:
            parts.append(piece.origin if not piece.origin.startswith(("a ", "an ", "the ")) else f"<{piece.origin}>")
    return " .. ".join(parts)

"""Redis' own Lua (lupa's Lua 5.1): the syntax check, and string operations run on witnesses.

`KEYS[1]:sub(1, -5)` or `string.match(KEYS[1], "(.*:)")` keeps KEYS[1]'s hash tag when its
declared pattern is `{<queue>}:wait`. Rather than model Lua patterns, the operation runs for real on
two witnesses of the pattern (placeholders filled with short and long text); when both results keep
their witness' tag, the derived value is known to be in the same slot.
"""

from __future__ import annotations

import re
from typing import Any

from redis_orchestrator.analysis.slots import PLACEHOLDER, hash_tag
from redis_orchestrator.analysis.values import Hole, Lit, Pat, Shape, slot_fact

_LUA_ERROR = re.compile(r"^[^:]*:(\d+): (.*)$", re.DOTALL)
STRING_OPS = frozenset({"sub", "match", "gsub"})
_FILL = ("w{}", "witnesslongerthanusual{}x")
_NUMBER_FILL = ("7", "1234567890")


class Lua51:
    """One Lua 5.1 runtime; without lupa's lua51 module, no syntax verdict and no derivations."""

    def __init__(self) -> None:
        self._load: Any = None
        self._op: Any = None
        try:
            from lupa import lua51
        except ImportError:  # lupa built without Lua 5.1: our parser's verdict alone
            return
        runtime = lua51.LuaRuntime(unpack_returned_tuples=False)
        self._load = runtime.eval(
            "function(src) local f, err = loadstring(src, '=user_script') if f then return nil end return err end"
        )
        self._op = runtime.eval(
            "function(op, s, a, b, c) local ok, r = pcall(string[op], s, a, b, c) if ok then return r end end"
        )

    def syntax_error(self, source: bytes) -> tuple[int, str] | None:
        """(line, message) of Lua 5.1's own complaint, or None when the chunk compiles."""
        if self._load is None:
            return None
        try:
            err = self._load(source)
        except UnicodeDecodeError as exc:
            # lupa decodes Lua's message as UTF-8, and Lua quotes the token it stopped at byte by
            # byte: `near '\xc2'` cuts a character in two. The message's bytes are in the error.
            err = exc.object
        if err is None:
            return None
        text = err.decode("utf-8", "replace") if isinstance(err, bytes) else str(err)
        m = _LUA_ERROR.match(text)
        return (int(m.group(1)), m.group(2)) if m else (1, text)

    def tag_kept(self, op: str, shape: Shape, args: list[str | float]) -> Shape | None:
        """The shape of `string[op](s, *args)` as far as its slot goes, when it keeps s's tag."""
        if self._op is None or op not in STRING_OPS:
            return None
        fact = slot_fact(shape)
        if fact.hashed is None:
            return None
        for attempt in range(2):
            witness = _witness(shape, attempt)
            if witness is None:
                return None
            tag = hash_tag(witness)
            if tag is None:
                return None  # the whole key is hashed: any cut changes it
            try:
                result = self._op(op, witness, *args)
            except UnicodeDecodeError:
                return None  # the cut fell inside a UTF-8 character: no verdict
            if isinstance(result, bytes):
                result = result.decode("utf-8", "replace")
            if not isinstance(result, str) or hash_tag(result) != tag:
                return None
        origin = next((p.origin for p in shape if isinstance(p, Pat | Hole)), "a string")
        return (Pat("{" + fact.hashed + "}", f"{origin}:{op}(...)"), Hole(f"the rest of {origin}:{op}(...)"))


def _witness(shape: Shape, attempt: int) -> str | None:
    names: dict[str, str] = {}

    def fill(m: re.Match[str]) -> str:
        return names.setdefault(m.group(), _FILL[attempt].format(len(names)))

    parts: list[str] = []
    for piece in shape:
        if isinstance(piece, Lit):
            parts.append(piece.text)
        elif isinstance(piece, Pat):
            parts.append(PLACEHOLDER.sub(fill, piece.text))
        elif piece.brace_free:
            parts.append(_NUMBER_FILL[attempt])
        else:
            return None
    return "".join(parts)

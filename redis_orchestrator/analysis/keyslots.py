"""Is one key argument safe in a cluster? A verdict per value, with the message a user acts on.

Severity is proof. An **error** is a failure the check can show for the way the script is meant to
be called, with the witness in the message; a **warning** is a slot that hangs on a value the caller
or the data controls, which could carry the tag the call's keys share, and names the declaration
that would decide it (with it, the same key becomes an error or nothing):

    KEYS[1] itself                                  nothing
    carries a declared key's hash tag               same-slot-undeclared (info, configurable)
    'q:ids'                                         error: a fixed key, always in its one slot
    'lock:' .. ARGV[1], 'job:' .. id                error: the whole key is hashed and moves with the
                                                    value (witness: two values, two slots)
    '{timers}:x' and '{jobs}:y' in one script       error: the script fixes two different slots
    unpack(names SCAN listed) into one DEL          error: they span this node's slots
    '{app}:x' with nothing declared                 warning: fine if every KEYS entry has {app} (keys:)
    KEYS[1] .. ':x'                                 warning: fine if KEYS[1] has a tag (keys:)
    ARGV[1] .. id, ARGV[2], cjson.decode(ARGV[1]).k warning: fine if the caller's value carries the
    '{user:' .. ARGV[1] .. '}'                      tag (argv: "ARGV[1] = {<tag>}:<prefix>")
    a name read back from Redis (SMEMBERS, HGET)    warning: fine if it was stored with the tag
                                                    (-- redis-orchestrator: stored: [...])
    a helper handed to code the walk cannot follow  warning

What fails depends on the mode (seen on 7.0.15): without a shebang Redis only requires an undeclared
key to be served by the node the script runs on ("node"), as long as the call has no other key in
another slot (a call mixing slots fails even on one node, on every server tried); with a `#!lua`
shebang (without allow-cross-slot-keys) and in a function, every key must be in the declared keys'
slot ("slot"). Names SCAN / KEYS / RANDOMKEY listed are served by this node: alone in a call of a
script without shebang they work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import count

from redis_orchestrator.analysis.declared import Declared
from redis_orchestrator.analysis.findings import ERROR, WARNING, Severity
from redis_orchestrator.analysis.slots import PLACEHOLDER, key_slot
from redis_orchestrator.analysis.values import UNSEEN, Hole, Pat, Shape, SlotFact, Val, render, slot_fact, witness

# An ARGV reference an `argv:` entry can name (ARGV[i] in a loop cannot be declared).
DECLARABLE = re.compile(r"ARGV\[\d+\](?:\[\d+\]|\.[A-Za-z_]\w*)*")


@dataclass(frozen=True)
class Decision:
    """The declaration that would decide a warning: `keys:`, an `argv:` entry, or `stored:`.

    kind "keys" | "argv" | "stored"; for argv, `ref` (ARGV[1], ARGV[2].key) and `role`: "prefix"
    (the start of a key), "whole" (the key itself) or "tag" (inside braces the script writes)."""

    kind: str
    ref: str = ""
    role: str = ""


@dataclass(frozen=True)
class Verdict:
    severity: Severity
    code: str
    message: str
    suggestion: str
    decision: Decision | None = None
    fixed: str = ""  # a key whose slot the script fixes (compared with the script's other fixed keys)


class Judge:
    """`keyless`: the script never reads KEYS (nor documents them), so a cluster client sends it to
    whichever node it likes (redis-py: a random slot for EVAL with no keys)."""

    def __init__(
        self, declared: Declared, *, library: bool, same_slot_severity: Severity, keyless: bool = False
    ) -> None:
        self.declared = declared
        self.library = library
        self.same_slot_severity = same_slot_severity
        self.keyless = keyless

    def in_declared_slot(self, shape: Shape) -> bool:
        fact = slot_fact(shape)
        return fact.hashed is not None and self.declared.slot_owner(fact.hashed) is not None

    def verdict(
        self,
        command: str,
        position: int,
        val: Val,
        shape: Shape,
        desc: str,
        mode: str,
        function: str,
        many: bool,
    ) -> Verdict | None:
        if val.kind in ("nil", "error"):
            return None  # a nil argument is a Lua error, and optional parameters are nil when unused
        if val.kind == "key":
            return None  # KEYS[i] itself
        call = _Call(f"{command} key #{position} is {desc}", mode, function, many)
        if val.local_only:
            return self._listed(call, slot_fact(shape), shape)
        return self._routed(call, self._judge(call, val, shape, command, position, desc))

    def _routed(self, call: _Call, verdict: Verdict | None) -> Verdict | None:
        """In a script that reads no KEYS, a key whose slot the check cannot tell is a failure too."""
        if not self.keyless or verdict is None or verdict.severity != WARNING or verdict.code != "undeclared-key":
            return verdict
        return Verdict(
            ERROR,
            "undeclared-key",
            f"{call.what}: the script reads no KEYS, so a cluster client sends it to whichever node it likes "
            "(redis-py picks a random slot for EVAL with no keys), and this key is served there only by chance: "
            f"{call.fails}",
            "pass the script's keys in KEYS (EVALSHA sha numkeys key... and KEYS[i] in the script), so the client "
            "sends the call to the node that serves them",
        )

    def _judge(self, call: _Call, val: Val, shape: Shape, command: str, position: int, desc: str) -> Verdict | None:
        mode, function, many = call.mode, call.function, call.many
        if val.kind == "param":
            return Verdict(
                WARNING,
                "undeclared-key",
                f"{call.what}, and that helper is handed to code the checker cannot follow: if a caller passes "
                f"a name not in {call.keys_name}, {call.fails}",
                "call the helper directly (each call is then checked with its own arguments), or pass it "
                "only declared keys",
            )
        fact = slot_fact(shape)
        if fact.stored and self.declared.stored and shape and isinstance(shape[0], Hole):
            # Names read back from Redis are declared: judge the declared patterns in their place.
            verdicts = [
                self.verdict(
                    command, position, _plain(val), (Pat(p, shape[0].origin), *shape[1:]), desc, mode, function, many
                )
                for p in self.declared.stored
            ]
            return max((v for v in verdicts if v is not None), key=lambda v: v.severity.rank, default=None)
        if fact.hashed is not None:
            return self._known(call, fact, shape)
        if fact.keys_index >= 0:
            return self._from_keys(call, fact)
        if fact.decides:
            return self._open(call, fact, shape)
        return self._mixed(call, shape, fact.hole, val)

    # ------------------------------------------------------------------ the slot is known
    def _known(self, call: _Call, fact: SlotFact, shape: Shape) -> Verdict | None:
        hashed = fact.hashed or ""
        owner = self.declared.slot_owner(hashed)
        if owner is not None:
            return Verdict(
                self.same_slot_severity,
                "same-slot-undeclared",
                f"{call.what}: not in {call.keys_name}, but it carries KEYS[{owner}]'s hash tag "
                f"{{{_show(hashed)}}}, so it is in KEYS[{owner}]'s slot and the call works in a cluster, "
                "with or without a shebang, as long as such names keep that tag",
                "nothing to do for the cluster; pass the name in KEYS where the caller knows it "
                "(Redis' rule for scripts, which proxies and key-aware clients rely on)",
            )
        if UNSEEN in hashed:
            number = next((p for p in shape if isinstance(p, Hole) and p.brace_free), None)
            if not fact.tagged:
                return self._mixed(call, shape, number, None)
            return Verdict(
                WARNING,
                "undeclared-key",
                f"{call.what}: its hash tag {{{_show(hashed)}}} holds a number computed from the call's values; "
                f"it shares the slot of {call.keys_name} only if they carry the same tag; if not, {call.fails}",
                f"declare the entry's keys: with that tag so the check can tell; {_SUPPRESS}",
                Decision("keys"),
            )
        if self.declared.keys:
            where = "" if PLACEHOLDER.search(hashed) else f" (slot {key_slot(hashed)})"
            return Verdict(
                ERROR,
                "undeclared-key",
                f"{call.what}, not a key from {call.keys_name}: it hashes {{{_show(hashed)}}}{where}, which no "
                f"declared key does ({', '.join(self.declared.keys)}): {call.fails}",
                self._hint_fixed(),
            )
        if PLACEHOLDER.search(hashed):
            return Verdict(
                WARNING,
                "undeclared-key",
                f"{call.what}: it hashes {{{_show(hashed)}}} by its declared pattern, but the entry declares no "
                f"keys: to compare it with; it shares their slot only if {call.keys_name} carry that tag; "
                f"if not, {call.fails}",
                "declare the entry's keys: patterns; `check` prints suggested ones",
                Decision("keys"),
            )
        key = witness(shape, None, "")
        slot = key_slot(hashed)
        if fact.tagged:
            return Verdict(
                WARNING,
                "undeclared-key",
                f"{call.what}: a fixed key with hash tag {{{hashed}}} (slot {slot}); it shares the slot of "
                f"{call.keys_name} only if every one of them carries {{{hashed}}} too; if not, {call.fails}",
                f'if every key of the script carries {{{hashed}}}, declare it: keys: ["{{{hashed}}}:<name>", ...]; '
                "otherwise pass this key in KEYS",
                Decision("keys"),
                fixed=key,
            )
        return Verdict(
            ERROR,
            "undeclared-key",
            f"{call.what}: a fixed key outside {call.keys_name}, always in slot {slot} (no hash tag: the whole "
            f"key is hashed), while the call runs where {call.keys_name} are served (any node when there are "
            f"none): {call.fails}",
            self._hint_fixed(),
            fixed=key,
        )

    # ------------------------------------------------------------------ the slot hangs on a value
    def _from_keys(self, call: _Call, fact: SlotFact) -> Verdict:
        if call.function:
            return Verdict(
                WARNING,
                "undeclared-key",
                f"{call.what}: built from {call.keys_name}; it is in their slot only if that key carries a "
                f"complete hash tag {{...}}; if not, {call.fails}",
                "pass the full name in FCALL's keys, or build it only from a key that carries a hash tag",
            )
        source = f"KEYS[{fact.keys_index}]" if fact.keys_index else "a KEYS entry"
        return Verdict(
            WARNING,
            "undeclared-key",
            f"{call.what}: built from {source}, whose pattern is not declared, so it is in {source}'s slot "
            f"only if {source} carries a complete hash tag {{...}}; if it does not, {call.fails}",
            'declare the entry\'s keys: patterns with their hash tag (e.g. keys: ["{<queue>}:wait"]) so '
            "the check can tell; `check` prints suggested patterns, `check --write-keys` writes them",
            Decision("keys"),
        )

    def _open(self, call: _Call, fact: SlotFact, shape: Shape) -> Verdict:
        """A value the caller or the data controls decides the slot: it may carry the shared tag."""
        hole = fact.hole
        assert hole is not None
        tag = self.declared.shared_tag()

        def share(who: str) -> str:
            return (
                f"only if {who} carries {{{tag}}}, the declared keys' tag"
                if tag
                else f"only if {who} carries their hash tag"
            )

        where = f"the hash tag the script writes around it ({render(shape)})" if fact.in_tag else "its slot"
        if hole.stored:
            return Verdict(
                WARNING,
                "undeclared-key",
                f"{call.what}: {where} is decided by a name read back from Redis ({hole.origin}), which the "
                f"check cannot see; it shares the slot of {call.keys_name} "
                + share("that name")
                + f"; if it was stored without it, {call.fails}",
                "declare what the names read back look like, in the script: "
                '-- redis-orchestrator: stored: ["{<tag>}:<name>"] (then the check proves the call, or shows '
                "the slot it lands in); or pass such names in KEYS",
                Decision("stored"),
            )
        declarable = not self.library and DECLARABLE.fullmatch(hole.ref) is not None
        if hole.ref:
            role = "tag" if fact.in_tag else ("whole" if len(shape) == 1 else "prefix")
            value = {"tag": "value", "whole": "key", "prefix": "key prefix"}[role]
            message = (
                f"{call.what}: {where} is decided by {hole.ref}, the caller's {value}, which the check cannot "
                f"see; it shares the slot of {call.keys_name} " + share(hole.ref) + f"; if not, {call.fails}"
            )
            if declarable:
                pattern = _argv_pattern(role, tag)
                return Verdict(
                    WARNING,
                    "undeclared-key",
                    message,
                    f'declare what {hole.ref} holds: argv: ["{hole.ref} = {pattern}"] in the catalog entry (or '
                    "in the script: -- redis-orchestrator: argv: [...]); with it the check proves the call, or "
                    "shows the slot it lands in",
                    Decision("argv", hole.ref, role),
                )
            hint = (
                "pass the full name in FCALL's keys"
                if self.library
                else "pass the full names in KEYS (an ARGV read in a loop cannot be declared)"
            )
            return Verdict(WARNING, "undeclared-key", message, f"{hint}; {_SUPPRESS}")
        return Verdict(
            WARNING,
            "undeclared-key",
            f"{call.what}: {where} is decided by {hole.origin}, which the check cannot follow; it shares the "
            f"slot of {call.keys_name} " + share("it") + f"; if not, {call.fails}",
            f"pass the full name in KEYS; {_SUPPRESS}",
        )

    def _mixed(self, call: _Call, shape: Shape, hole: Hole | None, val: Val | None) -> Verdict:
        """The whole key is hashed, text the script fixed and a value together: the slot moves with it."""
        keys = _two_slots(shape, hole)
        shown = " and ".join(f"'{k}' is in slot {key_slot(k)}" for k in keys)
        origin = hole.origin if hole is not None else "a value"
        if hole is not None and hole.brace_free:
            origin = "a number"
        message = (
            f"{call.what}: no hash tag, so the whole key is hashed and its slot moves with {origin}: "
            f"{shown}; no node serves every value, so {call.fails}"
        )
        return Verdict(ERROR, "undeclared-key", message, self._hint(val, origin, call.function))

    # ------------------------------------------------------------------ names SCAN / KEYS listed
    def _listed(self, call: _Call, fact: SlotFact, shape: Shape) -> Verdict | None:
        if call.mode == "node" and not call.many:
            return None  # served by this node (the enumeration warning says what it misses)
        if fact.hashed is not None and UNSEEN not in fact.hashed and fact.tagged:
            # MATCH fixes a hash tag: every name listed is in that one slot.
            return None if call.mode == "node" else self._known(call, fact, shape)
        start = f"KEYS[{fact.keys_index}]" if fact.keys_index > 0 else "a KEYS entry" if fact.keys_index == 0 else ""
        if fact.decides and fact.hole is not None and not fact.hole.stored:
            start = fact.blocker
        if start:
            return Verdict(
                WARNING,
                "undeclared-key",
                f"{call.what}: names SCAN / KEYS listed for a MATCH pattern that starts with {start}; they "
                f"share a slot only if {start} carries a complete hash tag; if not, {call.fails}",
                f"make the MATCH pattern carry the hash tag the names share; {_SUPPRESS}",
            )
        if call.mode == "node":
            return Verdict(
                ERROR,
                "undeclared-key",
                f"{call.what}: names SCAN / KEYS list are in every slot this node serves (the MATCH pattern fixes "
                "no hash tag), and this call takes several keys: it fails whenever two of them are in different "
                "slots, even on this node (\"Command ... in script attempted to access keys that don't hash to the "
                "same slot\" on Redis 8 and Valkey 8, 'Script attempted to access a non local key' on Redis 7.0)",
                "send one command per name (a single key listed on this node always works), or MATCH only "
                "names with one hash tag",
            )
        return Verdict(
            ERROR,
            "undeclared-key",
            f"{call.what}: SCAN / KEYS list this node's names, which may be in other slots; "
            f"{'a function' if call.function else 'with a shebang the script'} fails whenever one hashes to "
            "another slot than the declared keys ('Script attempted to access keys that do not hash to "
            "the same slot')",
            "keep the names in a set or list passed in KEYS, or drop the shebang so that the node-local rule applies",
        )

    # ------------------------------------------------------------------ help texts
    def _hint_fixed(self) -> str:
        if self.library:
            return _FCALL_KEYS
        return (
            "pass the key in KEYS (EVALSHA sha numkeys key...) and use KEYS[i]; or give it the hash tag of the "
            "call's keys"
        )

    def _hint(self, val: Val | None, blocker: str, function: str) -> str:
        if (val is not None and val.kind == "reply") or "the reply of" in blocker:
            return (
                "names read from a reply cannot be declared in advance: pass them in KEYS (read them with a "
                "first call), or give them and the key they come from one hash tag"
            )
        if function:
            return _FCALL_KEYS
        return (
            "pass the full key name in KEYS (EVALSHA sha numkeys key...) and use KEYS[i]; or put the value in a "
            "hash tag the call's keys share, e.g. '{' .. id .. '}:...'"
        )


_SUPPRESS = "or, once you know it does, silence it: -- redis-orchestrator: ignore undeclared-key <why>"
_FCALL_KEYS = "pass the key name in FCALL's keys and read it as keys[i] in the callback"


@dataclass(frozen=True)
class _Call:
    what: str
    mode: str
    function: str
    many: bool

    @property
    def keys_name(self) -> str:
        return "the keys given to FCALL" if self.function else "KEYS"

    @property
    def fails(self) -> str:
        return _consequence(self.mode, self.function, self.many)


def _plain(val: Val) -> Val:
    return Val("built", val.detail)


def _argv_pattern(role: str, tag: str | None) -> str:
    """What an `argv:` entry says the caller's value holds: the shared tag, in its place."""
    inner = tag or "<tag>"
    if role == "tag":
        return inner
    return "{" + inner + "}" + (":<name>" if role == "whole" else ":<prefix>")


def _two_slots(shape: Shape, hole: Hole | None) -> list[str]:
    """Two keys of this shape, the varying piece set to two values, in two different slots."""
    number = hole is not None and hole.brace_free
    first = witness(shape, hole, "1" if number else "a")
    slot = key_slot(first)
    for i in count(2):
        other = witness(shape, hole, str(i) if number else "abcdefghijklmnopqrstuvwxyz"[i % 26] * (1 + i // 26))
        if key_slot(other) != slot or i > 64:
            return [first, other]
    raise AssertionError("unreachable")


def _consequence(mode: str, function: str, many: bool) -> str:
    if mode == "node" and many:
        # Seen on Redis 7.0.15 and 8.0.2, Valkey 8.1.1 and 9.1.2: a script's call with keys in two slots
        # fails even when one node serves both; only a single-key call may reach another slot.
        return (
            "in a cluster the call fails whenever this key is in another slot than the call's other keys, "
            "even on the same node, and whenever another node serves it ('Script attempted to access a non "
            "local key' on Redis 7.0, \"Command ... in script attempted to access keys that don't hash to the "
            'same slot" on Redis 8 and Valkey 8)'
        )
    if mode == "node":
        return (
            "in a cluster Redis fails the call with 'Script attempted to access a non local key' whenever the "
            "key is served by another node"
        )
    who = "the function" if function else "with its #!lua shebang the script"
    return (
        f"{who} fails whenever the key hashes to another slot than the declared keys ('Script attempted to "
        "access keys that do not hash to the same slot', or '... a non local key' on another node)"
    )


def _show(hashed: str) -> str:
    return hashed.replace(UNSEEN, "…")

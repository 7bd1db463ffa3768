"""Is one key argument safe in a cluster? A verdict per value, with the message a user acts on.

    declared     KEYS[i] itself (a function's keys[i])                     no finding
    same slot    carries the hash tag of a declared key                    same-slot-undeclared (info,
                                                                           configurable)
    conditional  built from KEYS[i] whose pattern is not declared          undeclared-key warning: safe
                                                                           only if KEYS[i] has a tag
    listed here  a name SCAN / KEYS / RANDOMKEY returned, no shebang       none (the enumeration
                                                                           warning covers it)
    unsafe       anything else                                             undeclared-key error
    helper       a parameter of a helper the walk could not follow         undeclared-key warning

What fails depends on the mode (seen on 7.0.15): without a shebang Redis only requires an undeclared
key to be served by the node the script runs on ("node"), as long as the call has no other key in
another slot (a call mixing slots fails even on one node, on every server tried); with a `#!lua`
shebang (without allow-cross-slot-keys) and in a function, every key must be in the declared keys'
slot ("slot").
"""

from __future__ import annotations

from dataclasses import dataclass

from redis_orchestrator.analysis.declared import Declared
from redis_orchestrator.analysis.findings import ERROR, WARNING, Severity
from redis_orchestrator.analysis.values import Shape, Val, slot_fact


@dataclass(frozen=True)
class Verdict:
    severity: Severity
    code: str
    message: str
    suggestion: str


class Judge:
    def __init__(self, declared: Declared, *, library: bool, same_slot_severity: Severity) -> None:
        self.declared = declared
        self.library = library
        self.same_slot_severity = same_slot_severity

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
        what = f"{command} key #{position} is {desc}"
        keys_name = "the keys given to FCALL" if function else "KEYS"
        fails = _consequence(mode, function, many)
        if val.kind == "param":
            return Verdict(
                WARNING,
                "undeclared-key",
                f"{what}, and that helper is handed to code the checker cannot follow: if a caller passes "
                f"a name not in {keys_name}, {fails}",
                "call the helper directly (each call is then checked with its own arguments), or pass it "
                "only declared keys",
            )
        if val.local_only:
            if mode == "node":
                return None
            return Verdict(
                ERROR,
                "undeclared-key",
                f"{what}: SCAN / KEYS list this node's names, which may be in other slots; "
                f"{'a function' if function else 'with a shebang the script'} fails whenever one hashes to "
                "another slot than the declared keys ('Script attempted to access keys that do not hash to "
                "the same slot')",
                "keep the names in a set or list passed in KEYS, or drop the shebang so that the node-local "
                "rule applies",
            )
        fact = slot_fact(shape)
        if fact.hashed is not None:
            owner = self.declared.slot_owner(fact.hashed)
            if owner is not None:
                return Verdict(
                    self.same_slot_severity,
                    "same-slot-undeclared",
                    f"{what}: not in {keys_name}, but it carries KEYS[{owner}]'s hash tag "
                    f"{{{_show(fact.hashed)}}}, so it is in KEYS[{owner}]'s slot and the call works in a cluster, "
                    "with or without a shebang, as long as such names keep that tag",
                    "nothing to do for the cluster; pass the name in KEYS where the caller knows it "
                    "(Redis' rule for scripts, which proxies and key-aware clients rely on)",
                )
        if fact.keys_index >= 0 and not function:
            source = f"KEYS[{fact.keys_index}]" if fact.keys_index else "a KEYS entry"
            return Verdict(
                WARNING,
                "undeclared-key",
                f"{what}: built from {source}, whose pattern is not declared, so it is in {source}'s slot "
                f"only if {source} carries a complete hash tag {{...}}; if it does not, {fails}",
                'declare the entry\'s keys: patterns with their hash tag (e.g. keys: ["{<queue>}:wait"]) so '
                "the check can tell; `check` prints suggested patterns, `check --write-keys` writes them",
            )
        if fact.keys_index >= 0:
            return Verdict(
                WARNING,
                "undeclared-key",
                f"{what}: built from {keys_name}; it is in their slot only if that key carries a complete "
                f"hash tag {{...}}; if it does not, {fails}",
                "pass the full name in FCALL's keys, or build it only from a key that carries a hash tag",
            )
        if fact.stored:
            tag = self.declared.shared_tag()
            if tag is not None:
                return Verdict(
                    WARNING,
                    "undeclared-key",
                    f"{what}: its slot comes from a name read back from Redis (or cut from a tagged one), "
                    f"which the check cannot see; it is in the declared keys' slot only if that name carries "
                    f"their tag {{{tag}}}; if not, {fails}",
                    "make sure every name stored and read back carries the same hash tag as the declared keys "
                    "(or pass such names in KEYS)",
                )
        message = f"{what}, not a key from {keys_name}: {fails}"
        if fact.hashed is not None and self.declared.keys:
            message += f" (it hashes {{{_show(fact.hashed)}}}, which no declared key does)"
        blocker = fact.blocker or fact.stored
        return Verdict(ERROR, "undeclared-key", message, self._hint(val, blocker, fact.blocker_first, function))

    def _hint(self, val: Val, blocker: str, prefix: bool, function: str) -> str:
        if val.kind == "reply" or "the reply of" in blocker:
            return (
                "names read from a reply cannot be declared in advance: pass them in KEYS (read them with a "
                "first call), or give them and the key they come from one hash tag"
            )
        if prefix and blocker.startswith("ARGV[") and not self.library:
            tag = self.declared.shared_hashed_part()
            example = "{" + tag + "}:" if tag is not None and any("{" in p for p in self.declared.keys) else "{<tag>}:"
            return (
                f"if {blocker} is a key prefix that carries the declared keys' hash tag, declare it in the "
                f'catalog entry: argv: ["{blocker} = {example}<prefix>"] (placeholders as in keys:, one name '
                "for one value); otherwise pass the full name in KEYS"
            )
        if function:
            return "pass the key name in FCALL's keys and read it as keys[i] in the callback"
        return (
            "pass the full key name in KEYS (EVALSHA sha numkeys key...) and use KEYS[i]; or give it the "
            "declared keys' hash tag"
        )


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
    return hashed.replace("\x00", "…")

"""A node's own command table (`COMMAND`) read into the analyzer's key specs: how
tools/gen_keyspecs.py regenerates the shipped keyspecs.json, and how a test checks the table against
the server it runs on. The reply's shape is drawn in analysis/keyspecs.py."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import redis

from redis_orchestrator.analysis.keyspecs import CommandSpec, KeySpec, KeySpecs
from redis_orchestrator.wire import replies
from redis_orchestrator.wire.servers import ServerInfo


def refresh_keyspecs(client: redis.Redis) -> KeySpecs:
    """Rebuild the table from a live node: its `COMMAND` reply, modules' commands included."""
    node_client: Any = client
    if hasattr(client, "get_default_node"):  # a RedisCluster: ask one node
        node_client = client.get_default_node().redis_connection
    # The raw reply, not redis-py's COMMAND callback (which reshapes key specs differently per version).
    connection = node_client.connection_pool.get_connection()
    try:
        connection.send_command("COMMAND")
        reply = connection.read_response()
        connection.send_command("INFO", "server")
        info = connection.read_response()
    finally:
        node_client.connection_pool.release(connection)
    return keyspecs_from_command_reply(reply, source=ServerInfo.parse(replies.text(info)).label)


def keyspecs_from_command_reply(reply: Iterable[Any], source: str = "") -> KeySpecs:
    commands: dict[str, CommandSpec] = {}
    for entry in reply:
        spec = _spec_from_reply(entry)
        commands[spec.name] = spec
    return KeySpecs(commands, source)


def _spec_from_reply(entry: Sequence[Any]) -> CommandSpec:
    name = replies.text(entry[0]).lower()
    key_specs = tuple(_keyspec_from_reply(ks) for ks in (entry[8] if len(entry) > 8 else []))
    subs = {}
    for sub in entry[9] if len(entry) > 9 else []:
        sub_spec = _spec_from_reply(sub)
        subs[sub_spec.name] = sub_spec
    return CommandSpec(
        name=name,
        arity=int(entry[1]),
        flags=frozenset(replies.text(f) for f in entry[2]),
        first_key=int(entry[3]),
        last_key=int(entry[4]),
        step=int(entry[5]),
        key_specs=key_specs,
        subcommands=subs,
    )


def _keyspec_from_reply(raw: Any) -> KeySpec:
    fields = replies.as_map(raw)
    begin = replies.as_map(fields.get("begin_search", {}))
    find = replies.as_map(fields.get("find_keys", {}))
    bspec = replies.as_map(begin.get("spec", []) or [])
    fspec = replies.as_map(find.get("spec", []) or [])
    return KeySpec(
        begin=replies.text(begin.get("type", "unknown")),
        index=int(bspec.get("index", 0)),
        keyword=replies.text(bspec.get("keyword", "")),
        startfrom=int(bspec.get("startfrom", 0)),
        find=replies.text(find.get("type", "unknown")),
        lastkey=int(fspec.get("lastkey", 0)),
        keystep=int(fspec.get("keystep", 1)),
        limit=int(fspec.get("limit", 0)),
        keynumidx=int(fspec.get("keynumidx", 0)),
        firstkey=int(fspec.get("firstkey", 0)),
        flags=frozenset(replies.text(f) for f in fields.get("flags", [])),
    )

"""Pure parts: plans from observations, topology replies of every shape."""

from __future__ import annotations

from redis.crc import key_slot

from redis_orchestrator.catalog.model import Catalog, Kind, Script, sha1_hex
from redis_orchestrator.daemon.leader import primary_for
from redis_orchestrator.reconcile.plan import Observation, plan_node
from redis_orchestrator.topology.cluster import parse_cluster_nodes, parse_cluster_shards
from redis_orchestrator.topology.model import Node, Role, Topology


def _script(name: str, body: bytes, kind: str = "script", library: str | None = None) -> Script:
    return Script(
        name=name, version="1", kind=kind, file=f"{name}.lua", source=body, sha=sha1_hex(body), library=library
    )


CATALOG = Catalog(
    version="1",
    entries=(
        _script("a", b"return 1"),
        _script("b", b"return 2"),
        _script("lib", b"#!lua name=lib\nredis.register_function('f', function() return 1 end)", Kind.FUNCTION, "lib"),
    ),
)
PRIMARY_NODE = Node("127.0.0.1", 7000, Role.PRIMARY)
REPLICA_NODE = Node("127.0.0.1", 7001, Role.REPLICA)


def test_plan_loads_only_missing_scripts() -> None:
    a, b, lib = CATALOG.entries
    plan = plan_node(Observation(PRIMARY_NODE, frozenset({a.sha}), {"lib": lib.source}), CATALOG)
    assert plan.load_scripts == (b,)
    assert plan.load_functions == ()
    assert not plan.in_sync


def test_plan_in_sync_when_everything_present() -> None:
    a, b, lib = CATALOG.entries
    assert plan_node(Observation(PRIMARY_NODE, frozenset({a.sha, b.sha}), {"lib": lib.source}), CATALOG).in_sync


def test_function_drift_and_missing_library_are_reloaded_on_primaries_only() -> None:
    a, b, lib = CATALOG.entries
    shas = frozenset({a.sha, b.sha})
    assert plan_node(
        Observation(PRIMARY_NODE, shas, {"lib": b"#!lua name=lib\n-- edited by hand"}), CATALOG
    ).load_functions == (lib,)
    assert plan_node(Observation(PRIMARY_NODE, shas, {}), CATALOG).load_functions == (lib,)
    # Replicas receive libraries by replication; never plan a FUNCTION LOAD there.
    assert plan_node(Observation(REPLICA_NODE, shas, None), CATALOG).in_sync


def test_unlisted_libraries_are_deleted_only_when_configured() -> None:
    a, b, lib = CATALOG.entries
    obs = Observation(PRIMARY_NODE, frozenset({a.sha, b.sha}), {"lib": lib.source, "theirs": b"x"})
    assert plan_node(obs, CATALOG).in_sync
    assert plan_node(obs, CATALOG, delete_unlisted=True).delete_libraries == ("theirs",)


def test_cluster_shards_resp3_with_int_and_string_slots() -> None:
    reply = [
        {
            b"slots": [0, 5460],
            b"nodes": [
                {b"id": b"p1", b"port": 7000, b"ip": b"127.0.0.1", b"role": b"master", b"health": b"online"},
                {b"id": b"r1", b"port": 7003, b"ip": b"127.0.0.1", b"role": b"replica", b"health": b"failed"},
            ],
        },
        # RESP2 flat arrays and 7.0.0's bulk-string slot numbers
        [
            b"slots",
            [b"5461", b"10922"],
            b"nodes",
            [[b"id", b"p2", b"port", 7001, b"ip", b"127.0.0.1", b"role", b"master"]],
        ],
    ]
    nodes = parse_cluster_shards(reply)
    topo = Topology(tuple(nodes))
    assert [n.address for n in topo.primaries] == ["127.0.0.1:7000", "127.0.0.1:7001"]
    replica = topo.get("127.0.0.1:7003")
    assert (
        replica is not None
        and replica.role == Role.REPLICA
        and replica.health == "failed"
        and replica.primary_id == "p1"
    )
    assert topo.get("127.0.0.1:7001").slots == ((5461, 10922),)  # type: ignore[union-attr]


def test_cluster_nodes_text() -> None:
    text = (
        "07c3 127.0.0.1:30004@31004 slave e7d1 0 1426238317239 4 connected\n"
        "e7d1 127.0.0.1:30001@31001,host1 myself,master - 0 0 1 connected 0-5460 [93->-abc]\n"
        "aaaa :0@0 master,noaddr - 0 0 0 disconnected\n"
        "bbbb 127.0.0.1:30009@31009 master,fail - 0 0 2 disconnected\n"
    )
    nodes = {n.address: n for n in parse_cluster_nodes(text)}
    assert set(nodes) == {"127.0.0.1:30004", "127.0.0.1:30001", "127.0.0.1:30009"}
    assert nodes["127.0.0.1:30001"].slots == ((0, 5460),)
    assert nodes["127.0.0.1:30004"].role == Role.REPLICA and nodes["127.0.0.1:30004"].primary_id == "e7d1"
    assert nodes["127.0.0.1:30009"].health == "failed"


def test_nodes_are_equal_by_address_whatever_their_role() -> None:
    assert Node("h", 1, Role.PRIMARY) == Node("h", 1, Role.REPLICA, node_id="x")


def test_cluster_shards_after_a_valkey_failover_keeps_the_dead_primary_out_of_the_slots() -> None:
    """Valkey 9.1 after a kill -9 of a primary and its replica's promotion (seen here): one shard
    holds both masters, the dead one with health `fail` (Redis says `failed`). Its slots are the
    live primary's."""
    reply = [
        {
            b"slots": [0, 5460],
            b"nodes": [
                {b"id": b"old", b"port": 31939, b"ip": b"127.0.0.1", b"role": b"master", b"health": b"fail"},
                {b"id": b"new", b"port": 23618, b"ip": b"127.0.0.1", b"role": b"master", b"health": b"online"},
            ],
        }
    ]
    nodes = {n.port: n for n in parse_cluster_shards(reply)}
    assert nodes[31939].health == "failed" and nodes[31939].slots == ()
    assert nodes[23618].slots == ((0, 5460),)
    key = next(f"k{i}" for i in range(10_000) if key_slot(f"k{i}".encode()) <= 5460)
    owner = primary_for(Topology(tuple(nodes.values())), key)
    assert owner is not None and owner.port == 23618

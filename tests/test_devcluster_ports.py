"""The ports a throwaway cluster's nodes get (pure: no server is started).

A port found free inside the kernel's ephemeral range can become the source port of any outgoing
connection before the server binds it, or while a killed node waits for its restart on the same
port: CI once failed at a cluster's start with "bind: Address already in use". Ports handed to
servers (and their cluster bus ports) lie outside that range."""

from __future__ import annotations

from redis_orchestrator.devcluster import cluster


def test_node_ports_and_their_bus_ports_are_outside_the_ephemeral_range() -> None:
    ephemeral = cluster._ephemeral_ports()
    pairs = [cluster.free_port_pair() for _ in range(200)]
    try:
        assert len(set(pairs)) == len(pairs)  # never handed out twice while held
        for port in pairs:
            assert port not in ephemeral and port + 10000 not in ephemeral
            assert port + 10000 not in pairs  # nobody's bus port is another node's port
    finally:
        for port in pairs:
            cluster.release_port(port)


def test_single_ports_are_outside_the_ephemeral_range_and_not_a_held_bus_port() -> None:
    ephemeral = cluster._ephemeral_ports()
    node = cluster.free_port_pair()
    singles = [cluster.free_port() for _ in range(200)]
    try:
        assert all(p not in ephemeral for p in singles)
        assert node + 10000 not in singles and node not in singles
    finally:
        for port in [node, *singles]:
            cluster.release_port(port)

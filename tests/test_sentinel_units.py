"""Sentinel and replication modes, the pure parts: config, reply parsers, the Sentinels' vote, the
nodes' vote, event payloads. No server: replies are literal samples of what 7.0.15 and Valkey 9.1
send (tests/test_sentinel.py checks the same code against real processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from redis_orchestrator.config.loader import parse_config
from redis_orchestrator.config.settings import Mode, RedisOverrides, Secret
from redis_orchestrator.daemon.primary_watch import role_change
from redis_orchestrator.daemon.sentinel_events import parse_event
from redis_orchestrator.errors import EXIT_UNREACHABLE, ConfigError, SeedsUnreachableError, ServiceUnknownError
from redis_orchestrator.topology.model import Health, Node, Role, Topology
from redis_orchestrator.topology.replication import GroupView, elect, group_nodes
from redis_orchestrator.topology.role import RoleReply, parse_role
from redis_orchestrator.topology.sentinel import Instance, SentinelView, decide, parse_instance, parse_masters
from redis_orchestrator.topology.sentinel import group_nodes as sentinel_nodes

CATALOG = """
catalog:
  version: "1"
  scripts:
    - {name: a, version: 1, file: a.lua}
"""


def _parse(tmp_path: Path, redis: str, environ: dict[str, str] | None = None, **kw: object):  # type: ignore[no-untyped-def]
    (tmp_path / "a.lua").write_text("return 1\n")
    return parse_config(f"redis:\n{redis}\n{CATALOG}", tmp_path / "config.yaml", environ=environ or {}, **kw)  # type: ignore[arg-type]


def _problems(tmp_path: Path, redis: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        _parse(tmp_path, redis, environ)
    return "\n".join(info.value.problems)


# ---------------------------------------------------------------------- config


def test_sentinel_mode_with_its_own_credentials(tmp_path: Path) -> None:
    secret = tmp_path / "sentinel-password"
    secret.write_text("s3cret\n")
    config = _parse(
        tmp_path,
        f"""  mode: sentinel
  seeds: ["10.0.0.1:26379", "10.0.0.2:26379"]
  service_name: mymaster
  password_env: DATA_PW
  sentinel: {{username: orch-sentinel, password_file: {secret}}}""",
        environ={"DATA_PW": "data"},
    )
    redis = config.start.redis
    assert redis.mode == Mode.SENTINEL and redis.service_name == "mymaster"
    assert redis.password == Secret("data")
    assert redis.sentinel.username == "orch-sentinel"
    assert redis.sentinel.password == Secret("s3cret")
    assert not redis.sentinel.tls.enabled  # nothing is taken over from the data nodes' settings


def test_sentinel_mode_needs_a_service_name(tmp_path: Path) -> None:
    text = _problems(tmp_path, '  mode: sentinel\n  seeds: ["127.0.0.1:26379"]')
    assert "redis.service_name: missing: sentinel mode needs the name the Sentinels monitor" in text, text
    assert "SENTINEL MASTERS" in text


def test_sentinel_keys_outside_sentinel_mode_are_refused(tmp_path: Path) -> None:
    text = _problems(
        tmp_path,
        '  mode: replication\n  seeds: ["127.0.0.1:6379"]\n  service_name: x\n  sentinel: {username: u}',
    )
    assert "redis.service_name: only read in sentinel mode (redis.mode is replication)" in text
    assert "redis.sentinel: only read in sentinel mode (redis.mode is replication)" in text


def test_sentinel_section_problems_have_their_place(tmp_path: Path) -> None:
    text = _problems(
        tmp_path,
        """  mode: sentinel
  seeds: ["127.0.0.1:26379"]
  service_name: m
  sentinel: {password: plain, colour: red, password_env: NOPE, tls: {enabled: true, ca_file: /no/ca.pem}}""",
    )
    assert "redis.sentinel.password: a password is never read from the config file" in text
    assert "redis.sentinel.colour: unknown key" in text
    assert "redis.sentinel.password_env: environment variable NOPE is not set" in text
    assert "redis.sentinel.tls.ca_file: /no/ca.pem does not exist" in text


def test_unknown_mode_lists_the_four(tmp_path: Path) -> None:
    text = _problems(tmp_path, "  mode: sentinal")
    assert "redis.mode: 'sentinal' is not one of: cluster, standalone, sentinel, replication" in text


def test_overrides_replace_mode_service_and_seeds(tmp_path: Path) -> None:
    config = _parse(
        tmp_path,
        '  mode: cluster\n  seeds: ["127.0.0.1:7000"]',
        overrides=RedisOverrides(seeds=("127.0.0.1:1",), mode=Mode.SENTINEL, service_name="local"),
    )
    redis = config.start.redis
    assert (redis.mode, redis.service_name, redis.seeds) == (Mode.SENTINEL, "local", ("127.0.0.1:1",))


# ---------------------------------------------------------------------- SENTINEL replies

MASTER_RESP3 = {
    b"name": b"mymaster",
    b"ip": b"127.0.0.1",
    b"port": b"6379",
    b"flags": b"master",
    b"config-epoch": b"2",
    b"num-slaves": b"2",
}
REPLICA_RESP2 = [
    b"name",
    b"127.0.0.1:6380",
    b"ip",
    b"127.0.0.1",
    b"port",
    b"6380",
    b"flags",
    b"slave,s_down,disconnected",
    b"role-reported",
    b"slave",
]


def test_parse_instance_from_both_protocols() -> None:
    primary = parse_instance(MASTER_RESP3)
    assert (primary.address, primary.down, primary.config_epoch) == ("127.0.0.1:6379", False, 2)
    replica = parse_instance(REPLICA_RESP2)
    assert replica.address == "127.0.0.1:6380" and replica.down
    assert replica.flags == {"slave", "s_down", "disconnected"}


def test_parse_masters_lists_names() -> None:
    assert parse_masters([{b"name": b"b"}, [b"name", b"a", b"ip", b"x"]]) == ("a", "b")


def _view(sentinel: str, primary: str | None, *replicas: str, epoch: int = 1, down: str = "") -> SentinelView:
    if primary is None:
        return SentinelView(sentinel, error="unreachable: Connection refused")
    host, port = primary.split(":")
    flags = frozenset({"master", *([down] if down else [])})
    return SentinelView(
        sentinel,
        primary=Instance(host, int(port), flags, config_epoch=epoch),
        replicas=tuple(Instance(r.split(":")[0], int(r.split(":")[1]), frozenset({"slave"})) for r in replicas),
    )


def test_unanimous_sentinels() -> None:
    verdict = decide([_view("s1", "h:1", "h:2"), _view("s2", "h:1", "h:2"), _view("s3", None)], "m")
    assert verdict.primary.address == "h:1" and verdict.disagreement is None
    assert [v.sentinel for v in verdict.agreeing] == ["s1", "s2"]


def test_the_majority_wins_and_the_disagreement_is_named() -> None:
    verdict = decide([_view("s1", "h:2"), _view("s2", "h:1"), _view("s3", "h:2")], "m")
    assert verdict.primary.address == "h:2"
    assert verdict.disagreement == "Sentinels disagree on the primary of m: h:2 by s1, s3; h:1 by s2; following h:2"


def test_a_tie_goes_to_the_newer_configuration() -> None:
    verdict = decide([_view("s1", "h:1", epoch=3), _view("s2", "h:2", epoch=4), _view("s3", None)], "m")
    assert verdict.primary.address == "h:2"


def test_no_sentinel_answers() -> None:
    with pytest.raises(SeedsUnreachableError) as info:
        decide([_view("s1", None), _view("s2", None)], "m")
    assert not isinstance(info.value, ServiceUnknownError)
    assert "s1: unreachable: Connection refused" in str(info.value)


def test_a_sentinel_that_does_not_monitor_the_service_is_named() -> None:
    verdict = decide([_view("s1", "h:1"), SentinelView("s2", monitors=("cache",))], "m")
    assert verdict.primary.address == "h:1" and verdict.disagreement is None
    assert verdict.unaware == "Sentinels that do not monitor m: s2 monitors cache"


def test_a_wrong_service_name_names_what_each_sentinel_monitors() -> None:
    views = [SentinelView("s1", monitors=("cache", "queue")), SentinelView("s2", monitors=()), _view("s3", None)]
    with pytest.raises(ServiceUnknownError) as info:
        decide(views, "mymaster")
    message = str(info.value)
    assert "no Sentinel monitors a primary named 'mymaster'" in message
    assert "s1: monitors cache, queue; s2: monitors nothing; s3: unreachable: Connection refused" in message
    assert info.value.exit_code == EXIT_UNREACHABLE


def test_nodes_from_the_agreeing_sentinels_down_replicas_included() -> None:
    one = _view("s1", "h:1", "h:2", "h:3")
    two = SentinelView(
        "s2",
        primary=one.primary,
        replicas=(
            Instance("h", 2, frozenset({"slave", "s_down"})),
            Instance("h", 4, frozenset({"slave", "s_down", "disconnected"})),
        ),
    )
    nodes, notes = sentinel_nodes(decide([one, two], "m"), connected=("h:5",))
    by_address = {n.address: n for n in nodes}
    assert by_address["h:1"].role == Role.PRIMARY
    assert by_address["h:2"].health == Health.ONLINE  # one Sentinel still sees it up
    assert by_address["h:4"].health == Health.FAILED  # known, down: repaired at its first answer
    assert by_address["h:5"].role == Role.REPLICA  # connected to the primary, no Sentinel knows it yet
    assert notes == []


def test_a_stray_primary_is_a_replica_with_a_note() -> None:
    view = SentinelView(
        "s1",
        primary=Instance("h", 2, frozenset({"master"})),
        replicas=(Instance("h", 1, frozenset({"slave"}), role_reported="master"),),
    )
    nodes, notes = sentinel_nodes(decide([view], "m"))
    assert {n.address: n.role for n in nodes} == {"h:2": Role.PRIMARY, "h:1": Role.REPLICA}
    assert notes == ["h:1 reports itself a primary; Sentinel counts it a replica of h:2"]
    stray = next(n for n in nodes if n.address == "h:1")
    assert stray.stray_primary and stray.takes_functions  # nothing replicates its libraries to it yet


# ---------------------------------------------------------------------- ROLE


def test_parse_role_three_shapes() -> None:
    primary = parse_role([b"master", 3129659, [[b"127.0.0.1", b"9001", b"3129242"], [b"127.0.0.1", b"9002", b"0"]]])
    assert primary == RoleReply(Role.PRIMARY, offset=3129659, replicas=("127.0.0.1:9001", "127.0.0.1:9002"))
    replica = parse_role([b"slave", b"127.0.0.1", 9000, b"connected", 3167038])
    assert replica == RoleReply(Role.REPLICA, offset=3167038, primary="127.0.0.1:9000", link_up=True)
    assert not parse_role(["slave", "127.0.0.1", 9000, "connect", -1]).link_up
    assert parse_role([b"sentinel", [b"mymaster"]]) == RoleReply(None, monitors=("mymaster",))
    with pytest.raises(ValueError):
        parse_role([b"leader"])


def test_the_nodes_vote_for_their_primary() -> None:
    answers = {
        "h:1": RoleReply(Role.PRIMARY, offset=10, replicas=("h:2",)),  # a stray: back, empty, alone
        "h:2": RoleReply(Role.PRIMARY, offset=50, replicas=("h:3", "h:4")),
        "h:3": RoleReply(Role.REPLICA, primary="h:2", link_up=True),
        "h:5": RoleReply(Role.REPLICA, primary="elsewhere:1"),
    }
    view = elect(answers)
    assert view is not None and view.primary == "h:2" and view.contested
    nodes, notes = group_nodes(view, asked=["h:1", "h:2", "h:3", "h:5", "h:6"])
    roles = {n.address: (n.role, n.health) for n in nodes}
    assert roles == {
        "h:2": (Role.PRIMARY, Health.ONLINE),
        "h:3": (Role.REPLICA, Health.ONLINE),
        "h:4": (Role.REPLICA, Health.ONLINE),  # listed by the primary, never asked
        "h:1": (Role.REPLICA, Health.ONLINE),  # the stray, loaded like a replica
        "h:6": (Role.REPLICA, Health.FAILED),  # a seed that did not answer
    }
    assert any("h:1 answers ROLE as a primary" in n for n in notes)
    assert [n.address for n in nodes if n.takes_functions] == ["h:2", "h:1"]
    assert any("h:5 replicates from elsewhere:1" in n for n in notes)


def test_replicas_of_a_dead_primary_still_name_it() -> None:
    answers = {"h:2": RoleReply(Role.REPLICA, primary="h:1"), "h:3": RoleReply(Role.REPLICA, primary="h:1")}
    view = elect(answers)
    assert view == GroupView("h:1", {"h:1": 2}, answers)
    nodes, _ = group_nodes(view, asked=["h:2", "h:3"])
    assert next(n for n in nodes if n.address == "h:1").health == Health.FAILED


def test_only_sentinels_answered() -> None:
    assert elect({"s:1": RoleReply(None, monitors=("m",))}) is None


def test_role_change_of_the_primary() -> None:
    primary = Node("h", 1, Role.PRIMARY)
    topology = Topology((primary, Node("h", 2, Role.REPLICA)))
    assert role_change(topology, primary, RoleReply(Role.PRIMARY, replicas=("h:2",))) is None
    assert role_change(topology, primary, RoleReply(Role.PRIMARY, replicas=("h:2", "h:3"))) == (
        "h:1 has new replica(s): h:3"
    )
    assert role_change(topology, primary, RoleReply(Role.REPLICA, primary="h:2")) == "h:1 answers ROLE as replica"


# ---------------------------------------------------------------------- events


@pytest.mark.parametrize(
    ("channel", "payload", "service", "instance", "address"),
    [
        ("+switch-master", "mymaster 127.0.0.1 6379 127.0.0.1 6380", "mymaster", "master", "127.0.0.1:6380"),
        ("+sdown", "master mymaster 127.0.0.1 6379", "mymaster", "master", "127.0.0.1:6379"),
        (
            "-sdown",
            "slave 127.0.0.1:6381 127.0.0.1 6381 @ mymaster 127.0.0.1 6379",
            "mymaster",
            "slave",
            "127.0.0.1:6381",
        ),
        ("+slave", "slave 127.0.0.1:6382 127.0.0.1 6382 @ other 127.0.0.1 7379", "other", "slave", "127.0.0.1:6382"),
        (
            "+sdown",
            "sentinel 0a1b 127.0.0.1 26380 @ mymaster 127.0.0.1 6379",
            "mymaster",
            "sentinel",
            "127.0.0.1:26380",
        ),
    ],
)
def test_event_payloads(channel: str, payload: str, service: str, instance: str, address: str) -> None:
    event = parse_event(channel, payload, "s1")
    assert event is not None
    assert (event.service, event.instance, event.address) == (service, instance, address)


def test_unknown_event_shapes_are_ignored() -> None:
    assert parse_event("+switch-master", "mymaster", "s1") is None
    assert parse_event("+sdown", "slave a b c", "s1") is None

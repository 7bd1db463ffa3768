"""Every metric the daemon exports, on a registry passed in (tests build a fresh one).

Names follow Prometheus conventions: units in names, `_total` counters, node = "host:port", no
per-key or per-argument labels. Series are pre-initialised where the label values are known, so a
dashboard shows 0 rather than nothing. Exposition sample:

    redis_orchestrator_node_up{node="127.0.0.1:7000",role="primary"} 1.0
    redis_orchestrator_node_scripts_missing{node="127.0.0.1:7000",role="primary"} 0.0
    redis_orchestrator_script_loads_total{node="127.0.0.1:7000"} 12.0
    redis_orchestrator_catalog_info{version="2026.11.22"} 1.0
    redis_orchestrator_slow_script_runs_total{node="127.0.0.1:7000",script="transfer"} 3.0
    redis_orchestrator_slow_script_limit_ratio{node="127.0.0.1:7000",script="transfer"} 0.62
    redis_orchestrator_script_kills_total{node="127.0.0.1:7000",result="unkillable"} 1.0

`script` is a catalog *name* or "unknown" (never a foreign sha), so its values are bounded by the
catalog; versions are in the log lines, not in labels.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily

from redis_orchestrator.analysis.findings import Severity
from redis_orchestrator.daemon.busy import KillResult
from redis_orchestrator.daemon.http import DropReason
from redis_orchestrator.daemon.reload import ReloadResult

PREFIX = "redis_orchestrator"


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.node_up = Gauge(
            f"{PREFIX}_node_up", "1 if the node answered the last reconcile", ["node", "role"], registry=r
        )
        self.node_scripts_missing = Gauge(
            f"{PREFIX}_node_scripts_missing",
            "Catalog scripts and libraries missing on the node after the last reconcile",
            ["node", "role"],
            registry=r,
        )
        self.script_loads = Counter(
            f"{PREFIX}_script_loads", "SCRIPT LOAD and FUNCTION LOAD commands that succeeded", ["node"], registry=r
        )
        self.reconcile_errors = Counter(
            f"{PREFIX}_reconcile_errors", "Reconcile passes that failed on the node", ["node"], registry=r
        )
        self.reconcile_duration = Histogram(
            f"{PREFIX}_reconcile_duration_seconds",
            "Time of one reconcile pass on one node",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.catalog_info = Gauge(
            f"{PREFIX}_catalog_info", "The catalog version being enforced", ["version"], registry=r
        )
        self.catalog_scripts = Gauge(f"{PREFIX}_catalog_scripts", "Live entries in the catalog", ["kind"], registry=r)
        self.catalog_reloads = Counter(
            f"{PREFIX}_catalog_reloads", "Catalog (re)loads by result", ["result"], registry=r
        )
        self.slow_script_runs = Counter(
            f"{PREFIX}_slow_script_runs",
            "Slowlog entries attributed to a catalog script",
            ["script", "node"],
            registry=r,
        )
        self.slow_script_duration = Histogram(
            f"{PREFIX}_slow_script_duration_seconds",
            "Duration of script runs seen in the slowlog",
            ["script"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.slow_script_limit_ratio = Gauge(
            f"{PREFIX}_slow_script_limit_ratio",
            "Duration of the script's latest slow run (the slowest of one poll) divided by the node's "
            "busy-reply-threshold; 1 means clients got BUSY",
            ["script", "node"],
            registry=r,
        )
        self.script_time_limit = Gauge(
            f"{PREFIX}_script_time_limit_seconds", "The node's busy-reply-threshold", ["node"], registry=r
        )
        self.node_busy = Gauge(f"{PREFIX}_node_busy", "1 while the node answers BUSY", ["node"], registry=r)
        self.script_kills = Counter(
            f"{PREFIX}_script_kills", "SCRIPT KILL / FUNCTION KILL attempts by result", ["node", "result"], registry=r
        )
        self.slowlog_missed = Counter(
            f"{PREFIX}_slowlog_missed_entries",
            "Slowlog entries lost to the ring between two polls",
            ["node"],
            registry=r,
        )
        self.slowlog_errors = Counter(
            f"{PREFIX}_slowlog_poll_errors",
            "Slowlog polls that failed on the node (BUSY not included: see node_busy)",
            ["node"],
            registry=r,
        )
        self.check_findings = Gauge(
            f"{PREFIX}_check_findings", "Static analysis findings in the enforced catalog", ["severity"], registry=r
        )
        self.restart_pending = Gauge(
            f"{PREFIX}_config_restart_pending",
            "Start-time settings (redis, metrics, leader, manifest) changed in the config file since the "
            "daemon started: they apply only after a restart",
            registry=r,
        )
        self.feature_unavailable = Gauge(
            f"{PREFIX}_feature_unavailable",
            "1 when the node refuses a command a feature needs (renamed, not offered, NOPERM): the feature "
            "is off there",
            ["node", "feature"],
            registry=r,
        )
        self.node_cached_scripts = Gauge(
            f"{PREFIX}_node_cached_scripts",
            "Scripts in the node's script cache (INFO memory number_of_cached_scripts): the catalog's, "
            "our cache marker, and whatever clients added with EVAL",
            ["node"],
            registry=r,
        )
        self.node_scripts_eval_memory = Gauge(
            f"{PREFIX}_node_scripts_eval_memory_bytes",
            "Memory of the node's script cache (INFO memory used_memory_scripts_eval)",
            ["node"],
            registry=r,
        )
        self._evicted = _ServerCounter(
            f"{PREFIX}_node_evicted_scripts",
            "Scripts the node evicted from its cache (INFO stats evicted_scripts; Redis >= 7.4, Valkey >= 8)",
            registry=r,
        )
        self.leader = Gauge(f"{PREFIX}_leader", "1 if this instance holds the leader lease", registry=r)
        self.ready = Gauge(
            f"{PREFIX}_ready", "1 when the catalog is loaded and every reachable node holds it", registry=r
        )
        self.sentinel_subscribed = Gauge(
            f"{PREFIX}_sentinel_subscribed",
            "Sentinel mode: 1 while the event subscription to this Sentinel is up; when none is, the "
            "topology is polled every second instead",
            ["sentinel"],
            registry=r,
        )
        # the metrics endpoint itself (http.py): what hostile or broken clients cost, and its web config
        self.http_requests = Counter(
            f"{PREFIX}_http_requests",
            "Requests answered by the metrics endpoint, by path (/metrics, /healthz, /readyz, /, other) and status",
            ["path", "code"],
            registry=r,
        )
        self.http_connections_dropped = Counter(
            f"{PREFIX}_http_connections_dropped",
            "Connections the metrics endpoint closed without answering a request on them, by reason",
            ["reason"],
            registry=r,
        )
        self.http_open_connections = Gauge(
            f"{PREFIX}_http_open_connections", "Connections open to the metrics endpoint", registry=r
        )
        self.http_password_checks = Counter(
            f"{PREFIX}_http_password_checks",
            "bcrypt checks of basic auth passwords (credentials that passed once are cached and cost none)",
            registry=r,
        )
        self.web_config_reloads = Counter(
            f"{PREFIX}_web_config_reloads",
            "Reloads of the metrics endpoint's web config file by result (rejected: the previous one is kept)",
            ["result"],
            registry=r,
        )
        for severity in Severity:
            self.check_findings.labels(severity)
        for result in ReloadResult:
            self.catalog_reloads.labels(result)
            self.web_config_reloads.labels(result)
        for reason in DropReason:
            self.http_connections_dropped.labels(reason)
        # a node's series, created when it is known, removed when it is forgotten
        self._by_node_role = (self.node_up, self.node_scripts_missing)
        self._by_node = (
            self.script_loads,
            self.reconcile_errors,
            self.node_busy,
            self.slowlog_missed,
            self.slowlog_errors,
        )
        # set once read, not before: forgotten with the node, never pre-created
        self._read_by_node = (self.script_time_limit, self.node_cached_scripts, self.node_scripts_eval_memory)
        self._roles: dict[str, str] = {}
        self._features: dict[str, set[str]] = {}  # node -> features with a series, to forget them
        self._slow_scripts: dict[str, set[str]] = {}  # node -> script labels seen, to forget them

    # ------------------------------------------------------------------ nodes

    def node_known(self, node: str, role: str) -> None:
        """Create (or move to a new role) the node's series."""
        old = self._roles.get(node)
        if old == role:
            return
        if old is not None:
            for gauge in self._by_node_role:
                _remove(gauge, node, old)
        self._roles[node] = role
        for gauge in self._by_node_role:
            gauge.labels(node, role)
        for metric in self._by_node:
            metric.labels(node)
        for result in KillResult:
            self.script_kills.labels(node, result)

    def node_forgotten(self, node: str) -> None:
        role = self._roles.pop(node, None)
        if role is not None:
            for gauge in self._by_node_role:
                _remove(gauge, node, role)
        for metric in (*self._by_node, *self._read_by_node):
            _remove(metric, node)
        for feature in self._features.pop(node, set()):
            _remove(self.feature_unavailable, node, feature)
        self._evicted.forget(node)
        for result in KillResult:
            _remove(self.script_kills, node, result)
        for script in self._slow_scripts.pop(node, set()):
            _remove(self.slow_script_runs, script, node)
            _remove(self.slow_script_limit_ratio, script, node)

    def node_reconciled(
        self, node: str, role: str, *, up: bool, missing: int, loaded: int, failed: bool, seconds: float | None
    ) -> None:
        self.node_known(node, role)
        self.node_up.labels(node, role).set(1 if up else 0)
        self.node_scripts_missing.labels(node, role).set(missing)
        if loaded:
            self.script_loads.labels(node).inc(loaded)
        if failed:
            self.reconcile_errors.labels(node).inc()
        if seconds is not None:
            self.reconcile_duration.observe(seconds)

    def feature_changed(self, node: str, feature: str, unavailable: bool) -> None:
        self._features.setdefault(node, set()).add(feature)
        self.feature_unavailable.labels(node, feature).set(1 if unavailable else 0)

    def script_cache_read(
        self, node: str, cached: int | None, eval_memory_bytes: int | None, evicted: int | None
    ) -> None:
        """What INFO said of the node's script cache (None: not asked this pass, or not reported)."""
        if cached is not None:
            self.node_cached_scripts.labels(node).set(cached)
        if eval_memory_bytes is not None:
            self.node_scripts_eval_memory.labels(node).set(eval_memory_bytes)
        if evicted is not None:
            self._evicted.set(node, evicted)

    # ------------------------------------------------------------------ slow scripts

    def slow_script_run(self, script: str, node: str, seconds: float) -> None:
        """One slowlog entry of a script: `script` is a catalog name or "unknown" (bounded)."""
        self._slow_scripts.setdefault(node, set()).add(script)
        self.slow_script_runs.labels(script, node).inc()
        self.slow_script_duration.labels(script).observe(seconds)

    def slow_script_ratio(self, script: str, node: str, ratio: float) -> None:
        self._slow_scripts.setdefault(node, set()).add(script)
        self.slow_script_limit_ratio.labels(script, node).set(ratio)

    def slowlog_entries_missed(self, node: str, count: int) -> None:
        self.slowlog_missed.labels(node).inc(count)

    def slowlog_poll_failed(self, node: str) -> None:
        self.slowlog_errors.labels(node).inc()

    def script_time_limit_read(self, node: str, seconds: float) -> None:
        self.script_time_limit.labels(node).set(seconds)

    def node_busy_changed(self, node: str, busy: bool) -> None:
        self.node_busy.labels(node).set(1 if busy else 0)

    def script_kill(self, node: str, result: KillResult) -> None:
        self.script_kills.labels(node, result).inc()

    # ------------------------------------------------------------------ catalog

    def catalog_loaded(self, version: str, counts: Mapping[str, int]) -> None:
        self.catalog_info.clear()
        self.catalog_info.labels(version).set(1)
        for kind, count in counts.items():
            self.catalog_scripts.labels(kind).set(count)

    def catalog_reload(self, result: ReloadResult) -> None:
        self.catalog_reloads.labels(result).inc()

    def findings(self, severities: Iterable[Severity]) -> None:
        counts = dict.fromkeys(Severity, 0)
        for severity in severities:
            counts[severity] += 1
        for severity, count in counts.items():
            self.check_findings.labels(severity).set(count)


class _ServerCounter:
    """A counter the server keeps (INFO stats): exported as a Prometheus counter with the server's
    own value, so rate() works and a node restart reads as a counter reset.

        # TYPE redis_orchestrator_node_evicted_scripts counter
        redis_orchestrator_node_evicted_scripts_total{node="127.0.0.1:7000"} 200.0
    """

    def __init__(self, name: str, documentation: str, registry: CollectorRegistry) -> None:
        self.name = name
        self.documentation = documentation
        self._values: dict[str, float] = {}
        registry.register(self)

    def set(self, node: str, value: float) -> None:
        self._values[node] = value

    def forget(self, node: str) -> None:
        self._values.pop(node, None)

    def collect(self) -> Iterable[CounterMetricFamily]:
        family = CounterMetricFamily(self.name, self.documentation, labels=["node"])
        for node, value in sorted(self._values.items()):
            family.add_metric([node], value)
        yield family

    def describe(self) -> Iterable[CounterMetricFamily]:
        yield CounterMetricFamily(self.name, self.documentation, labels=["node"])


def _remove(metric: Gauge | Counter | Histogram, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        metric.remove(*labels)

"""Command line: parses arguments, calls the modules that do the work, prints, returns exit codes.

Exit codes, like diff(1): 0 clean / in sync; 1 findings, pending changes or not converged;
2 usage or configuration error; 3 no seed reachable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redis_orchestrator import __version__, logs
from redis_orchestrator.config.loader import load_config
from redis_orchestrator.config.settings import Config, Mode
from redis_orchestrator.errors import (
    EXIT_CLEAN,
    EXIT_FINDINGS,
    ConfigError,
    OrchestratorError,
)
from redis_orchestrator.reconcile.node_pass import NodeReport, NodeState

if TYPE_CHECKING:
    from redis_orchestrator.reconcile.settle import Convergence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="redis-orchestrator",
        description="Keep a catalog of Redis Lua scripts and Functions loaded on every node of a cluster.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--config", default="config.yaml", help="config file (default: ./config.yaml)")
    parser.add_argument(
        "--seed", action="append", default=None, metavar="HOST:PORT", help="seed node; repeatable; replaces redis.seeds"
    )
    parser.add_argument("--log-format", choices=("text", "json"), default="text", help="log lines on stderr")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    def with_format(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--format", choices=("text", "json"), default="text")
        return p

    check = verbs.add_parser(
        "check",
        help="offline: validate the config and analyse every script; or lint .lua files and folders (no config)",
    )
    check.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help=".lua files and folders to lint without a config (each file a script named after it, a "
        "'#!lua name=' file a function library); none: the config's catalog",
    )
    # Also after the verb, so that hooks and CI steps can append it (`check --config deploy/config.yaml`).
    check.add_argument("--config", default=argparse.SUPPRESS, help="config file (as before the verb)")
    check.add_argument("--format", choices=("text", "json", "sarif", "github", "junit"), default="text")
    check.add_argument(
        "--fail-on",
        choices=("error", "warning"),
        default="error",
        help="the findings that exit 1 (default: error; info never does)",
    )
    check.add_argument(
        "--baseline",
        metavar="FILE",
        help="accept the findings recorded in FILE and report only new ones; a missing FILE is recorded now",
    )
    check.add_argument(
        "--servers",
        type=_servers,
        default=frozenset({"redis", "valkey"}),
        metavar="redis,valkey",
        help="the servers the scripts may run on (default: both): a global only one of them has is flagged",
    )
    check.add_argument(
        "--same-slot",
        choices=("info", "warning", "error"),
        default="info",
        help="severity of an undeclared key that carries a declared key's hash tag (default: info)",
    )
    check.add_argument(
        "--write-keys",
        action="store_true",
        help="write the suggested declarations: keys:/argv: into the config for entries that declare none, "
        "or (with PATHs) '-- redis-orchestrator:' comments at the top of each script",
    )
    with_format(verbs.add_parser("plan", help="what each node needs; writes nothing"))
    verbs.add_parser("sync", help="one pass: load what is missing on every reachable node")
    with_format(verbs.add_parser("status", help="per node: reachable, scripts present / missing"))
    run = verbs.add_parser("run", help="the daemon: reconcile continuously until SIGTERM / SIGINT")
    embedded = run.add_mutually_exclusive_group()
    embedded.add_argument(
        "--local-cluster",
        action="store_true",
        help="start a throwaway 3+3 cluster from redis-server on free loopback ports and run against it",
    )
    embedded.add_argument(
        "--local-sentinel",
        action="store_true",
        help="start a throwaway primary, 2 replicas and 3 Sentinels from redis-server on free loopback "
        "ports and run against them (sentinel mode)",
    )
    run.add_argument("--no-metrics", action="store_true", help="do not serve /metrics, /healthz, /readyz")
    run.add_argument(
        "--web.config.file",
        dest="web_config_file",
        metavar="PATH",
        help="TLS and basic auth for the metrics endpoint, in exporter-toolkit's web config format "
        "(replaces metrics.web_config_file)",
    )
    manifest = verbs.add_parser("manifest", help="print name -> version -> SHA (and function names) as JSON")
    manifest.add_argument("--no-sources", action="store_true", help="leave each script's source out")
    keyslot = with_format(verbs.add_parser("keyslot", help="each key's hash slot and tag; whether they share one slot"))
    keyslot.add_argument("keys", nargs="+", metavar="KEY")
    prune = verbs.add_parser(
        "prune",
        help="drop retired script versions: SCRIPT FLUSH + reload, one node at a time (opt-in)",
        description="Drop retired script versions from every node's script cache: SCRIPT FLUSH and SCRIPT LOAD "
        "of the live catalog in one MULTI/EXEC, one node at a time. A flush empties the whole cache, so a node "
        "that also holds scripts the catalog does not know (another application's, or EVAL'd bodies) is left "
        "as it is, and named, unless --flush-unknown-scripts. Exit 0: nothing (left) to prune; 1: something "
        "to prune, left alone or failed.",
    )
    prune.add_argument("--yes", action="store_true", help="really do it (without it: show what would happen)")
    prune.add_argument(
        "--flush-unknown-scripts",
        action="store_true",
        help="also flush nodes holding scripts not in the catalog: those scripts are lost, and their callers "
        "get NOSCRIPT until they load them again",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.setup(args.log_format)
    try:
        return _dispatch(args)
    except OrchestratorError as exc:
        print(f"redis-orchestrator: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.verb == "keyslot":
        return _keyslot(args, _configured_mode(args.config))
    if args.verb == "run":
        from redis_orchestrator.daemon.service import run_daemon

        return run_daemon(args)
    if args.verb == "check":
        return _check(args)
    config = load_config(args.config, args.seed)
    if args.verb == "manifest":
        print(json.dumps(config.catalog.manifest(include_sources=not args.no_sources), indent=2, sort_keys=True))
        return EXIT_CLEAN
    if args.verb == "prune":
        return _prune(config, really=args.yes, flush_unknown=args.flush_unknown_scripts)
    return _online(args, config)


# ---------------------------------------------------------------------- check / keyslot


def _configured_mode(path: str) -> Mode | None:
    """redis.mode of the config file, when there is a valid one (keyslot needs no config)."""
    try:
        return load_config(path).start.redis.mode
    except ConfigError:
        return None


def _slots_note(mode: Mode | None, what: str) -> str | None:
    """Hash slots mean something only in Redis Cluster: say so when the config is for another mode."""
    if mode is None or mode == Mode.CLUSTER:
        return None
    return (
        f"note: redis.mode is {mode}: {what} matter only in Redis Cluster; here one primary serves every "
        "key, so keys need not share a slot (they must if you move to Cluster)"
    )


def _servers(text: str) -> frozenset[str]:
    servers = frozenset(part.strip() for part in text.split(",") if part.strip())
    if not servers or not servers <= {"redis", "valkey"}:
        raise argparse.ArgumentTypeError(f"{text!r}: name redis, valkey or both (redis,valkey)")
    return servers


def _check(args: argparse.Namespace) -> int:
    """The config's catalog, or the PATHs given without a config (analysis/lint.py does the work)."""
    from redis_orchestrator.analysis import Analyzer
    from redis_orchestrator.analysis.checks import CatalogAnalysis
    from redis_orchestrator.analysis.findings import Severity
    from redis_orchestrator.analysis.key_suggestions import write_directives, write_key_patterns
    from redis_orchestrator.analysis.lint import against_baseline, lint_catalog, lint_files, render

    analyzer = Analyzer(same_slot_severity=Severity(args.same_slot), servers=args.servers)
    note = None
    if args.paths:
        report = lint_files(analyzer, args.paths)
        if args.write_keys:
            for s in report.suggestions:
                print(f"write-keys: {write_directives(Path(s.file), s.patterns)}", file=sys.stderr)
            report = lint_files(analyzer, args.paths)
        summary = f"{len(report.checked)} script(s) checked"
    else:
        config = load_config(args.config, args.seed)
        analysis = CatalogAnalysis(analyzer)
        report = lint_catalog(analysis, config.catalog, config.path.parent)
        if args.write_keys:
            # Write the suggestions, then check the config as it now reads.
            written = write_key_patterns(config.path, report.suggestions) or ["no entry needs suggested keys:"]
            for line in written:
                print(f"write-keys: {line}", file=sys.stderr)
            config = load_config(config.path, list(config.start.redis.seeds))
            report = lint_catalog(analysis, config.catalog, config.path.parent)
        summary = f"{config.path}: catalog {config.catalog.version}: {len(report.checked)} live entries"
        note = _slots_note(
            config.start.redis.mode,
            "the slot findings (cross-slot, undeclared-key, same-slot-undeclared, enumeration, no-cluster)",
        )
    if args.baseline:
        report = against_baseline(report, Path(args.baseline))
    fail_on = Severity(args.fail_on)
    sys.stdout.write(render(report, args.format, fail_on, summary))
    if note:
        print(note, file=sys.stderr if args.format != "text" else sys.stdout)
    return EXIT_FINDINGS if report.fails(fail_on) else EXIT_CLEAN


def _keyslot(args: argparse.Namespace, mode: Mode | None) -> int:
    from redis_orchestrator.analysis import keyslot_report

    report = keyslot_report(args.keys)
    note = _slots_note(mode, "hash slots")
    if args.format == "json":
        print(json.dumps({**report.to_dict(), **({"note": note} if note else {})}, indent=2))
    else:
        print(report.to_text())
        if note:
            print(note)
    return EXIT_CLEAN if report.same_slot else EXIT_FINDINGS


# ---------------------------------------------------------------------- plan / sync / status


def _online(args: argparse.Namespace, config: Config) -> int:
    """plan / sync / status: passes until the deployment settles (reconcile/settle.py)."""
    from redis_orchestrator.reconcile.settle import settle_deployment

    result = asyncio.run(
        settle_deployment(
            config.start.redis,
            config.catalog,
            write=args.verb == "sync",
            delete_unlisted=config.desired.functions.delete_unlisted,
            on_note=lambda note: print(f"warning: {note}", file=sys.stderr),  # Sentinels that disagree, a stray primary
        )
    )
    reports = list(result.reports.values())
    if args.verb == "plan":
        return _print_plan(reports, args.format)
    if args.verb == "status":
        return _print_status(reports, config, args.format)
    return _print_sync(result)


def _node_dict(report: NodeReport) -> dict[str, Any]:
    return {
        "node": report.node.address,
        "role": report.node.role,
        "reachable": report.reachable,
        "answered": report.state.answered,
        "state": report.state,
        "error": report.error,
    }


def _print_plan(reports: list[NodeReport], fmt: str) -> int:
    pending = False
    rows = []
    for report in reports:
        row = _node_dict(report)
        plan = report.plan
        row["load_scripts"] = [s.label for s in plan.load_scripts] if plan else []
        row["load_functions"] = [s.label for s in plan.load_functions] if plan else []
        row["delete_libraries"] = list(plan.delete_libraries) if plan else []
        row["in_sync"] = bool(report.state == NodeState.OK and plan and plan.in_sync)
        pending = pending or not row["in_sync"]
        rows.append(row)
    if fmt == "json":
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            head = f"{row['node']:<22} {row['role']:<8}"
            if not row["answered"]:
                print(f"{head} cannot plan: {row['error']}")
            elif row["in_sync"]:
                print(f"{head} in sync")
            else:
                actions = [f"SCRIPT LOAD {label}" for label in row["load_scripts"]]
                actions += [f"FUNCTION LOAD REPLACE {label}" for label in row["load_functions"]]
                actions += [f"FUNCTION DELETE {name}" for name in row["delete_libraries"]]
                print(f"{head} {len(actions)} change(s): {', '.join(actions)}")
        changed = sum(1 for r in rows if not r["in_sync"])
        print(f"{changed} of {len(rows)} node(s) need changes" if changed else f"all {len(rows)} nodes in sync")
    return EXIT_FINDINGS if pending else EXIT_CLEAN


def _print_status(reports: list[NodeReport], config: Config, fmt: str) -> int:
    wanted = len(config.catalog.scripts)
    rows = []
    for report in reports:
        row = _node_dict(report)
        missing = report.missing_after if report.plan else ()
        row["scripts_present"] = len(report.present)
        row["scripts_wanted"] = wanted
        row["missing"] = [s.label for s in missing]
        row["in_sync"] = report.in_sync
        rows.append(row)
    if fmt == "json":
        print(json.dumps({"catalog_version": config.catalog.version, "nodes": rows}, indent=2))
    else:
        print(
            f"catalog {config.catalog.version}: {wanted} script(s), "
            f"{len(config.catalog.functions)} function library(ies)"
        )
        print(f"{'NODE':<22} {'ROLE':<8} {'REACHABLE':<9} {'SCRIPTS':<9} MISSING")
        for row in rows:
            reach = "yes" if row["answered"] else "no"
            scripts = f"{row['scripts_present']}/{wanted}" if reach == "yes" else "-"
            detail = ", ".join(row["missing"]) or "-" if reach == "yes" else row["error"]
            print(f"{row['node']:<22} {row['role']:<8} {reach:<9} {scripts:<9} {detail}")
    return EXIT_CLEAN if all(r["in_sync"] for r in rows) else EXIT_FINDINGS


def _print_sync(result: Convergence) -> int:
    refused: dict[str, str] = {}
    unreachable = []
    loads = 0
    reports = list(result.reports.values())
    for report in reports:
        loaded = result.loaded(report.node.address)
        loads += len(loaded)
        if not report.state.answered:
            unreachable.append(f"{report.node}: {report.error}")
        for failure in report.failures:
            refused.setdefault(f"{failure.script.label} ({failure.script.file})", failure.message)
        if loaded:
            labels = ", ".join(s.label for s in loaded)
            print(f"{report.node.address:<22} {report.node.role:<8} loaded {labels}")
    for node in unreachable:
        print(f"warning: not synced, {node}", file=sys.stderr)
    for script, message in refused.items():
        print(f"error: Redis refused {script}: {message}", file=sys.stderr)
    reachable = [r for r in reports if r.state.answered]
    in_sync = [r for r in reachable if r.in_sync]
    print(f"{len(in_sync)} of {len(reports)} node(s) hold the catalog; {loads} load(s) this run")
    if refused or not reachable or len(in_sync) < len(reachable):
        return EXIT_FINDINGS
    return EXIT_CLEAN


# ---------------------------------------------------------------------- prune


def _prune(config: Config, really: bool, flush_unknown: bool) -> int:
    from redis_orchestrator.reconcile.prune import Decision, describe_survey, live_count, prune_cluster

    outcomes = asyncio.run(prune_cluster(config, really, flush_unknown))
    pending = failed = kept = 0
    for outcome in outcomes:
        head = f"{outcome.node.address:<22} {outcome.node.role:<8}"
        survey = outcome.survey
        if survey is None:
            failed += 1
            print(f"{head} cannot prune: {outcome.error}", file=sys.stderr)
            continue
        if outcome.decision == Decision.NOTHING:
            unknown = f"; {survey.foreign} not in the catalog, kept" if survey.foreign else ""
            print(f"{head} nothing to prune ({survey.cached} cached script(s){unknown})")
            continue
        if outcome.decision == Decision.KEEP_UNKNOWN:
            kept += 1
            retired = ", ".join(s.label for s in survey.retired_present)
            print(
                f"{head} will not flush: it holds {survey.foreign} script(s) not in the catalog (another "
                "application's, or EVAL'd), which a flush would drop too, and their callers would get NOSCRIPT; "
                f"retired {retired} stay cached. --flush-unknown-scripts flushes them anyway"
            )
            continue
        result = outcome.result
        if result is None:
            pending += 1
            print(
                f"{head} would flush {survey.cached} cached script(s): {describe_survey(survey)}; "
                f"then reload {live_count(config.catalog)} live script(s) in the same MULTI/EXEC"
            )
            continue
        failed += bool(result.errors)
        print(
            f"{head} pruned {describe_survey(survey)}: {survey.cached} -> {result.cached_after} cached; "
            f"node busy {result.blocked_ms:.1f} ms; NOSCRIPT window {result.window_ms:.1f} ms "
            f"({result.probes_missing} of {result.probes} probe(s) saw a live script missing)"
            + (f"; errors: {'; '.join(result.errors)}" if result.errors else "")
        )
    if kept:
        print(
            f"{kept} of {len(outcomes)} node(s) left as they are: other applications' scripts would be flushed "
            "with the retired versions"
        )
    if not really:
        if pending:
            print(
                f"{pending} of {len(outcomes)} node(s) have scripts to prune; "
                "run `prune --yes` to flush and reload them one at a time"
            )
        elif not kept:
            print(f"nothing to prune on {len(outcomes) - failed} node(s)")
        return EXIT_FINDINGS if pending or failed or kept else EXIT_CLEAN
    return EXIT_FINDINGS if failed or kept else EXIT_CLEAN


if __name__ == "__main__":
    raise SystemExit(main())

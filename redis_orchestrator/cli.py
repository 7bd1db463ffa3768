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

    check = with_format(verbs.add_parser("check", help="offline: validate the config and analyse every script"))
    check.add_argument(
        "--same-slot",
        choices=("info", "warning", "error"),
        default="info",
        help="severity of an undeclared key that carries a declared key's hash tag (default: info)",
    )
    check.add_argument(
        "--write-keys",
        action="store_true",
        help="write the suggested keys:/argv: patterns into the config for entries that declare none",
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
    manifest = verbs.add_parser("manifest", help="print name -> version -> SHA (and function names) as JSON")
    manifest.add_argument("--no-sources", action="store_true", help="leave each script's source out")
    keyslot = with_format(verbs.add_parser("keyslot", help="each key's hash slot and tag; whether they share one slot"))
    keyslot.add_argument("keys", nargs="+", metavar="KEY")
    prune = verbs.add_parser(
        "prune", help="drop retired script versions: SCRIPT FLUSH + reload, one node at a time (opt-in)"
    )
    prune.add_argument("--yes", action="store_true", help="really do it (without it: show what would happen)")
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
    config = load_config(args.config, args.seed)
    if args.verb == "check":
        return _check(config, args.format, args.same_slot, args.write_keys)
    if args.verb == "manifest":
        print(json.dumps(config.catalog.manifest(include_sources=not args.no_sources), indent=2, sort_keys=True))
        return EXIT_CLEAN
    if args.verb == "prune":
        return _prune(config, really=args.yes)
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


def _check(config: Config, fmt: str, same_slot: str = "info", write_keys: bool = False) -> int:
    from redis_orchestrator.analysis import Analyzer, format_json, format_text
    from redis_orchestrator.analysis.checks import CatalogAnalysis
    from redis_orchestrator.analysis.findings import Severity
    from redis_orchestrator.analysis.key_suggestions import suggestions_yaml, write_key_patterns

    analysis = CatalogAnalysis(Analyzer(same_slot_severity=Severity(same_slot)))
    result = analysis.run(config.catalog)
    if write_keys:
        # Write the suggestions, then check the config as it now reads.
        for line in write_key_patterns(config.path, result.suggestions) or ["no entry needs suggested keys:"]:
            print(f"write-keys: {line}", file=sys.stderr)
        config = load_config(config.path, list(config.start.redis.seeds))
        result = analysis.run(config.catalog)
    findings = sorted(result.findings, key=lambda f: (f.file, f.line, f.column, f.code))
    note = _slots_note(
        config.start.redis.mode,
        "the slot findings (cross-slot, undeclared-key, same-slot-undeclared, enumeration, no-cluster)",
    )
    if fmt == "json":
        print(format_json(findings))
        if note:
            print(note, file=sys.stderr)
    else:
        if findings:
            print(format_text(findings))
        if result.suggestions:
            print(suggestions_yaml(result.suggestions))
        live = [e for e in config.catalog.entries if e.live]
        print(
            f"{config.path}: catalog {config.catalog.version}: {len(live)} live entries, "
            f"{result.count(Severity.ERROR)} error(s), {result.count(Severity.WARNING)} warning(s), "
            f"{result.count(Severity.INFO)} note(s)"
        )
        if note:
            print(note)
    return EXIT_FINDINGS if result.count(Severity.ERROR) else EXIT_CLEAN


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


def _prune(config: Config, really: bool) -> int:
    from redis_orchestrator.reconcile.prune import describe_survey, live_count, prune_cluster

    outcomes = asyncio.run(prune_cluster(config, really))
    pending = failed = 0
    for outcome in outcomes:
        head = f"{outcome.node.address:<22} {outcome.node.role:<8}"
        survey = outcome.survey
        if survey is None:
            failed += 1
            print(f"{head} cannot prune: {outcome.error}", file=sys.stderr)
            continue
        if not survey.needs_prune:
            print(f"{head} nothing to prune ({survey.cached} cached script(s))")
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
    if not really:
        if pending:
            print(
                f"{pending} of {len(outcomes)} node(s) have scripts to prune; "
                "run `prune --yes` to flush and reload them one at a time"
            )
        else:
            print(f"nothing to prune on {len(outcomes) - failed} node(s)")
        return EXIT_FINDINGS if pending or failed else EXIT_CLEAN
    return EXIT_FINDINGS if failed else EXIT_CLEAN


if __name__ == "__main__":
    raise SystemExit(main())

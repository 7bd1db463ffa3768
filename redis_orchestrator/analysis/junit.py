"""Findings as JUnit XML, for CI systems that show test reports: one testcase per script, one
failure per finding at or above `--fail-on` (the others are listed in the testcase's system-out).

    <testsuites name="redis-orchestrator check" tests="2" failures="1" errors="0">
      <testsuite name="redis-orchestrator check" tests="2" failures="1" errors="0" skipped="0">
        <testcase classname="lua.queue" name="add-job@3" file="lua/queue/add_job.lua">
          <failure type="undeclared-key" message="lua/queue/add_job.lua:12:5: INCRBY key #1 is ...">
            error[undeclared-key] ... help: ...</failure>
        </testcase>
        <testcase classname="lua.queue" name="move@1" file="lua/queue/move.lua"/>
      </testsuite>
    </testsuites>
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import PurePath

from redis_orchestrator.analysis.findings import Finding, Severity

SUITE = "redis-orchestrator check"


def format_junit(scripts: Sequence[tuple[str, str]], findings: Sequence[Finding], fail_on: Severity) -> str:
    """`scripts`: (label, file) of every script checked, findings or not."""
    by_script: dict[tuple[str, str], list[Finding]] = {key: [] for key in scripts}
    for f in findings:
        by_script.setdefault((f.label, f.file), []).append(f)
    suites = ET.Element("testsuites", name=SUITE)
    suite = ET.SubElement(suites, "testsuite", name=SUITE)
    failed = 0
    for (label, file), found in by_script.items():
        classname = ".".join(PurePath(file).with_suffix("").parts[:-1]) or "scripts"
        case = ET.SubElement(suite, "testcase", classname=classname, name=label, file=file)
        failing = [f for f in found if f.severity.at_least(fail_on)]
        failed += bool(failing)
        for f in failing:
            failure = ET.SubElement(case, "failure", type=f.code, message=f"{f.file}:{f.line}:{f.column}: {f.message}")
            failure.text = _text(f)
        others = [f for f in found if not f.severity.at_least(fail_on)]
        if others:
            ET.SubElement(case, "system-out").text = "\n".join(_text(f) for f in others)
    for element in (suites, suite):
        element.set("tests", str(len(by_script)))
        element.set("failures", str(failed))
        element.set("errors", "0")
    suite.set("skipped", "0")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _text(f: Finding) -> str:
    line = f"{f.file}:{f.line}:{f.column}: {f.severity}[{f.code}] {f.message}"
    return line + (f"\nhelp: {f.suggestion}" if f.suggestion else "")

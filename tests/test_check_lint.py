"""`check` as the linter a CI keeps on: config-free paths, suppressions, --fail-on, baselines, and
every output format checked the way its consumer reads it (SARIF against the 2.1.0 spec's required
structure, GitHub workflow commands, JUnit XML parsed)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from redis_orchestrator.cli import main

# Three shapes: an ARGV prefix (a warning: it may carry the tag), a fixed key (an error with its slot),
# and a key built from KEYS[1] (a warning naming keys:).
QUEUE = """\
-- KEYS[1] 'wait' list
-- ARGV[1] job key prefix
local id = redis.call('RPOP', KEYS[1])
redis.call('HSET', ARGV[1] .. id, 'state', 'active')
redis.call('INCR', 'stats:popped')
return redis.call('EXPIRE', KEYS[1] .. ':seen', 60)
"""
CLEAN = "return redis.call('GET', KEYS[1])\n"
LIBRARY = """\
#!lua name=counters
local function incr(keys, args)
  return server.call('INCRBY', keys[1], args[1])
end
redis.register_function('counter_incr', incr)
"""


@pytest.fixture
def scripts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with Lua scripts and no config; the commands run from its root, as CI would."""
    (tmp_path / "lua" / "queue").mkdir(parents=True)
    (tmp_path / "lua" / "queue" / "pop.lua").write_text(QUEUE)
    (tmp_path / "lua" / "get.lua").write_text(CLEAN)
    (tmp_path / "lua" / "counters.lua").write_text(LIBRARY)
    (tmp_path / "lua" / ".hidden").mkdir()
    (tmp_path / "lua" / ".hidden" / "skipped.lua").write_text("x = = 1\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["check", *args])
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------------- paths without a config


def test_folders_and_files_are_linted_without_a_config(scripts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "lua")
    assert code == 1  # the fixed key is an error
    assert "lua/queue/pop.lua:5:20: error[undeclared-key] (pop) INCR key #1 is the string literal 'stats:popped'" in out
    assert "always in slot" in out
    assert "lua/queue/pop.lua:4:20: warning[undeclared-key] (pop)" in out
    # A `#!lua name=` file is a function library, named after its library; server.call is Valkey's.
    assert "lua/counters.lua:3:10: error[portability] (counters)" in out and "Valkey >= 8" in out
    assert "skipped.lua" not in out  # hidden folders are not walked
    assert "3 script(s) checked, 2 error(s), 2 warning(s), 0 note(s)" in out
    # The declarations that decide the warnings, ready to paste into the script.
    assert "# lua/queue/pop.lua" in out
    assert '-- redis-orchestrator: argv: ["ARGV[1] = {<tag>}:<job-prefix>"]' in out
    assert run(capsys, "lua/get.lua")[0] == 0


def test_servers_valkey_accepts_server_call(scripts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "lua/counters.lua")[0] == 1
    code, out, _ = run(capsys, "lua/counters.lua", "--servers", "valkey")
    assert code == 0 and "portability" not in out
    with pytest.raises(SystemExit) as usage:
        main(["check", "lua/counters.lua", "--servers", "mongo"])
    assert usage.value.code == 2 and "name redis, valkey or both" in capsys.readouterr().err


def test_a_missing_path_is_a_usage_error_naming_it(scripts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "lua", "nope.lua", "gone/")
    assert code == 2
    assert "nope.lua: no such file or folder" in err and "gone/: no such file or folder" in err


def test_fail_on_warning(scripts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (scripts / "lua" / "queue" / "pop.lua").write_text(QUEUE.replace("'stats:popped'", "KEYS[2]"))
    assert run(capsys, "lua/queue")[0] == 0
    assert run(capsys, "lua/queue", "--fail-on", "warning")[0] == 1


def test_write_keys_writes_directives_that_decide_the_warnings(
    scripts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pop = scripts / "lua" / "queue" / "pop.lua"
    pop.write_text("#!lua\n" + QUEUE.replace("'stats:popped'", "KEYS[2]"))
    code, _, err = run(capsys, "lua/queue", "--write-keys", "--fail-on", "warning")
    assert "write-keys: lua/queue/pop.lua: wrote keys:" in err
    text = pop.read_text()
    assert text.startswith('#!lua\n-- redis-orchestrator: keys: ["{<tag>}:wait", "{<tag>}:k2"]\n')
    assert '-- redis-orchestrator: argv: ["ARGV[1] = {<tag>}:<job-prefix>"]\n' in text
    # Declared, both keys are proved to be in KEYS[1]'s slot: notes only.
    assert code == 0
    code, out, _ = run(capsys, "lua/queue", "--fail-on", "warning")
    assert code == 0 and "0 error(s), 0 warning(s), 2 note(s)" in out
    assert run(capsys, "lua/queue", "--write-keys")[2] == ""  # nothing left to declare


# ---------------------------------------------------------------------- suppressions


def test_suppressions_silence_their_line_and_unused_ones_are_reported(
    scripts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pop = scripts / "lua" / "queue" / "pop.lua"
    lines = QUEUE.splitlines()
    lines[3] += "  -- redis-orchestrator: ignore undeclared-key  the prefix carries the queue's tag"
    lines.insert(4, "-- redis-orchestrator: ignore undeclared-key,enumeration  counted elsewhere")
    lines.append("-- redis-orchestrator: ignore global-write")
    lines.append("-- redis-orchestrator: ignore no-such-code")
    pop.write_text("\n".join(lines) + "\n")
    code, out, _ = run(capsys, "lua/queue/pop.lua", "--fail-on", "warning")
    assert "pop.lua:4:" not in out and "pop.lua:6:" not in out  # both silenced
    unused = re.findall(r"pop\.lua:(\d+):1: warning\[unused-suppression\] \(pop\) ([^\n]*)", out)
    assert [line for line, _ in unused] == ["5", "8", "9"]
    assert "nothing is reported as enumeration on line 6" in unused[0][1]
    assert "nothing is reported as global-write" in unused[1][1]
    assert "'no-such-code' is not a code of the check" in unused[2][1]
    assert "2 suppressed by comments" in out
    assert code == 1  # unused suppressions are warnings


def test_an_unreadable_directive_is_an_error(scripts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (scripts / "bad.lua").write_text("-- redis-orchestrator: keys: notalist\n-- redis-orchestrator: ignore\n" + CLEAN)
    code, out, _ = run(capsys, "bad.lua")
    assert code == 1
    assert "bad.lua:1:1: error[directive]" in out and "bad.lua:2:1: error[directive]" in out


# ---------------------------------------------------------------------- baseline


def test_baseline_fails_only_on_new_findings_matched_by_expression_not_line(
    scripts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = scripts / "check-baseline.json"
    code, out, _ = run(capsys, "lua", "--baseline", str(baseline), "--fail-on", "warning")
    assert code == 0 and "baseline recorded in" in out and "(4 finding(s) accepted from now on)" in out
    recorded = json.loads(baseline.read_text())
    assert {(e["script"], e["code"]) for e in recorded["findings"]} >= {("pop", "undeclared-key")}

    # Lines added above every finding do not revive them.
    pop = scripts / "lua" / "queue" / "pop.lua"
    pop.write_text("-- a header a colleague added\n\n" + QUEUE)
    code, out, _ = run(capsys, "lua", "--baseline", str(baseline), "--fail-on", "warning")
    assert code == 0 and "4 accepted by the baseline" in out and "error[" not in out

    # A new key outside KEYS is reported, alone; a fixed one shrinks the baseline.
    pop.write_text(
        QUEUE.replace("'stats:popped'", "KEYS[2]").replace("return ", "redis.call('DEL', 'tmp:' .. ARGV[2])\nreturn ")
    )
    code, out, _ = run(capsys, "lua", "--baseline", str(baseline))
    assert code == 1
    assert re.findall(r"^\S+: (\w+)\[", out, re.MULTILINE) == ["error"]
    assert "'tmp:' .. ARGV[2]" in out and "(1 of its entries are fixed" in out


def test_a_broken_baseline_is_a_usage_error(scripts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (scripts / "b.json").write_text("{not json")
    code, _, err = run(capsys, "lua", "--baseline", "b.json")
    assert code == 2 and "cannot read the baseline" in err and "delete it to record a new one" in err


# ---------------------------------------------------------------------- SARIF 2.1.0


LEVELS = {"none", "note", "warning", "error"}


def sarif_problems(log: Any) -> list[str]:
    """The structure SARIF 2.1.0 (OASIS, 2020-03-27) requires of what we emit: §3.13 sarifLog
    (version, runs), §3.14 run (tool), §3.18 tool (driver), §3.19 toolComponent (name), §3.49
    reportingDescriptor (id), §3.11 multiformatMessageString (text), §3.27 result (message; ruleIndex
    pointing at the rule named ruleId; level), §3.28 location, §3.29 physicalLocation, §3.30 region
    (1-based lines and columns), §3.55 fix (artifactChanges, at least one), §3.56 artifactChange
    (artifactLocation, replacements, at least one), §3.57 replacement (deletedRegion)."""
    problems: list[str] = []

    def need(cond: bool, what: str) -> None:
        if not cond:
            problems.append(what)

    need(log.get("version") == "2.1.0", "sarifLog.version must be '2.1.0'")
    need(isinstance(log.get("runs"), list) and log["runs"], "sarifLog.runs must be a non-empty array")
    for r, run_ in enumerate(log.get("runs") or []):
        driver = run_.get("tool", {}).get("driver")
        need(isinstance(driver, dict), f"runs[{r}].tool.driver is required")
        driver = driver or {}
        need(isinstance(driver.get("name"), str) and driver["name"], f"runs[{r}].tool.driver.name is required")
        rules = driver.get("rules", [])
        ids = [rule.get("id") for rule in rules]
        need(all(isinstance(i, str) and i for i in ids) and len(set(ids)) == len(ids), "rule ids: unique strings")
        for rule in rules:
            for prop in ("shortDescription", "fullDescription", "help"):
                if prop in rule:
                    need(isinstance(rule[prop].get("text"), str), f"rule {rule['id']}.{prop}.text is required")
            level = rule.get("defaultConfiguration", {}).get("level", "warning")
            need(level in LEVELS, f"rule {rule['id']}: level {level!r}")
        need(run_.get("columnKind", "utf16CodeUnits") in ("utf16CodeUnits", "unicodeCodePoints"), "columnKind")
        for inv in run_.get("invocations", []):
            need(isinstance(inv.get("executionSuccessful"), bool), "invocation.executionSuccessful is required")
        for n, result in enumerate(run_.get("results", [])):
            where = f"runs[{r}].results[{n}]"
            message = result.get("message", {})
            need("text" in message or "id" in message, f"{where}.message needs text or id")
            need(result.get("level", "warning") in LEVELS, f"{where}.level")
            if "ruleIndex" in result:
                index = result["ruleIndex"]
                need(0 <= index < len(rules) and rules[index]["id"] == result.get("ruleId"), f"{where}.ruleIndex")
            need(result.get("baselineState", "new") in ("new", "unchanged", "updated", "absent"), "baselineState")
            for loc in result.get("locations", []):
                physical = loc.get("physicalLocation", {})
                need("artifactLocation" in physical or "address" in physical, f"{where}: physicalLocation")
                need(isinstance(physical.get("artifactLocation", {}).get("uri"), str), f"{where}: uri")
                problems.extend(region_problems(physical.get("region", {}), where))
            for name, value in result.get("partialFingerprints", {}).items():
                need(isinstance(name, str) and isinstance(value, str), f"{where}.partialFingerprints")
            for fix in result.get("fixes", []):
                changes = fix.get("artifactChanges")
                need(isinstance(changes, list) and changes, f"{where}: fix.artifactChanges needs one item")
                for change in changes or []:
                    need(isinstance(change.get("artifactLocation", {}).get("uri"), str), f"{where}: change uri")
                    replacements = change.get("replacements")
                    need(isinstance(replacements, list) and replacements, f"{where}: replacements needs one item")
                    for rep in replacements or []:
                        need("deletedRegion" in rep, f"{where}: replacement.deletedRegion is required")
                        problems.extend(region_problems(rep.get("deletedRegion", {}), where))
                        if "insertedContent" in rep:
                            need(isinstance(rep["insertedContent"].get("text"), str), f"{where}: insertedContent")
    return problems


def region_problems(region: dict[str, Any], where: str) -> list[str]:
    bad = [
        f"{where}: region.{k} must be an integer >= 1"
        for k in ("startLine", "startColumn", "endLine", "endColumn")
        if k in region and not (isinstance(region[k], int) and region[k] >= 1)
    ]
    one_line = region.get("endLine", region.get("startLine")) == region.get("startLine")
    if one_line and region.get("endColumn", 1 << 30) < region.get("startColumn", 1):
        bad.append(f"{where}: region ends before it starts")
    return bad


def test_sarif_has_the_required_structure_rules_locations_and_fixes(
    scripts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "lua", "--format", "sarif")
    assert code == 1
    log = json.loads(out)
    assert sarif_problems(log) == []
    [sarif_run] = log["runs"]
    rules = {rule["id"]: rule for rule in sarif_run["tool"]["driver"]["rules"]}
    assert {"undeclared-key", "portability", "unused-suppression"} <= set(rules)
    assert (
        rules["undeclared-key"]["help"]["text"] and rules["undeclared-key"]["defaultConfiguration"]["level"] == "error"
    )
    results = sarif_run["results"]
    by_line = {
        (
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
        ): r
        for r in results
    }
    fixed_key = by_line[("lua/queue/pop.lua", 5)]
    assert (fixed_key["ruleId"], fixed_key["level"]) == ("undeclared-key", "error")
    assert fixed_key["locations"][0]["physicalLocation"]["region"]["startColumn"] == 20
    assert "fixes" not in fixed_key  # nothing to declare: the key must move into KEYS
    prefix = by_line[("lua/queue/pop.lua", 4)]
    assert prefix["level"] == "warning" and "help: declare what ARGV[1] holds" in prefix["message"]["text"]
    [fix] = prefix["fixes"]
    [change] = fix["artifactChanges"]
    [replacement] = change["replacements"]
    assert change["artifactLocation"]["uri"] == "lua/queue/pop.lua"
    assert replacement["deletedRegion"] == {"startLine": 1, "startColumn": 1, "endColumn": 1}
    assert '-- redis-orchestrator: argv: ["ARGV[1] = {<tag>}:<job-prefix>"]\n' in replacement["insertedContent"]["text"]
    assert by_line[("lua/counters.lua", 3)]["ruleId"] == "portability"
    # The same findings in the text format, one for one.
    text = run(capsys, "lua")[1]
    assert len(re.findall(r"^\S+:\d+:\d+: (?:error|warning|info)\[", text, re.MULTILINE)) == len(results)


def test_sarif_with_a_baseline_marks_results_new(scripts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "lua", "--baseline", "b.json")
    (scripts / "lua" / "new.lua").write_text("return redis.call('GET', 'config')\n")
    log = json.loads(run(capsys, "lua", "--baseline", "b.json", "--format", "sarif")[1])
    assert sarif_problems(log) == []
    [result] = log["runs"][0]["results"]
    assert result["baselineState"] == "new" and result["partialFingerprints"]["redisOrchestrator/v1"]


# ---------------------------------------------------------------------- GitHub workflow commands and JUnit


def test_github_format_is_one_workflow_command_per_finding(scripts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "lua", "--format", "github")
    assert code == 1
    commands = [line for line in out.splitlines() if line.startswith("::")]
    pattern = re.compile(r"^::(error|warning|notice) file=([^,:]+),line=(\d+),col=(\d+),title=([^,:]+)::(.+)$")
    parsed = [pattern.match(line) for line in commands]
    assert all(parsed) and len(parsed) == 4, commands
    assert ("error", "lua/queue/pop.lua", "5", "20") in {m.groups()[:4] for m in parsed if m}
    # Messages are one line: newlines and percent signs escaped as the runner expects.
    message = next(m.group(6) for m in parsed if m and m.group(3) == "4")
    assert "%0Ahelp: declare what ARGV[1] holds" in message and "\n" not in message
    assert out.splitlines()[-1].startswith("3 script(s) checked, 2 error(s)")


def test_junit_has_one_testcase_per_script_and_a_failure_per_finding(
    scripts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "lua", "--format", "junit")
    assert code == 1
    suites = ET.fromstring(out)
    assert suites.tag == "testsuites" and suites.get("tests") == "3" and suites.get("failures") == "2"
    [suite] = suites
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert set(cases) == {"pop", "get", "counters"}
    assert cases["get"].find("failure") is None
    pop_failures = cases["pop"].findall("failure")
    assert [f.get("type") for f in pop_failures] == ["undeclared-key"]  # the error; warnings are not failures
    assert pop_failures[0].get("message", "").startswith("lua/queue/pop.lua:5:20:")
    assert "warning[undeclared-key]" in (cases["pop"].findtext("system-out") or "")
    loud = ET.fromstring(run(capsys, "lua", "--format", "junit", "--fail-on", "warning")[1])
    assert len(list(loud.iter("failure"))) == 4


def test_json_keeps_its_shape_and_adds_subject_and_declaration(
    scripts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    findings = json.loads(run(capsys, "lua/queue", "--format", "json")[1])
    [prefix] = [f for f in findings if f["line"] == 4]
    assert prefix["subject"] == "HSET ARGV[1] .. <the reply of redis.call('RPOP')>"
    assert prefix["declare"].splitlines() == [
        'keys: ["{<tag>}:wait"]',
        'argv: ["ARGV[1] = {<tag>}:<job-prefix>"]',
    ]

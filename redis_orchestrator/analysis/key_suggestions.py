"""`check`'s suggested declarations: printed as a YAML block to paste beside each catalog entry, or
written (`check --write-keys`) into the config file right under each entry's first line, leaving
everything else (comments, order, quoting) exactly as the user wrote it; without a config, written
as `-- redis-orchestrator:` comments at the top of each script (after its `#!lua` line)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from redis_orchestrator.analysis.checks import EntrySuggestion
from redis_orchestrator.analysis.directives import read_directives
from redis_orchestrator.analysis.suggest import KeySuggestion
from redis_orchestrator.catalog.shebang import strip_shebang


def suggestions_yaml(suggestions: Sequence[EntrySuggestion]) -> str:
    """The suggested patterns as a YAML block to read (and paste) beside each entry."""
    lines = [
        "# Suggested keys: for entries that declare none. Each gives all of a call's keys one hash tag",
        "# {<tag>}, the cluster-safe convention: keep it if your key names follow it (adjust names and",
        "# placeholders to your naming), then `check` verifies the script against it.",
        "# Accept them as they are with: redis-orchestrator check --write-keys",
    ]
    for s in suggestions:
        origin = f"names from {' and '.join(s.patterns.sources)}" if s.patterns.sources else "placeholder names"
        lines.append(f"- name: {s.name}  # version {s.version}, {s.file}: {origin}")
        lines.extend(s.patterns.yaml_lines("  "))
        if s.patterns.stored:
            # Names read back from Redis have no catalog field: the script itself declares them.
            lines.append(f"  # and in {s.file}: {s.patterns.directive_lines()[-1]}")
    return "\n".join(lines) + "\n"


def write_directives(path: Path, suggestion: KeySuggestion) -> str:
    """Insert the suggested declarations as comments at the top of a script (after a `#!` line);
    kinds the script declares already are left alone. One line saying what was done."""
    source = path.read_bytes()
    present = read_directives(strip_shebang(source).decode("utf-8", "replace"))
    declared = {"keys": present.keys, "argv": present.argv, "stored": present.stored}
    wanted = [line for kind, line in suggestion.declarations() if declared[kind] is None]
    if not wanted:
        return f"{path}: not written (it declares these already)"
    text = source.decode("utf-8")
    head, newline, rest = text.partition("\n") if text.startswith("#!") else ("", "", text)
    block = "".join(f"-- redis-orchestrator: {line}\n" for line in wanted)
    path.write_text(head + newline + block + rest, encoding="utf-8")
    return f"{path}: wrote {'; '.join(wanted)}"


def write_key_patterns(path: Path, suggestions: Sequence[EntrySuggestion]) -> list[str]:
    """Insert each suggestion's `keys:` (and `argv:`) lines into the config file, right under the
    entry's first line, keeping everything else (comments, order) as written. Returns one line per
    entry saying what was done."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    inserts: list[tuple[int, list[str]]] = []
    report: list[str] = []
    for suggestion in suggestions:
        node = _entry_node(root, suggestion.name, suggestion.version)
        where = f"{suggestion.name}@{suggestion.version}"
        if node is None or node.flow_style or not node.value:
            report.append(f"{where}: not written (entry not found as a block mapping in {path})")
            continue
        if any(_scalar(key) in ("keys", "argv") for key, _ in node.value):
            report.append(f"{where}: not written (it already declares keys: or argv:)")
            continue
        first_key, first_value = node.value[0]
        if first_value.end_mark.line != first_key.start_mark.line:
            report.append(f"{where}: not written (its first key does not fit on one line)")
            continue
        indent = " " * first_key.start_mark.column
        new_lines = [line + "\n" for line in suggestion.patterns.yaml_lines(indent)]
        inserts.append((first_key.start_mark.line + 1, new_lines))
        report.append(f"{where}: wrote {', '.join(suggestion.patterns.yaml_lines())}")
    for at, new in sorted(inserts, reverse=True):
        if at > 0 and not lines[at - 1].endswith("\n"):
            lines[at - 1] += "\n"
        lines[at:at] = new
    if inserts:
        path.write_text("".join(lines), encoding="utf-8")
    return report


def _scalar(node: Any) -> str:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else ""


def _get(mapping: Any, key: str) -> Any:
    if isinstance(mapping, yaml.MappingNode):
        for k, v in mapping.value:
            if _scalar(k) == key:
                return v
    return None


def _entry_node(root: Any, name: str, version: str) -> yaml.MappingNode | None:
    """The mapping that holds `name`'s `version` (the entry itself, or its item under versions:)."""
    scripts = _get(_get(root, "catalog"), "scripts")
    if not isinstance(scripts, yaml.SequenceNode):
        return None
    for item in scripts.value:
        if _scalar(_get(item, "name")) != name:
            continue
        versions = _get(item, "versions")
        if isinstance(versions, yaml.SequenceNode):
            for vitem in versions.value:
                if isinstance(vitem, yaml.MappingNode) and _scalar(_get(vitem, "version")) == version:
                    return vitem
        elif isinstance(item, yaml.MappingNode) and _scalar(_get(item, "version")) == version:
            return item
    return None

"""How far `check`'s severities can be trusted, measured on third-party-shaped scripts.

tests/analysis_corpus/third_party/ holds scripts written for this project in the shapes of widely
used job queues, rate limiters, locks and schedulers, each analysed as a team adopting us would:
no config, nothing declared. Every key argument the check may flag carries a label at the end of
its line, from the project conventions its header states:

    redis.call('HSET', ARGV[1] .. id, ...) --@ safe argv-prefix     cannot fail: the prefix carries the tag
    redis.call('INCR', 'q:ids') --@ fails fixed-key                 fails in a cluster for some calls

The measures, per labelled line ("location"):
  error precision  of the locations reported as errors, the share that can really fail
  recall           of the locations that can really fail, the share reported (error or warning)

Run this file to print the table by shape:  .venv/bin/python tests/test_analysis_precision.py
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from redis_orchestrator.analysis import Analyzer, Finding

CORPUS = Path(__file__).parent / "analysis_corpus" / "third_party"
# The findings that say "this key can fail in a cluster"; the rest (enumeration, syntax...) are other matters.
SLOT_CODES = frozenset({"undeclared-key", "cross-slot"})
_LABEL = re.compile(r"--@\s+(fails|safe)\s+([\w-]+)")


@dataclass(frozen=True)
class Location:
    file: str
    line: int
    fails: bool
    shape: str


@dataclass
class Scores:
    locations: list[Location] = field(default_factory=list)
    reported: dict[tuple[str, int], str] = field(default_factory=dict)  # (file, line) -> worst severity
    unlabelled: list[Finding] = field(default_factory=list)

    def verdict(self, loc: Location) -> str:
        return self.reported.get((loc.file, loc.line), "none")

    @property
    def errors(self) -> list[Location]:
        return [loc for loc in self.locations if self.verdict(loc) == "error"]

    @property
    def error_precision(self) -> float:
        errors = self.errors
        return sum(loc.fails for loc in errors) / len(errors) if errors else 1.0

    @property
    def recall(self) -> float:
        failing = [loc for loc in self.locations if loc.fails]
        return sum(self.verdict(loc) != "none" for loc in failing) / len(failing)

    def by_shape(self) -> dict[tuple[str, bool], Counter[str]]:
        table: dict[tuple[str, bool], Counter[str]] = {}
        for loc in self.locations:
            table.setdefault((loc.shape, loc.fails), Counter())[self.verdict(loc)] += 1
        return table


def corpus_files() -> list[Path]:
    return sorted(CORPUS.rglob("*.lua"))


def labels(path: Path) -> list[Location]:
    name = str(path.relative_to(CORPUS))
    found = []
    for number, text in enumerate(path.read_text().splitlines(), 1):
        m = _LABEL.search(text)
        if m:
            found.append(Location(name, number, m.group(1) == "fails", m.group(2)))
    return found


def score(analyzer: Analyzer) -> Scores:
    scores = Scores()
    rank = {"warning": 1, "error": 2}
    for path in corpus_files():
        source = path.read_bytes()
        kind = "function" if source.startswith(b"#!lua name=") else "script"
        name = str(path.relative_to(CORPUS))
        locations = labels(path)
        scores.locations += locations
        labelled = {loc.line for loc in locations}
        for f in analyzer.analyze(source, script=path.stem, file=name, kind=kind):
            if f.code not in SLOT_CODES or f.severity not in rank:
                continue
            if f.line not in labelled:
                scores.unlabelled.append(f)
                continue
            known = scores.reported.get((name, f.line))
            if known is None or rank[f.severity] > rank[known]:
                scores.reported[(name, f.line)] = str(f.severity)
    return scores


@pytest.fixture(scope="module")
def scores() -> Scores:
    return score(Analyzer())


def test_the_corpus_is_large_and_mixed() -> None:
    files = corpus_files()
    assert len(files) >= 60
    locations = [loc for path in files for loc in labels(path)]
    assert sum(loc.fails for loc in locations) >= 60 and sum(not loc.fails for loc in locations) >= 60


def test_every_corpus_script_is_valid_lua(scores: Scores) -> None:
    analyzer = Analyzer()
    for path in corpus_files():
        source = path.read_bytes()
        kind = "function" if source.startswith(b"#!lua name=") else "script"
        bad = [f for f in analyzer.analyze(source, script="s", file=path.name, kind=kind) if f.code == "syntax"]
        assert bad == [], path


def test_every_slot_finding_is_on_a_labelled_line(scores: Scores) -> None:
    assert scores.unlabelled == [], "\n".join(f"{f.file}:{f.line}: {f.severity}[{f.code}]" for f in scores.unlabelled)


def test_errors_are_proofs_and_failures_are_not_missed(scores: Scores) -> None:
    """The issue's goals: error precision >= 0.90, recall (error or warning) >= 0.95."""
    missed = [
        f"{loc.file}:{loc.line} ({loc.shape})"
        for loc in scores.locations
        if loc.fails and scores.verdict(loc) == "none"
    ]
    wrong = [f"{loc.file}:{loc.line} ({loc.shape})" for loc in scores.errors if not loc.fails]
    assert scores.error_precision >= 0.90, wrong
    assert scores.recall >= 0.95, missed


def report(scores: Scores) -> str:
    lines = [f"{'shape':<18} {'truth':<6} {'n':>4} {'error':>6} {'warning':>8} {'none':>5}"]
    for (shape, fails), counts in sorted(scores.by_shape().items(), key=lambda i: (not i[0][1], i[0][0])):
        n = sum(counts.values())
        truth = "fails" if fails else "safe"
        lines.append(f"{shape:<18} {truth:<6} {n:>4} {counts['error']:>6} {counts['warning']:>8} {counts['none']:>5}")
    errors = scores.errors
    failing = [loc for loc in scores.locations if loc.fails]
    lines.append(
        f"{len(corpus_files())} scripts, {len(scores.locations)} locations ({len(failing)} can fail): "
        f"error precision {scores.error_precision:.2f} ({sum(e.fails for e in errors)} of {len(errors)} errors), "
        f"recall {scores.recall:.2f} ({sum(scores.verdict(f) != 'none' for f in failing)} of {len(failing)}); "
        f"{len(scores.unlabelled)} finding(s) on unlabelled lines"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(score(Analyzer())))

"""A YAML file parsed once, keeping where each value was written, so that every problem found later
(an unknown key, a bad duration, a missing script file) is reported as `config.yaml:12:5: ...`.

First a pass over the parser's events, before anything is built: it refuses a document that
expands to more than MAX_VALUES values (an alias counts as many values as it stands for: a
1,166-byte "billion laughs" file of nested aliases cost `check` 33 s, 8 GB and a 1.6 GB error
message) and duplicate keys (YAML keeps the last one silently, where an unknown key is an error).
Then one parse: libyaml composes the node tree (in C where PyYAML has it: several times faster than
the pure-Python parser on a big catalog), the safe constructor turns it into plain values, and the
tree is kept only to answer "where is catalog.scripts[3].file?" when a problem needs its place.

    catalog:                      ("catalog",)                    -> 1:1
      scripts:                    ("catalog", "scripts")          -> 2:3
        - name: transfer          ("catalog", "scripts", 0)       -> 3:7
          file: lua/x.lua         ("catalog", "scripts", 0, "file") -> 4:13 (its value; the key: 4:7)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from redis_orchestrator.errors import ConfigError, Problem, Where, render_where

# libyaml's parser when PyYAML was built with it; same safety (SafeConstructor) either way.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Values a config may expand to, aliases expanded. A catalog of 10,000 entries, each with keys and a
# description, is about 150,000; building a million takes about 300 MB here, and no more is built.
MAX_VALUES = 1_000_000

_MERGE_KEY = "<<"


def _at(path: Path, mark: Any) -> str:
    """`config.yaml:12:5` for a Mark (libyaml's or PyYAML's: 0-based line and column)."""
    return f"{path}:{mark.line + 1}:{mark.column + 1}"


class _Open:
    """A mapping or sequence whose end the event pass has not reached yet."""

    __slots__ = ("anchor", "before", "children", "key", "keys", "mapping")

    def __init__(self, mapping: bool, anchor: str | None, before: int) -> None:
        self.mapping = mapping
        self.anchor = anchor
        self.before = before  # values counted before it: its size is the count at its end, less this
        self.children = 0
        self.key: str | int | None = None  # the place of the child being read: its key, or its index
        self.keys: dict[str, Any] = {}  # key -> its Mark (libyaml's or PyYAML's)


_COLLECTION_START = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_COLLECTION_END = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


class _EventPass:
    """Counts the values the document expands to and finds duplicate keys, from the parser's events
    (nothing is built, so a bomb costs what its own text costs). About 0.1 s for a catalog of
    10,000 entries: it runs for every event, hence the plain loop."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[str] = []

    def run(self, loader: yaml.SafeLoader) -> list[str]:
        sizes: dict[str, int] = {}  # anchor -> the values it stands for
        stack: list[_Open] = []
        total = 0
        while (event := loader.get_event()) is not None:  # type: ignore[no-untyped-call]
            kind = type(event)
            if kind is yaml.ScalarEvent:
                total += 1
                if event.anchor is not None:
                    sizes[event.anchor] = 1
            elif kind is yaml.AliasEvent:
                if any(o.anchor == event.anchor for o in stack):
                    raise ConfigError(
                        str(self.path), [f"{_at(self.path, event.start_mark)}: alias *{event.anchor} refers to itself"]
                    )
                total += sizes.get(event.anchor, 1)  # an unknown anchor: the composer says so
            elif kind in _COLLECTION_START:
                total += 1
            elif kind in _COLLECTION_END:
                done = stack.pop()
                if done.anchor is not None:
                    sizes[done.anchor] = total - done.before
                continue
            else:
                continue  # stream and document events
            if total > MAX_VALUES:
                raise ConfigError(
                    str(self.path),
                    [
                        f"{_at(self.path, event.start_mark)}: the document expands to more than {MAX_VALUES:,} values "
                        "(each alias counts as many as it stands for): nested aliases? Write the values out, "
                        "or split the catalog"
                    ],
                )
            if stack:
                parent = stack[-1]
                index = parent.children
                parent.children = index + 1
                if not parent.mapping:
                    parent.key = index
                elif not index % 2:
                    self.key(stack, event)
            if kind in _COLLECTION_START:
                stack.append(_Open(kind is yaml.MappingStartEvent, event.anchor, total - 1))
        return self.problems

    def key(self, stack: list[_Open], event: yaml.Event) -> None:
        """A key of the innermost mapping: a duplicate is a problem with both positions."""
        parent = stack[-1]
        key = event.value if isinstance(event, yaml.ScalarEvent) else None
        parent.key = key
        if key is None or key == _MERGE_KEY:
            return
        first = parent.keys.setdefault(key, event.start_mark)
        if first is not event.start_mark:
            where: Where = (*(o.key for o in stack[:-1] if o.key is not None), key)
            self.problems.append(
                f"{_at(self.path, event.start_mark)}: {render_where(where)}: duplicate key (first at "
                f"{_at(self.path, first)}; YAML would silently keep the last)"
            )


@contextlib.contextmanager
def _loading(text: str, path: Path) -> Iterator[yaml.SafeLoader]:
    """A loader over `text`; its errors as a ConfigError with their line and column."""
    loader = _Loader(text)
    try:
        yield loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = _at(path, mark) if mark else str(path)
        raise ConfigError(str(path), [f"{where}: YAML syntax error: {exc.problem or exc}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [f"{path}: YAML error: {exc}"]) from exc
    finally:
        loader.dispose()


@dataclass(frozen=True)
class YamlSource:
    path: Path
    data: object  # what yaml.safe_load would give
    root: yaml.Node | None

    @classmethod
    def parse(cls, text: str, path: Path) -> YamlSource:
        """ConfigError with the line and column of a syntax error, of a duplicate key, or of the
        value past MAX_VALUES."""
        with _loading(text, path) as loader:
            problems = _EventPass(path).run(loader)
        if problems:
            raise ConfigError(str(path), problems)
        with _loading(text, path) as loader:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        return cls(path, data, root)

    def position(self, where: Where, at_key: bool = False) -> tuple[int, int] | None:
        """1-based (line, column) of the value at `where` (of its key with `at_key`), or of the
        deepest part of `where` that the file has (a missing key: the mapping that lacks it)."""
        node = self.root
        if node is None:
            return None
        mark = node.start_mark
        for depth, part in enumerate(where):
            last = depth == len(where) - 1
            child: yaml.Node | None = None
            if isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                        mark = key.start_mark if last and at_key else value.start_mark
                        child = value
                        break
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                child = node.value[part]
                mark = child.start_mark
            if child is None:
                break
            node = child
        return mark.line + 1, mark.column + 1

    def describe(self, problem: Problem) -> str:
        """`config.yaml:12:5: catalog.scripts[3].file: lua/x.lua does not exist`; the file alone when
        it is empty, and no file for a place outside it (`--seed`)."""
        place = render_where(problem.where)
        head = f"{place}: " if place else ""
        first = problem.where[0] if problem.where else ""
        if isinstance(first, str) and first.startswith("--"):
            return f"{head}{problem.message}"
        position = self.position(problem.where, problem.at_key)
        where = f"{self.path}:{position[0]}:{position[1]}" if position else str(self.path)
        return f"{where}: {head}{problem.message}"

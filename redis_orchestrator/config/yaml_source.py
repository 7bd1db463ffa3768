"""A YAML file parsed once, keeping where each value was written, so that every problem found later
(an unknown key, a bad duration, a missing script file) is reported as `config.yaml:12:5: ...`.

One parse: libyaml composes the node tree (in C where PyYAML has it: several times faster than the
pure-Python parser on a big catalog), the safe constructor turns it into plain values, and the tree
is kept only to answer "where is catalog.scripts[3].file?" when a problem needs its place.

    catalog:                      ("catalog",)                    -> 1:1
      scripts:                    ("catalog", "scripts")          -> 2:3
        - name: transfer          ("catalog", "scripts", 0)       -> 3:7
          file: lua/x.lua         ("catalog", "scripts", 0, "file") -> 4:13 (its value; the key: 4:7)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from redis_orchestrator.errors import ConfigError, Problem, Where, render_where

# libyaml's parser when PyYAML was built with it; same safety (SafeConstructor) either way.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class YamlSource:
    path: Path
    data: object  # what yaml.safe_load would give
    root: yaml.Node | None

    @classmethod
    def parse(cls, text: str, path: Path) -> YamlSource:
        """ConfigError with the line and column of a syntax error."""
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
            raise ConfigError(str(path), [f"{where}: YAML syntax error: {exc.problem or exc}"]) from exc
        except yaml.YAMLError as exc:
            raise ConfigError(str(path), [f"{path}: YAML error: {exc}"]) from exc
        finally:
            loader.dispose()
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
        """`config.yaml:12:5: catalog.scripts[3].file: lua/x.lua does not exist`; no position for a
        place outside the file (`--seed`)."""
        place = render_where(problem.where)
        head = f"{place}: " if place else ""
        first = problem.where[0] if problem.where else ""
        position = (
            None if isinstance(first, str) and first.startswith("--") else self.position(problem.where, problem.at_key)
        )
        if position is None:
            return f"{head}{problem.message}"
        return f"{self.path}:{position[0]}:{position[1]}: {head}{problem.message}"

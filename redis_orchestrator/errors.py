"""Errors a user can act on. Each carries the exit code the CLI returns for it (diff(1) style)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_CONFIG = 2
EXIT_UNREACHABLE = 3


class OrchestratorError(Exception):
    exit_code = EXIT_FINDINGS


class ConfigError(OrchestratorError):
    """The config or catalog is invalid. Carries every problem found, each with its place."""

    exit_code = EXIT_CONFIG

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s):\n{lines}")


class SeedsUnreachableError(OrchestratorError):
    """No seed answered; names each seed tried and why."""

    exit_code = EXIT_UNREACHABLE

    def __init__(self, attempts: Sequence[tuple[str, str]]) -> None:
        self.attempts = list(attempts)
        tried = "; ".join(f"{seed}: {why}" for seed, why in self.attempts) or "no seeds configured"
        super().__init__(f"no seed reachable (tried {tried}); check redis.seeds / --seed, the network and credentials")


class CatalogRejected(OrchestratorError):
    """A new catalog was refused (a script did not compile, analysis found errors)."""


# ---------------------------------------------------------------------- places in the config

Where = tuple[str | int, ...]  # ("catalog", "scripts", 3, "file") is catalog.scripts[3].file


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the config, at its place. `at_key`: point at the key itself (an unknown
    key) rather than at its value."""

    where: Where
    message: str
    at_key: bool = False


def render_where(where: Where) -> str:
    out = ""
    for part in where:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out

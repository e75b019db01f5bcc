"""Bad input, reported in one line that names the culprit. A leaf: imports nothing of raymia."""
from __future__ import annotations


class ConfigError(ValueError):
    """Bad input: one line that names the culprit (a dotted config path or a file)."""

    def __init__(self, where: str, message: str):
        self.where, self.message = where, message
        super().__init__(f"{where}: {message}" if where else message)

    def under(self, prefix: str) -> "ConfigError":
        return ConfigError(f"{prefix}.{self.where}" if self.where else prefix, self.message)


def check(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise ConfigError(where, message)


def check_choice(value: str, choices, where: str) -> None:
    check(value in choices, where, f"unknown value {value!r}; valid: {', '.join(sorted(choices))}")

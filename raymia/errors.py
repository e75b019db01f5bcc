"""Bad input, reported in one line that names the culprit. A leaf: imports nothing of raymia."""
from __future__ import annotations


class ConfigError(ValueError):
    """Bad input: one line that names the culprit (a dotted config path or a file)."""

    def __init__(self, where: str, message: str):
        self.where, self.message = where, message
        super().__init__(f"{where}: {message}" if where else message)

    def under(self, prefix: str) -> "ConfigError":
        return ConfigError(f"{prefix}.{self.where}" if self.where else prefix, self.message)


def named_under(prefix: str, post_init):
    """A config's `__post_init__` whose ConfigErrors name their field under
    `prefix` (`shadows.n_models`), however the config was built."""
    def wrapped(self):
        try:
            post_init(self)
        except ConfigError as e:
            if e.where.startswith(prefix + "."):  # a subclass's __post_init__ called ours
                raise
            raise e.under(prefix) from None
    wrapped.__wrapped__ = post_init
    return wrapped


class Section:
    """Base of a config whose errors name their section: a subclass sets
    `section` (its field of the experiment, or `sweep.resources`), and the
    `__post_init__` it defines reports `section.field`."""

    section: str = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        post_init = cls.__dict__.get("__post_init__")
        if post_init is not None and cls.section:
            cls.__post_init__ = named_under(cls.section, post_init)


def check(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise ConfigError(where, message)


def check_choice(value: str, choices, where: str) -> None:
    check(value in choices, where, f"unknown value {value!r}; valid: {', '.join(sorted(choices))}")

"""Settings as the command line writes them, for the refusals and warnings it shares
with Python (:mod:`sklimg._statements`): ``--mix mixup`` where Python says
``mix='mixup'``, "leave --mix out" where it says ``mix=None``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sklimg._statements import Wording

__all__ = ["Flags"]


def _text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class Flags(Wording):
    """The wording of one command's settings.

    Parameters
    ----------
    flags : mapping of str to str
        Each parameter the command sets, and its option (``"max_epochs": "--epochs"``).
        A fix that needs a parameter without an option is left out.
    given : mapping of str to str, default={}
        How this command line wrote a parameter, where that is not ``--option value``
        (``"augment": "--augment light --erasing 0.25"``).
    leave : mapping of str to str, default={}
        The options to leave out to unset a parameter, where that is not its option
        (``"augment": "--augment and --erasing"``).
    fixed : mapping, default={}
        Parameters the command always gives this value (``"early_stopping": False``):
        a fix asking for it needs nothing.
    defaults : mapping, default={}
        Parameters whose fix to their default value is to leave the option out.
    """

    terms = {"find_lr": "--lr find", "save": "--format sklimg, the safe format,"}

    def __init__(
        self,
        flags: Mapping[str, str],
        *,
        given: Mapping[str, str] | None = None,
        leave: Mapping[str, str] | None = None,
        fixed: Mapping | None = None,
        defaults: Mapping | None = None,
    ) -> None:
        self.flags = dict(flags)
        self.given = dict(given or {})
        self.leave = dict(leave or {})
        self.fixed = dict(fixed or {})
        self.defaults = dict(defaults or {})

    def setting(self, name: str, value) -> str:
        if name in self.given:
            return self.given[name]
        flag = self.flags.get(name, name)
        return flag if value is True or value is None else f"{flag} {_text(value)}"

    def name(self, name: str) -> str:
        return self.terms.get(name) or self.flags.get(name, name)

    def fix(self, name: str, value) -> str | None:
        if (name, value) == ("format", "joblib") and "format" in self.flags:
            return "use --format joblib (a pickle: load it only if you trust it)"
        if name in self.fixed and self.fixed[name] == value:
            return ""
        if name not in self.flags:
            return None
        if value is None or value is False or self.defaults.get(name, ...) == value:
            return f"leave {self.leave.get(name, self.flags[name])} out"
        if value is True:
            return f"use {self.flags[name]}"
        return f"use {self.flags[name]} {_text(value)}"

    def fixes(self, fixes: Sequence[str]) -> str:
        if not fixes:
            return ""
        text = ", or ".join(fixes)
        return text[0].upper() + text[1:] + "."

"""Statements about settings, worded for whoever gave them.

sklimg refuses some combinations of settings and warns of settings that do nothing.
Each such statement is made once, in the terms of the settings themselves (a template,
the settings it names, the settings that fix it), and worded for its audience: Python
code reads ``mix='mixup'`` and "Use mix=None."; the command line reads ``--mix mixup``
and "Leave --mix out." (:class:`sklimg.cli._flags.Flags`). A leaf: the modules that
check settings, and the command line, import it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sklimg.exceptions import DeviceError, ImageInputError

__all__ = [
    "PYTHON",
    "DataRefusal",
    "DeviceRefusal",
    "Refusal",
    "SettingWarning",
    "Statement",
    "Wording",
]


class Wording:
    """How settings are written for one audience; :data:`PYTHON` writes parameters.

    Subclasses (the command line's) override the methods. Besides parameters, a
    statement may name what is done rather than set: ``find_lr`` and ``save`` (the
    safe format), and the fix ``format="joblib"`` (the pickle format).
    """

    #: What is done rather than set, by name.
    terms = {"find_lr": "find_lr", "save": "sklimg.save"}

    def setting(self, name: str, value) -> str:
        """A setting as given, e.g. ``mix='mixup'``."""
        return f"{name}={value!r}"

    def name(self, name: str) -> str:
        """The name of a setting, e.g. ``validation_fraction``."""
        return self.terms.get(name, name)

    def fix(self, name: str, value) -> str | None:
        """A setting that fixes the problem, e.g. ``mix=None``: ``None`` when this
        audience cannot give it, ``""`` when it never gives another value."""
        if (name, value) == ("format", "joblib"):
            return "save with joblib.dump (and load only files you trust)"
        return f"{name}={value!r}"

    def fixes(self, fixes: Sequence[str]) -> str:
        """The fixes as a sentence."""
        return "Use " + ", or ".join(fixes) + "." if fixes else ""


#: Parameters as Python code writes them.
PYTHON = Wording()


class Statement:
    """What is wrong with some settings, and the settings that fix it, apart from how
    any of them is written.

    Parameters
    ----------
    template : str
        The problem and its cause, with ``{key}`` for a setting as given and
        ``{key_name}`` for its name, for the keys of ``settings``. The fixes follow as
        a sentence, or stand where the template says ``{fixes}``.
    settings : mapping
        The settings the template names, and their values.
    fixes : sequence of mapping
        Alternatives, each the settings (name: value) that would fix the problem.
    """

    def __init__(self, template: str, settings: Mapping, fixes: Sequence[Mapping] = ()) -> None:
        self.template = template
        self.settings = dict(settings)
        self.fixes = [dict(fix) for fix in fixes]

    def worded(self, wording: Wording) -> str:
        """The message, with the settings and fixes written by ``wording``."""
        fields = {}
        for key, value in self.settings.items():
            fields[key] = wording.setting(key, value)
            fields[f"{key}_name"] = wording.name(key)
        written = []
        for fix in self.fixes:
            parts = [wording.fix(key, value) for key, value in fix.items()]
            if all(part is not None for part in parts):
                written.append(" and ".join(filter(None, parts)))
        fields["fixes"] = ", or ".join(written)
        message = self.template.format(**fields)
        if "{fixes}" in self.template:
            return message
        return " ".join(filter(None, [message, wording.fixes(written)]))


class Refusal(ValueError):
    """Settings sklimg refuses: a :class:`Statement` raised, worded for Python; the
    command line words it in its flags with :meth:`worded`. Takes the arguments of
    :class:`Statement`."""

    def __init__(self, template: str, settings: Mapping, fixes: Sequence[Mapping] = ()) -> None:
        self.statement = Statement(template, settings, fixes)
        super().__init__(self.statement.worded(PYTHON))

    def worded(self, wording: Wording) -> str:
        """The message, written by ``wording``."""
        return self.statement.worded(wording)


class SettingWarning(UserWarning):
    """Settings that do nothing: a :class:`Statement` warned of, worded for Python; the
    command line words it in its flags with :meth:`worded`."""

    def __init__(self, template: str, settings: Mapping, fixes: Sequence[Mapping] = ()) -> None:
        self.statement = Statement(template, settings, fixes)
        super().__init__(self.statement.worded(PYTHON))

    def worded(self, wording: Wording) -> str:
        """The message, written by ``wording``."""
        return self.statement.worded(wording)


class DataRefusal(Refusal, ImageInputError):
    """A :class:`Refusal` of settings that do not fit the images or labels given."""


class DeviceRefusal(Refusal, DeviceError):
    """A :class:`Refusal` of a device this machine does not have."""

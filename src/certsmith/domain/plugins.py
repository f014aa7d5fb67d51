"""Plugins: the kinds other packages add through entry points, and their typed options.

Typed plugin options: a dataclass of str, int, float and bool fields (optionally ``| None``) read from a plain
mapping, as the API and configuration files give them; every problem is a ValidationError naming the option.

DNS providers and deployment targets both describe their options this way; the secret ones are named so the caller
can seal them at rest and never show them.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import types
import typing
from collections.abc import Mapping, Sequence
from importlib.metadata import entry_points
from typing import Any, TypeVar

from .errors import ValidationError

__all__ = ["OptionsPlugin", "entry_point_plugins", "parse_options", "public_options", "secret_options"]

log = logging.getLogger(__name__)
P = TypeVar("P")


class OptionsPlugin:
    """What a plugin description with ``kind``, ``options_type`` and ``secret_fields`` offers (a mixin)."""

    __slots__ = ()
    kind: str
    options_type: type
    secret_fields: tuple[str, ...]

    def parse(self, raw: Mapping[str, Any]) -> Any:
        """Typed options from a plain mapping; ValidationError naming the field for anything wrong."""
        return parse_options(self.kind, self.options_type, self.secret_fields, raw)

    def secret_options(self, options: Any) -> dict[str, Any]:
        """The secret options that are set, by name (what the caller seals at rest)."""
        return secret_options(self.secret_fields, options)

    def public_options(self, options: Any) -> dict[str, Any]:
        """The other options that are set, as plain values; ``parse({**public, **secret})`` gives ``options`` back."""
        return public_options(self.secret_fields, options)


def entry_point_plugins(group: str, found: dict[str, P], plugin_type: type[P], builtin_prefix: str,
                        what: str) -> dict[str, P]:
    """``found`` (the built-in kinds) with each plugin of the entry-point ``group`` that loads, is a ``plugin_type``
    and claims a kind not taken; the others are skipped with a warning naming them (``what``: "DNS provider")."""
    for point in entry_points(group=group):
        if point.name in found and point.value.startswith(builtin_prefix):
            continue
        try:
            loaded = point.load()
        except Exception as exc:  # noqa: BLE001 - a broken third-party package must not break the others
            log.warning("%s entry point %r (%s) cannot be loaded, skipped: %s: %s", what, point.name, point.value,
                        type(exc).__name__, exc)
            continue
        if not isinstance(loaded, plugin_type):
            log.warning("%s entry point %r (%s) is not a %s, skipped", what, point.name, point.value,
                        plugin_type.__name__)
            continue
        kind = str(getattr(loaded, "kind", point.name))
        if kind in found:
            log.warning("%s entry point %r (%s) claims kind %r, which is taken, skipped", what, point.name, point.value,
                        kind)
            continue
        found[kind] = loaded
    return found


def parse_options(kind: str, options_type: type, secret_fields: Sequence[str], raw: Mapping[str, Any]) -> Any:
    """Typed options of ``options_type`` from a plain mapping; ValidationError naming the field for anything wrong."""
    if not isinstance(raw, Mapping):
        raise ValidationError(f"{kind} options must be a mapping of option names to values", field="Options")
    fields = {item.name: item for item in dataclasses.fields(options_type)}
    hints = typing.get_type_hints(options_type)
    for key in raw:
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ValidationError(f"{kind} has no option {key!r} (its options are: {known})", field=str(key))
    values: dict[str, Any] = {}
    for name, item in fields.items():
        required = item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING
        if name not in raw or raw[name] is None:
            if required:
                raise ValidationError(f"{kind} option {name!r} is required", field=name)
            continue
        values[name] = _typed(kind, name, hints[name], raw[name], name in secret_fields)
    try:
        return options_type(**values)
    except (TypeError, ValueError) as exc:  # an options type's own check that is not a ValidationError
        raise ValidationError(f"{kind} options: {exc}", field="Options") from exc


def secret_options(secret_fields: Sequence[str], options: Any) -> dict[str, Any]:
    """The secret options that are set, by name (what the caller seals at rest)."""
    return {name: getattr(options, name) for name in secret_fields if getattr(options, name, None) is not None}


def public_options(secret_fields: Sequence[str], options: Any) -> dict[str, Any]:
    """The other options that are set, as plain values; parsing ``{**public, **secret}`` gives ``options`` back."""
    return {item.name: getattr(options, item.name) for item in dataclasses.fields(options)
            if item.name not in secret_fields and getattr(options, item.name) is not None}


def _typed(kind: str, name: str, hint: Any, value: Any, secret: bool) -> Any:
    """``value`` checked against the field's type (str, int, float, bool, optionally ``| None``)."""
    optional = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        members = [member for member in typing.get_args(hint) if member is not type(None)]
        optional = len(members) < len(typing.get_args(hint))
        hint = members[0] if len(members) == 1 else str
    shown = "the value given" if secret else repr(value)
    if isinstance(value, str) and hint in (int, float, bool):  # options from the API are strings: "5", "true"
        value = _from_text(value, hint)
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is bool and isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str):
        text = value.strip()
        if not text:
            if optional:
                return None
            raise ValidationError(f"{kind} option {name!r} must not be empty", field=name)
        return text
    wanted = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(hint, str(hint))
    raise ValidationError(f"{kind} option {name!r} must be {wanted}, not {shown}", field=name)


def _from_text(text: str, hint: Any) -> Any:
    """A number or a truth value spelled as text; the text itself when it is neither (the caller says what is wrong)."""
    word = text.strip().lower()
    if hint is bool:
        return {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}.get(word, text)
    try:
        number = float(word) if hint is float else int(word)
    except ValueError:
        return text
    return number if math.isfinite(number) else text

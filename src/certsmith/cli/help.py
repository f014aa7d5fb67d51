"""Help pages that name values (ARN, FILE, DAYS) instead of Python types (``<str>``, ``<bool>``).

Typer's Rich help prints each parameter's Python type as its metavar: ``--root <bool>``,
``--help <bool>``, ``DOMAIN <str>``. The classes here, used by every ``ca`` and ``cert`` command
(``CertsmithTyper``), print nothing for flags, the metavar an option declares (``--parent ARN``), or
else the option's name in capitals, and no type beside an argument's name. ``-h`` works as ``--help``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from typer import Typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

if TYPE_CHECKING:  # Typer's own copy of Click, only for the annotations
    from typer._click import Context, HelpFormatter

__all__ = ["HELP_OPTIONS", "CertsmithTyper", "PlainHelpCommand", "PlainHelpGroup"]

HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}
_Function = TypeVar("_Function", bound=Callable[..., Any])


class _NamedArgument(TyperArgument):
    """An argument shown by its name alone (``ARN``), not ``ARN <str>``."""

    def display_type_rich(self, ctx: Context) -> str | None:
        return None


def _plain(params: list[Any]) -> None:
    for param in params:
        if isinstance(param, TyperOption) and param.metavar is None:
            param.metavar = "" if param.is_flag else (param.name or "value").upper()
        elif isinstance(param, TyperArgument) and not isinstance(param, _NamedArgument):
            if param.metavar is None:
                param.metavar = (param.name or "value").upper()
            param.__class__ = _NamedArgument


class PlainHelpCommand(TyperCommand):
    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        _plain(self.get_params(ctx))
        super().format_help(ctx, formatter)


class PlainHelpGroup(TyperGroup):
    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        _plain(self.get_params(ctx))
        super().format_help(ctx, formatter)


class CertsmithTyper(Typer):
    """A command group whose commands and itself print plain help and take ``-h``."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", PlainHelpGroup)
        kwargs.setdefault("context_settings", dict(HELP_OPTIONS))
        kwargs.setdefault("no_args_is_help", True)
        kwargs.setdefault("pretty_exceptions_enable", False)
        kwargs.setdefault("pretty_exceptions_show_locals", False)
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[_Function], _Function]:
        kwargs.setdefault("cls", PlainHelpCommand)
        decorator: Callable[[_Function], _Function] = super().command(*args, **kwargs)
        return decorator

"""What every deployment target offers: the material it is given, how it installs it, and its plugin description.

A deployment runs in two steps so that bindings sharing a server share its reload:

1. ``install(material)`` puts one version in place (files by atomic rename, an import into ACM, a certificate
   swapped through HAProxy's runtime API, ...) and returns an :class:`Installed`: how to put back what was there
   before (``undo``) and what the target wants remembered for the next time (``state``, e.g. the ARN it imported to).
2. ``activation()`` names what makes installed material live (``nginx -t`` then ``nginx -s reload``). Targets whose
   activations have the same ``key`` are activated once per run. When an activation fails, the runner undoes every
   install of its group and runs the activation again, so the server keeps serving the previous version.

A target never logs or puts key material in an error.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from certsmith.domain.plugins import OptionsPlugin

__all__ = [
    "REASONS",
    "Activation",
    "DeployError",
    "DeployTarget",
    "Held",
    "Installed",
    "Material",
    "Place",
    "TargetPlugin",
    "flag",
    "folder_place",
    "group_activations",
    "same_serial",
    "serial_text",
]

REASONS = frozenset({"unwritable", "config", "reload", "unreachable", "credentials", "refused", "missing"})


def serial_text(serial: int) -> str:
    """A serial number as certsmith shows it: colon-separated lower-case hex, as ACM does."""
    text = format(serial, "x")
    text = ("0" + text) if len(text) % 2 else text
    return ":".join(text[i:i + 2] for i in range(0, len(text), 2))


def same_serial(first: str | int | None, second: str | int | None) -> bool:
    """Whether two serials (ints, or hex with or without colons, any case, leading zeros) are the same number."""
    if first is None or second is None:
        return False

    def number(value: str | int) -> int:
        return value if isinstance(value, int) else int(value.replace(":", "").strip() or "0", 16)

    try:
        return number(first) == number(second)
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Place:
    """Where a binding deploys, as far as two bindings must not share it: ``key`` compares, ``words`` tell it
    ("already deploys to /x; a folder holds one certificate"), ``field`` is the option that names it."""

    key: str
    words: str
    field: str


def folder_place(options: Mapping[str, Any], certificate_arn: str) -> Place | None:
    """The place of a target that writes into the folder of its ``path`` option: a folder holds one certificate."""
    path = options.get("path")
    if not isinstance(path, str) or not path.strip():
        return None
    folder = os.path.normpath(path.strip()).rstrip("/") or "/"
    return Place(f"folder:{folder}", f"already deploys to {folder}; a folder holds one certificate", "path")


def flag(value: Any) -> bool:
    """A boolean option as stored or as given in text ("true", "yes", "1", "on")."""
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"))


@dataclass(frozen=True, slots=True)
class Material:
    """One version of a certificate, ready to deploy. ``private_key_pem`` is PKCS#8 PEM, unencrypted, in memory only."""

    certificate_arn: str
    version: int
    serial: str  # as ACM shows it (colon-separated hex); compare serials with same_serial()
    certificate_pem: str
    chain_pem: str  # the intermediates (may be empty)
    private_key_pem: str = field(repr=False)

    @property
    def fullchain_pem(self) -> str:
        chain = self.chain_pem.strip()
        return self.certificate_pem.strip() + "\n" + (chain + "\n" if chain else "")

    def __str__(self) -> str:
        return f"{self.certificate_arn} version {self.version} (serial {self.serial})"


@dataclass(frozen=True, slots=True)
class Held:
    """What a target holds now: the serial of the certificate in place (None when it holds none) and details."""

    serial: str | None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Installed:
    """The result of an install: how to restore what was there before, and state to remember for the next run."""

    undo: Callable[[], None]
    state: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Activation:
    """What makes installed material live; targets with the same ``key`` share one activation per run."""

    key: str
    run: Callable[[], None]  # raises DeployError (reason "config" for a failed config test, "reload" otherwise)
    description: str = ""


class DeployError(Exception):
    """A target could not do what was asked; the message names the target and says why, in plain words."""

    def __init__(self, target: str, problem: str, *, reason: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown DeployError reason {reason!r}")
        super().__init__(f"{target}: {problem}")
        self.target = target
        self.problem = problem
        self.reason = reason

    @property
    def message(self) -> str:
        return str(self)


@runtime_checkable
class DeployTarget(Protocol):
    """A place a certificate is deployed to. ``describe`` names it in messages (``nginx /etc/nginx/certs/www``)."""

    kind: str

    def describe(self) -> str:
        """The target in a few words, for messages and the CLI."""

    def check(self) -> None:
        """Prove the options work (the folder is writable, the binary runs, the credentials are good); DeployError."""

    def install(self, material: Material) -> Installed:
        """Put ``material`` in place, all or nothing (on DeployError nothing has changed)."""

    def activation(self) -> Activation | None:
        """What makes the installed material live, or None when installing already did."""

    def held(self) -> Held:
        """What the target holds now (read from the files, the server or the cloud account)."""

    def remove(self) -> None:
        """Take the certificate away from the target (files deleted, listener certificate detached, ...)."""


@dataclass(frozen=True, slots=True)
class TargetPlugin(OptionsPlugin):
    """A kind of deployment target: its typed options (the secret ones named) and how to build one.

    ``factory(options, state)`` gets the typed options and the state the last install returned (empty at first).
    ``programs(options)`` names the programs a target with those options runs (a reload command, ``nginx``,
    ``apachectl``): the server runs such targets only when its ``deploy_commands`` setting allows it.
    ``place(public_options, certificate_arn)`` says where a binding deploys, so that two bindings never share a place
    (by default the folder of a ``path`` option; None: nothing shared).
    """

    kind: str
    description: str
    options_type: type
    secret_fields: tuple[str, ...]
    factory: Callable[[Any, Mapping[str, Any]], DeployTarget]
    programs: Callable[[Any], tuple[str, ...]] = field(default=lambda _options: ())
    place: Callable[[Mapping[str, Any], str], Place | None] = field(default=folder_place)

    def build(self, raw: Mapping[str, Any], state: Mapping[str, Any] | None = None) -> DeployTarget:
        return self.factory(self.parse(raw), dict(state or {}))


def group_activations(targets: Sequence[DeployTarget]) -> dict[str, tuple[Activation, list[int]]]:
    """The activations of ``targets`` by key, each with the indexes of the targets that share it (in order)."""
    found: dict[str, tuple[Activation, list[int]]] = {}
    for index, target in enumerate(targets):
        activation = target.activation()
        if activation is None:
            continue
        if activation.key in found:
            found[activation.key][1].append(index)
        else:
            found[activation.key] = (activation, [index])
    return found

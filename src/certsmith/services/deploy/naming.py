"""Names shared by bindings, deployments and the runner: binding ARNs, the certificate of a call, a target's words."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...deploy.targets.base import Place, TargetPlugin
from ...deploy.targets.registry import plugin
from ...domain.arns import CertificateArn, partition_of
from ...domain.errors import CertsmithError, InvalidArnError, ResourceNotFoundError
from ...store.tables import CertificateRow, DeployBindingRow
from ..context import Caller

__all__ = ["Place", "binding_arn", "binding_id_of", "certificate_of", "commands_refused", "place_of", "target_text"]

log = logging.getLogger(__name__)


def binding_arn(region: str, account_id: str, binding_id: str) -> str:
    return f"arn:{partition_of(region)}:certsmith:{region}:{account_id}:binding/{binding_id}"


def binding_id_of(caller: Caller, text: str, field: str = "BindingArn") -> str:
    """The id in a binding ARN of the caller's account and region (InvalidArnError, ResourceNotFoundError)."""
    parts = text.split(":", 5) if isinstance(text, str) else []
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "certsmith" or not parts[5].startswith("binding/") \
            or not parts[5].removeprefix("binding/"):
        raise InvalidArnError(f"{field} {text!r} is not a binding ARN (arn:aws:certsmith:<region>:<account>:"
                              "binding/<id>)", field=field, arn=str(text))
    caller.check_owns(parts[3], parts[4], text, field, "binding")
    return parts[5].removeprefix("binding/")


def certificate_of(session: Session, caller: Caller, text: str, field: str = "CertificateArn", *,
                   lock: bool = False) -> CertificateRow:
    """The caller's certificate named by ``text`` (InvalidArnError, ResourceNotFoundError naming ``field``).

    With ``lock`` its row is locked until the transaction ends (SELECT ... FOR UPDATE on PostgreSQL; SQLite's write
    transaction already serialises): whoever changes its InUseBy or its bindings does so one at a time."""
    arn = CertificateArn.parse(text, field)
    caller.check_owns(arn.region, arn.account, text, field, "certificate")
    query = select(CertificateRow).where(
        CertificateRow.arn == str(arn), CertificateRow.account_id == caller.account_id,
        CertificateRow.region == caller.region)
    row = session.scalar(query.with_for_update().execution_options(populate_existing=True) if lock else query)
    if row is None:
        raise ResourceNotFoundError(f"{field}: certificate {text} was not found in this account", field=field, arn=text)
    return row


def place_of(kind: str, options: Mapping[str, Any], certificate_arn: str, *, local: bool = False) -> Place | None:
    """Where a binding of ``certificate_arn`` with these (public) options deploys, as its plugin says; None when it owns
    no shared place. ``field`` names the option in the API's terms (``Options.path``). ``local``: the place is on the
    server's own disk (not an agent's), where symbolic links are resolved."""
    try:
        found = plugin(kind)
    except CertsmithError:
        return None
    place = found.place(options, certificate_arn)
    if place is None:
        return None
    key = place.key
    if local and key.startswith("folder:"):  # on the server's own disk: a symbolic link names the folder it points to
        key = "folder:" + os.path.realpath(key.removeprefix("folder:"))
    return dataclasses.replace(place, key=key, field=f"Options.{place.field}")


def target_text(binding: DeployBindingRow, secrets: dict[str, Any] | None = None) -> str:
    """The binding's target in a few words (its ``describe()``); secrets stand in as placeholders when not given."""
    try:
        found = plugin(binding.kind)
        filler = {name: "secret" for name in found.secret_fields} if secrets is None else secrets
        return found.factory(found.parse({**binding.options, **filler}), dict(binding.target_state or {})).describe()
    except (CertsmithError, ValueError, TypeError):
        return f"{binding.kind} (options no longer valid)"
    except Exception:
        log.warning("cannot describe the %s target of binding %s", binding.kind, binding.arn, exc_info=True)
        return binding.kind


def commands_refused(found: TargetPlugin, options: Any, allowed: bool) -> tuple[str, str] | None:
    """(why, field) when a server-side target with ``options`` would run programs the server may not run."""
    if allowed:
        return None
    programs = tuple(str(p) for p in found.programs(options) if p)
    if not programs:
        return None
    values = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)} \
        if dataclasses.is_dataclass(options) else {}
    words = {word for program in programs for word in (program, *program.split()[:1])}
    named = sorted((name for name, value in values.items()
                    if isinstance(value, str) and value and any(value in program for program in programs)),
                   key=lambda name: (values[name] not in words, -len(values[name])))
    field = f"Options.{named[0]}" if named else "Options"
    runs = programs[0].split()[0] if programs[0].split() else programs[0]
    runs = runs if programs == (runs,) else f"{runs} ({', '.join(programs)})"
    return (f"the {found.kind} target runs {runs} as the server's user; start "
            "certsmith with deploy_commands (CERTSMITH_DEPLOY_COMMANDS=true) to allow it, or deploy through an agent "
            "(--agent)", field)

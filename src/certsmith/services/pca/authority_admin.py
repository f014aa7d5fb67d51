"""Tags, resource policies and ACM permissions of certificate authorities."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from ...domain.authority import AuthorityStatus
from ...domain.clock import Clock
from ...domain.errors import (
    InvalidArgsError,
    InvalidPolicyError,
    InvalidStateError,
    PermissionAlreadyExistsError,
    ResourceNotFoundError,
)
from ...domain.tags import check_tags, tags_with, tags_without
from ...store.database import Database
from ...store.tables import PermissionRow
from ..context import Caller
from .lookup import decode_token, encode_token, load_authority

__all__ = ["AuthorityAdminService", "check_policy_document"]

ACM_PRINCIPAL = "acm.amazonaws.com"


def check_policy_document(text: str) -> None:
    """Raise InvalidPolicyError unless ``text`` is a resource policy with well-formed statements."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise InvalidPolicyError(f"Policy is not valid JSON: {exc}", field="Policy") from None
    if not isinstance(document, dict):
        raise InvalidPolicyError("Policy must be a JSON object", field="Policy")
    if document.get("Version") not in ("2012-10-17", "2008-10-17"):
        raise InvalidPolicyError("Policy.Version must be \"2012-10-17\"", field="Policy")
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise InvalidPolicyError("Policy.Statement must be a non-empty list of statements", field="Policy")
    for index, statement in enumerate(statements):
        where = f"Policy.Statement[{index}]"
        if not isinstance(statement, dict):
            raise InvalidPolicyError(f"{where} must be an object", field="Policy")
        if statement.get("Effect") not in ("Allow", "Deny"):
            raise InvalidPolicyError(f"{where}.Effect must be Allow or Deny", field="Policy")
        if "Principal" not in statement:
            raise InvalidPolicyError(f"{where} needs a Principal (a resource policy names who it grants)",
                                     field="Policy")
        actions = statement.get("Action")
        if isinstance(actions, str):
            actions = [actions]
        if not isinstance(actions, list) or not actions or not all(isinstance(a, str) for a in actions):
            raise InvalidPolicyError(f"{where}.Action must be an action name or a list of them", field="Policy")
        for action in actions:
            if not (action == "*" or action.startswith("acm-pca:")):
                raise InvalidPolicyError(f"{where}.Action {action!r} is not an acm-pca action", field="Policy")
        if "Resource" not in statement:
            raise InvalidPolicyError(f"{where} needs a Resource", field="Policy")


class AuthorityAdminService:
    def __init__(self, database: Database, clock: Clock) -> None:
        self._db, self._clock = database, clock

    # -- tags -----------------------------------------------------------------------------------------------------
    def tag(self, caller: Caller, arn: str, tags: list[dict[str, Any]]) -> None:
        check_tags(tags)
        with self._db.transaction() as session:
            row = load_authority(session, caller, arn, self._clock.now(), for_update=True)
            row.tags = tags_with(list(row.tags), tags, "CA")

    def untag(self, caller: Caller, arn: str, tags: list[dict[str, Any]]) -> None:
        with self._db.transaction() as session:
            row = load_authority(session, caller, arn, self._clock.now(), for_update=True)
            row.tags = tags_without(list(row.tags), tags)

    def list_tags(self, caller: Caller, arn: str, max_results: int | None,
                  next_token: str | None) -> tuple[list[dict[str, Any]], str | None]:
        offset = decode_token(next_token)
        with self._db.read() as session:
            tags = list(load_authority(session, caller, arn, self._clock.now()).tags)
        page = max_results or 50
        return tags[offset:offset + page], encode_token(offset + page) if len(tags) > offset + page else None

    # -- policy ---------------------------------------------------------------------------------------------------
    def put_policy(self, caller: Caller, arn: str, policy: str) -> None:
        check_policy_document(policy)
        with self._db.transaction() as session:
            row = load_authority(session, caller, arn, self._clock.now(), for_update=True, field="ResourceArn")
            self._require_live(row.status)
            row.policy = policy

    def get_policy(self, caller: Caller, arn: str) -> str:
        with self._db.read() as session:
            row = load_authority(session, caller, arn, self._clock.now(), field="ResourceArn")
            if row.policy is None:
                raise ResourceNotFoundError(f"certificate authority {arn} has no resource policy", arn=arn)
            return row.policy

    def delete_policy(self, caller: Caller, arn: str) -> None:
        with self._db.transaction() as session:
            row = load_authority(session, caller, arn, self._clock.now(), for_update=True, field="ResourceArn")
            row.policy = None

    # -- permissions ----------------------------------------------------------------------------------------------
    def create_permission(self, caller: Caller, arn: str, principal: str, source_account: str | None,
                          actions: list[str]) -> None:
        self._check_principal(principal)
        now = self._clock.now()
        with self._db.transaction() as session:
            row = load_authority(session, caller, arn, now, for_update=True)
            self._require_live(row.status)
            key = (row.id, principal, source_account or "")
            if session.get(PermissionRow, key) is not None:
                raise PermissionAlreadyExistsError(f"{principal} already has a permission on {arn}", arn=arn)
            session.add(PermissionRow(authority_id=row.id, principal=principal, source_account=source_account or "",
                                      actions=sorted(set(actions)), created_at=now))

    def list_permissions(self, caller: Caller, arn: str, max_results: int | None,
                         next_token: str | None) -> tuple[list[dict[str, Any]], str | None]:
        offset = decode_token(next_token)
        page = max_results or 100
        with self._db.read() as session:
            row = load_authority(session, caller, arn, self._clock.now())
            self._require_live(row.status)
            rows = session.scalars(select(PermissionRow).where(PermissionRow.authority_id == row.id)
                                   .order_by(PermissionRow.created_at).offset(offset).limit(page + 1)).all()
            items = [{"CertificateAuthorityArn": row.arn, "CreatedAt": p.created_at, "Principal": p.principal,
                      "SourceAccount": p.source_account or None, "Actions": list(p.actions),
                      "Policy": None} for p in rows[:page]]
        return items, encode_token(offset + page) if len(rows) > page else None

    def delete_permission(self, caller: Caller, arn: str, principal: str, source_account: str | None) -> None:
        self._check_principal(principal)
        with self._db.transaction() as session:
            row = load_authority(session, caller, arn, self._clock.now(), for_update=True)
            self._require_live(row.status)
            permission = session.get(PermissionRow, (row.id, principal, source_account or ""))
            if permission is None:
                raise ResourceNotFoundError(f"{principal} has no permission on {arn}", arn=arn)
            session.delete(permission)

    @staticmethod
    def _check_principal(principal: str) -> None:
        if principal != ACM_PRINCIPAL:
            raise InvalidArgsError(f"Principal must be {ACM_PRINCIPAL}, not {principal!r}", field="Principal")

    @staticmethod
    def _require_live(status: str) -> None:
        if status in (AuthorityStatus.DELETED, AuthorityStatus.FAILED):
            raise InvalidStateError(f"the CA is {status}", field="CertificateAuthorityArn")


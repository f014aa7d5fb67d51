"""Loading authorities for a caller, with the errors a caller should see."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ...domain.arns import AuthorityArn
from ...domain.authority import AuthorityStatus
from ...domain.errors import InvalidNextTokenError, ResourceNotFoundError
from ...store.tables import AuthorityRow
from ..context import Caller

__all__ = ["decode_token", "encode_token", "load_authority"]

# Built once: a constant statement skips SQLAlchemy's per-call construction and cache-key work.
_BY_ID = select(AuthorityRow).where(AuthorityRow.id == bindparam("id"))
_BY_ID_FOR_UPDATE = _BY_ID.with_for_update()


def load_authority(session: Session, caller: Caller, arn_text: str, now: datetime, *, for_update: bool = False,
                   field: str = "CertificateAuthorityArn") -> AuthorityRow:
    arn = AuthorityArn.parse(arn_text, field)
    caller.check_owns(arn.region, arn.account, arn_text, field, "certificate authority")
    query = _BY_ID_FOR_UPDATE if for_update and session.get_bind().dialect.name == "postgresql" else _BY_ID
    row = session.scalars(query, {"id": arn.authority_id}).first()
    if row is None or row.arn != str(arn):
        raise ResourceNotFoundError(f"certificate authority {arn_text} was not found", arn=arn_text)
    if row.status == AuthorityStatus.DELETED and (row.restorable_until is None or row.restorable_until <= now):
        raise ResourceNotFoundError(f"certificate authority {arn_text} was not found (permanently deleted)",
                                    arn=arn_text)
    return row


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_token(token: str | None) -> int:
    if token is None:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidNextTokenError("NextToken is not a token this service returned", field="NextToken") from None
    if not isinstance(offset, int) or offset < 0:
        raise InvalidNextTokenError("NextToken is not a token this service returned", field="NextToken")
    return offset

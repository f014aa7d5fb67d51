"""Who is calling: the principal every service operation acts for."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Caller"]


@dataclass(frozen=True, slots=True)
class Caller:
    account_id: str
    region: str
    principal: str

"""Who is calling: the principal every service operation acts for, in one account and region."""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.errors import InvalidArnError, ResourceNotFoundError
from ..domain.regions import partition_for_region

__all__ = ["Caller"]


@dataclass(frozen=True, slots=True)
class Caller:
    account_id: str
    region: str
    principal: str

    def check_owns(self, region: str, account: str, arn_text: str, field: str, what: str) -> None:
        """Raise unless an ARN names a resource of this caller's account and region.

        Every region is a service of its own, as in AWS: an ARN of another region of the same
        partition names nothing here (not found); one of another partition is not an ARN this
        endpoint takes at all (an invalid ARN).
        """
        if region == self.region and account == self.account_id:
            return
        theirs, ours = partition_for_region(region), partition_for_region(self.region)
        if theirs != ours:
            raise InvalidArnError(f"{field} {arn_text!r} is an ARN of partition {theirs!r}; this endpoint "
                                  f"({self.region}) serves partition {ours!r}", field=field, arn=arn_text)
        raise ResourceNotFoundError(f"{what} {arn_text} was not found", arn=arn_text)

"""AWS Certificate Manager: each version imported into one ACM certificate, whose ARN stays the same.

The first install imports a new certificate (or re-imports into ``certificate_arn`` when given); its ARN is kept in
the state (``ImportedArn``) and every later version is re-imported there, so whatever uses that ARN gets the new
version. ACM never gives a private key back, so the undo of a re-import cannot restore the previous version: it
does nothing, and a rollback deploys the previous version again. The undo of a first import deletes it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .aws_common import AcmCertificates, AwsCalls, AwsOptions, acm_region
from .base import Activation, DeployError, DeployTarget, Held, Installed, Material, Place, TargetPlugin, same_serial

__all__ = ["PLUGIN", "AcmOptions", "AcmTarget"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class AcmOptions(AwsOptions):
    """The AWS options, and optionally an imported ACM certificate to re-import into from the start."""

    KIND: ClassVar[str] = "aws-acm"

    certificate_arn: str | None = None

    def _check(self) -> None:
        if self.certificate_arn is not None:
            acm_region(self.KIND, "certificate_arn", self.certificate_arn, self.region)


def _nothing() -> None:
    return None


class AcmTarget:
    """One ACM certificate that every version is imported into."""

    kind = "aws-acm"

    def __init__(self, options: AcmOptions, state: Mapping[str, Any]) -> None:
        self.options = options
        remembered = state.get("ImportedArn")
        self._remembered = remembered if isinstance(remembered, str) and remembered else None
        self.calls = AwsCalls(options, self.describe)
        self.acm = AcmCertificates(self.calls)

    @property
    def arn(self) -> str | None:
        """The ACM certificate this target imports into (None before its first import)."""
        return self._remembered or self.options.certificate_arn

    def describe(self) -> str:
        return f"aws-acm {self.arn}" if self.arn else f"aws-acm {self.options.region} (a new import)"

    def check(self) -> None:
        if self.arn is None:
            self.acm.reachable()
            return
        answer = self.calls.call("acm", "describe_certificate", CertificateArn=self.arn)
        kind = answer["Certificate"].get("Type", "IMPORTED")
        if kind != "IMPORTED":
            raise DeployError(self.describe(), f"the ACM certificate is {kind}, not IMPORTED: only an imported "
                              "certificate can be re-imported; leave certificate_arn out to import a new one",
                              reason="config")

    def install(self, material: Material) -> Installed:
        arn = self.arn
        if arn is not None:
            current = self.acm.serial(arn)
            if same_serial(current, material.serial):
                return Installed(undo=_nothing, state={"ImportedArn": arn})
            if current is None:
                if self._remembered is None:
                    raise DeployError(self.describe(), "the ACM certificate named by certificate_arn does not exist: "
                                      "check certificate_arn (or leave it out to import a new one)", reason="missing")
                log.warning("%s: the imported certificate is gone from ACM; importing anew", self.describe())
                arn = None
        imported = self.acm.import_material(material, arn)
        if arn is None:
            return Installed(undo=lambda: self.acm.delete(imported), state={"ImportedArn": imported})
        return Installed(undo=_nothing, state={"ImportedArn": imported})

    def activation(self) -> Activation | None:
        return None

    def held(self) -> Held:
        arn = self.arn
        if arn is None:
            return Held(None)
        serial = self.acm.serial(arn)
        return Held(serial, {"CertificateArn": arn} if serial else {"CertificateArn": arn, "Missing": True})

    def remove(self) -> None:
        if self.arn is not None:
            self.acm.delete(self.arn)


def _build(options: AcmOptions, state: Mapping[str, Any]) -> DeployTarget:
    return AcmTarget(options, state)


def _place(options: Mapping[str, Any], certificate_arn: str) -> Place | None:
    """An ACM certificate named by ``certificate_arn`` holds one certificate (without it, each binding imports its own)."""
    arn = options.get("certificate_arn")
    if not isinstance(arn, str) or not arn:
        return None
    return Place(f"acm:{arn}", f"already re-imports into {arn}; an ACM certificate holds one certificate",
                 "certificate_arn")

PLUGIN = TargetPlugin(
    kind="aws-acm",
    description="an imported certificate in AWS Certificate Manager (each version re-imported under the same ARN)",
    options_type=AcmOptions,
    secret_fields=("secret_access_key", "session_token"),
    factory=_build,
    place=_place,
)

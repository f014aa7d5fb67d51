"""An Amazon CloudFront distribution: the certificate imported into ACM in us-east-1, then set as its viewer certificate.

CloudFront takes ACM certificates from us-east-1 only. Each version goes to the binding's ACM slot the distribution
does not use (see aws_common); the distribution is switched with GetDistributionConfig + UpdateDistribution (IfMatch
its ETag). The viewer certificate that was there before certsmith's is remembered (``Replaced``), so that removing
the binding can put it back. CloudFront takes minutes to spread a change to its edges; the switch itself is at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from certsmith.domain.errors import ValidationError

from .aws_common import AcmCertificates, AwsCalls, AwsOptions, import_to_spare, slots_of
from .base import Activation, DeployError, DeployTarget, Held, Installed, Material, Place, TargetPlugin, same_serial

__all__ = ["PLUGIN", "CloudFrontOptions", "CloudFrontTarget", "viewer_certificate"]

_DISTRIBUTION_ID = re.compile(r"^[A-Z0-9]{1,64}$")
_DEPRECATED = ("Certificate", "CertificateSource")
_ATTEMPTS = 3  # UpdateDistribution answers PreconditionFailed when the distribution changed since it was read


@dataclass(frozen=True, slots=True, kw_only=True)
class CloudFrontOptions(AwsOptions):
    """The AWS options (region: us-east-1, the only one CloudFront takes certificates from) and the distribution."""

    KIND: ClassVar[str] = "aws-cloudfront"

    distribution_id: str
    region: str = "us-east-1"

    def _check(self) -> None:
        if self.region != "us-east-1":
            raise ValidationError(f"CloudFront uses certificates in ACM's us-east-1 only; region is {self.region}",
                                  field="region")
        identifier = self.distribution_id.strip().upper()
        if not _DISTRIBUTION_ID.match(identifier):
            raise ValidationError(f"aws-cloudfront option 'distribution_id': {self.distribution_id!r} is not a "
                                  "distribution ID (like E2QWRUHAPOMQZL)", field="distribution_id")
        object.__setattr__(self, "distribution_id", identifier)


def viewer_certificate(current: Mapping[str, Any]) -> dict[str, Any]:
    """A ViewerCertificate fit to send back: no empty or deprecated fields, the default certificate only alone."""
    cleaned = {key: value for key, value in current.items() if key not in _DEPRECATED and value not in ("", None)}
    if cleaned.get("ACMCertificateArn") or cleaned.get("IAMCertificateId"):
        cleaned["CloudFrontDefaultCertificate"] = False
    return cleaned


def _nothing() -> None:
    return None


class CloudFrontTarget:
    """The viewer certificate of one distribution."""

    kind = "aws-cloudfront"

    def __init__(self, options: CloudFrontOptions, state: Mapping[str, Any]) -> None:
        self.options = options
        self.slots = slots_of(state)
        replaced = state.get("Replaced")
        self.replaced = dict(replaced) if isinstance(replaced, Mapping) and replaced else None
        self.calls = AwsCalls(options, self.describe)
        self.acm = AcmCertificates(self.calls, "us-east-1")

    def describe(self) -> str:
        return f"aws-cloudfront distribution {self.options.distribution_id}"

    def check(self) -> None:
        self._viewer()
        self.acm.reachable()

    def install(self, material: Material) -> Installed:
        before = self._viewer()
        current = before.get("ACMCertificateArn") or None
        ours = current if current in self.slots else None
        if ours is not None and same_serial(self.acm.serial(ours), material.serial):
            return Installed(undo=_nothing, state=self._state(self.slots, self.replaced))
        arn, fresh = import_to_spare(self.acm, material, self.slots, [current] if current else [])
        custom = bool(current or before.get("IAMCertificateId"))
        wanted = {"ACMCertificateArn": arn, "CloudFrontDefaultCertificate": False,
                  "SSLSupportMethod": before.get("SSLSupportMethod") if custom else "sni-only",
                  "MinimumProtocolVersion": before.get("MinimumProtocolVersion") if custom else "TLSv1.2_2021"}
        wanted = {key: value for key, value in wanted.items() if value not in ("", None)}
        wanted.setdefault("SSLSupportMethod", "sni-only")
        wanted.setdefault("MinimumProtocolVersion", "TLSv1.2_2021")
        try:
            self._set_viewer(wanted)
        except DeployError:
            if fresh:
                self.acm.delete(arn, quiet=True)
            raise
        slots = [arn] + ([ours] if ours is not None and ours != arn else [])
        replaced = self.replaced if ours is not None else viewer_certificate(before)
        previous = viewer_certificate(before)
        return Installed(undo=lambda: self._set_viewer(previous), state=self._state(slots, replaced))

    def activation(self) -> Activation | None:
        return None

    def held(self) -> Held:
        current = self._viewer().get("ACMCertificateArn") or None
        if current is None or current not in self.slots:
            return Held(None, {"ViewerCertificateArn": current} if current else {})
        return Held(self.acm.serial(current), {"CertificateArn": current})

    def remove(self) -> None:
        current = self._viewer().get("ACMCertificateArn") or None
        if current is not None and current in self.slots:
            if self.replaced is None:
                raise DeployError(self.describe(), "the viewer certificate this binding replaced is not known: set "
                                  "another certificate on the distribution, then remove the binding again",
                                  reason="refused")
            self._set_viewer(self.replaced)
        for arn in self.slots:
            self.acm.delete(arn, quiet=True)  # CloudFront may hold it until the change has spread: then it is kept

    def _config(self) -> tuple[dict[str, Any], str]:
        answer = self.calls.call("cloudfront", "get_distribution_config", Id=self.options.distribution_id)
        return dict(answer["DistributionConfig"]), str(answer["ETag"])

    def _viewer(self) -> dict[str, Any]:
        return dict(self._config()[0].get("ViewerCertificate") or {})

    def _set_viewer(self, viewer: Mapping[str, Any]) -> None:
        """Set the distribution's viewer certificate, reading its config again when it changed meanwhile."""
        for attempt in range(_ATTEMPTS):
            config, etag = self._config()
            config["ViewerCertificate"] = dict(viewer)
            try:
                self.calls.call("cloudfront", "update_distribution", Id=self.options.distribution_id, IfMatch=etag,
                                DistributionConfig=config)
                return
            except DeployError as exc:
                if "PreconditionFailed" not in exc.problem or attempt == _ATTEMPTS - 1:
                    raise

    @staticmethod
    def _state(slots: list[str], replaced: Mapping[str, Any] | None) -> dict[str, Any]:
        return {"ImportedArns": list(slots), **({"Replaced": dict(replaced)} if replaced else {})}


def _build(options: CloudFrontOptions, state: Mapping[str, Any]) -> DeployTarget:
    return CloudFrontTarget(options, state)


def _place(options: Mapping[str, Any], certificate_arn: str) -> Place | None:
    """A distribution serves one certificate."""
    distribution = options.get("distribution_id")
    if not isinstance(distribution, str) or not distribution:
        return None
    return Place(f"cloudfront:{distribution}", f"already deploys to distribution {distribution}; a distribution serves "
                 "one certificate", "distribution_id")

PLUGIN = TargetPlugin(
    kind="aws-cloudfront",
    description="an Amazon CloudFront distribution's viewer certificate (imported into ACM in us-east-1)",
    options_type=CloudFrontOptions,
    secret_fields=("secret_access_key", "session_token"),
    factory=_build,
    place=_place,
)

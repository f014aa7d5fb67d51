"""An Elastic Load Balancing (v2) HTTPS or TLS listener: the certificate imported into ACM, then attached.

With ``sni`` false (the default) the binding's certificate becomes the listener's default certificate
(ModifyListener); with ``sni`` true it is one more certificate the listener picks by SNI (AddListenerCertificates,
then the binding's previous one is removed). Each version goes to the binding's ACM slot the listener does not use
(see aws_common), so undo puts the previous certificate back on the listener. The default certificate that was
there before certsmith's is remembered (``Replaced``), so that removing the binding can put it back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from certsmith.domain.errors import ValidationError

from .aws_common import AcmCertificates, AwsCalls, AwsOptions, import_to_spare, slots_of
from .base import Activation, DeployError, DeployTarget, Held, Installed, Material, Place, TargetPlugin, flag, same_serial

__all__ = ["PLUGIN", "Elbv2Options", "Elbv2Target"]

_LISTENER_ARN = re.compile(r"^arn:aws[a-z-]*:elasticloadbalancing:([a-z0-9-]+):[0-9]{12}:listener/(app|net)/[^/\s]+"
                           r"/[0-9a-f]+/[0-9a-f]+$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Elbv2Options(AwsOptions):
    """The AWS options (region: the listener's), the listener, and whether the certificate is an SNI one."""

    KIND: ClassVar[str] = "aws-elbv2"

    listener_arn: str
    sni: bool = False

    def _check(self) -> None:
        found = _LISTENER_ARN.match(self.listener_arn)
        if not found:
            raise ValidationError(f"aws-elbv2 option 'listener_arn': {self.listener_arn!r} is not a load balancer "
                                  "listener ARN (like arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/"
                                  "web/50dc6c495c0c9188/f2f7dc8efc522ab2)", field="listener_arn")
        if found.group(1) != self.region:
            raise ValidationError(f"aws-elbv2 option 'listener_arn': the listener is in {found.group(1)} but region is "
                                  f"{self.region}", field="listener_arn")


def _nothing() -> None:
    return None


class Elbv2Target:
    """The default or an SNI certificate of one listener."""

    kind = "aws-elbv2"

    def __init__(self, options: Elbv2Options, state: Mapping[str, Any]) -> None:
        self.options = options
        self.slots = slots_of(state)
        replaced = state.get("Replaced")
        self.replaced = replaced if isinstance(replaced, str) and replaced else None
        self.calls = AwsCalls(options, self.describe)
        self.acm = AcmCertificates(self.calls)

    def describe(self) -> str:
        which = "an SNI certificate" if self.options.sni else "the default certificate"
        return f"aws-elbv2 listener {self.options.listener_arn.split(':listener/', 1)[-1]} ({which})"

    def check(self) -> None:
        self._listener()
        self.acm.reachable()

    def install(self, material: Material) -> Installed:
        self._listener()
        attached = self._attached()
        default = next((arn for arn, is_default in attached if is_default), None)
        ours = self._ours(attached)
        if ours is not None and same_serial(self.acm.serial(ours), material.serial):
            return Installed(undo=_nothing, state=self._state(self.slots, self.replaced))
        arn, fresh = import_to_spare(self.acm, material, self.slots, [item for item, _ in attached])
        slots = [arn] + ([ours] if ours is not None and ours != arn else [])
        if self.options.sni:
            try:
                self._add(arn)
                if ours is not None:
                    self._remove(ours)
            except DeployError:
                self._quietly(lambda: self._remove(arn))
                if fresh:
                    self.acm.delete(arn, quiet=True)
                raise

            def undo() -> None:
                if ours is not None:
                    self._add(ours)
                self._remove(arn)

            return Installed(undo=undo, state=self._state(slots, self.replaced))
        if default is None:
            raise DeployError(self.describe(), "the listener has no default certificate", reason="config")
        try:
            self._set_default(arn)
        except DeployError:
            if fresh:
                self.acm.delete(arn, quiet=True)
            raise
        replaced = self.replaced if default in self.slots else default
        return Installed(undo=lambda: self._set_default(default), state=self._state(slots, replaced))

    def activation(self) -> Activation | None:
        return None

    def held(self) -> Held:
        attached = self._attached()
        ours = self._ours(attached)
        if ours is None:
            default = next((arn for arn, is_default in attached if is_default), None)
            return Held(None, {"ListenerCertificateArn": default} if default and not self.options.sni else {})
        return Held(self.acm.serial(ours), {"CertificateArn": ours})

    def remove(self) -> None:
        attached = self._attached()
        ours = self._ours(attached)
        if ours is not None and self.options.sni:
            self._remove(ours)
        elif ours is not None:
            if self.replaced is None or self.acm.serial(self.replaced) is None:
                raise DeployError(self.describe(), "a listener needs a default certificate and the one this binding "
                                  "replaced is not known or gone: set another default certificate on the listener, then "
                                  "remove the binding again", reason="refused")
            self._set_default(self.replaced)
        for arn in self.slots:
            self.acm.delete(arn, quiet=True)

    def _listener(self) -> dict[str, Any]:
        answer = self.calls.call("elbv2", "describe_listeners", ListenerArns=[self.options.listener_arn])
        listener: dict[str, Any] = answer["Listeners"][0]
        protocol = listener.get("Protocol", "")
        if protocol not in ("HTTPS", "TLS"):
            raise DeployError(self.describe(), f"the listener's protocol is {protocol}, not HTTPS or TLS: it serves no "
                              "certificate", reason="config")
        return listener

    def _attached(self) -> list[tuple[str, bool]]:
        """The listener's certificates, each with whether it is the default one."""
        items = self.calls.pages("elbv2", "describe_listener_certificates", "Certificates",
                                 ListenerArn=self.options.listener_arn)
        return [(str(item["CertificateArn"]), bool(item.get("IsDefault"))) for item in items]

    def _ours(self, attached: list[tuple[str, bool]]) -> str | None:
        """The binding's certificate on the listener (as its default, or among the SNI ones)."""
        return next((arn for arn, is_default in attached if arn in self.slots and is_default != self.options.sni), None)

    def _set_default(self, arn: str) -> None:
        self.calls.call("elbv2", "modify_listener", ListenerArn=self.options.listener_arn,
                        Certificates=[{"CertificateArn": arn}])

    def _add(self, arn: str) -> None:
        self.calls.call("elbv2", "add_listener_certificates", ListenerArn=self.options.listener_arn,
                        Certificates=[{"CertificateArn": arn}])

    def _remove(self, arn: str) -> None:
        self.calls.call("elbv2", "remove_listener_certificates", ListenerArn=self.options.listener_arn,
                        Certificates=[{"CertificateArn": arn}])

    @staticmethod
    def _quietly(step: Any) -> None:
        try:
            step()
        except DeployError:
            pass

    @staticmethod
    def _state(slots: list[str], replaced: str | None) -> dict[str, Any]:
        return {"ImportedArns": list(slots), **({"Replaced": replaced} if replaced else {})}


def _build(options: Elbv2Options, state: Mapping[str, Any]) -> DeployTarget:
    return Elbv2Target(options, state)


def _place(options: Mapping[str, Any], certificate_arn: str) -> Place | None:
    """A listener has one default certificate, and holds a certificate once among its SNI ones."""
    listener = options.get("listener_arn")
    if not isinstance(listener, str) or not listener:
        return None
    if flag(options.get("sni")):
        return Place(f"elbv2:{listener}:sni:{certificate_arn}", f"already adds this certificate to listener {listener} "
                     "(sni); a listener holds a certificate once", "listener_arn")
    return Place(f"elbv2:{listener}:default", f"already sets the default certificate of listener {listener}; a listener "
                 "has one default certificate (sni=true adds one more)", "listener_arn")

PLUGIN = TargetPlugin(
    kind="aws-elbv2",
    description="an Application or Network Load Balancer listener (the certificate imported into ACM, then attached)",
    options_type=Elbv2Options,
    secret_fields=("secret_access_key", "session_token"),
    factory=_build,
    place=_place,
)

"""ACM-PCA certificate templates (``arn:aws:acm-pca:::template/<Name>/V1``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from .arns import TEMPLATE_ARN_PREFIX
from .errors import InvalidArgsError

__all__ = ["DEFAULT_TEMPLATE_ARN", "TEMPLATES", "Template", "TemplateKind", "template_for_arn"]

DEFAULT_TEMPLATE_ARN = TEMPLATE_ARN_PREFIX + "EndEntityCertificate/V1"


class TemplateKind(StrEnum):
    END_ENTITY = "end_entity"
    ROOT = "root"
    SUBORDINATE = "subordinate"


def _key_usage(*names: str) -> x509.KeyUsage:
    flags = dict.fromkeys(("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                           "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"), False)
    for name in names:
        flags[name] = True
    return x509.KeyUsage(**flags)


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    kind: TemplateKind
    path_length: int | None = None
    key_usage: x509.KeyUsage | None = None
    extended_key_usage: tuple[ObjectIdentifier, ...] = ()
    extended_key_usage_critical: bool = False
    csr_passthrough: bool = False
    api_passthrough: bool = False
    blank: bool = False
    critical_basic_constraints: bool = True

    @property
    def arn(self) -> str:
        return f"{TEMPLATE_ARN_PREFIX}{self.name}/V1"

    @property
    def is_ca(self) -> bool:
        return self.kind is not TemplateKind.END_ENTITY


_EE_KU = _key_usage("digital_signature", "key_encipherment")
_SIGN_KU = _key_usage("digital_signature")
_CA_KU = _key_usage("digital_signature", "key_cert_sign", "crl_sign")
_SUFFIXES = {"": (False, False), "_CSRPassthrough": (True, False), "_APIPassthrough": (False, True),
             "_APICSRPassthrough": (True, True)}


def _build() -> dict[str, Template]:
    templates: dict[str, Template] = {}

    def add(template: Template) -> None:
        templates[template.name] = template

    end_entity = {
        "EndEntityCertificate": (_EE_KU, (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH), False),
        "EndEntityClientAuthCertificate": (_EE_KU, (ExtendedKeyUsageOID.CLIENT_AUTH,), False),
        "EndEntityServerAuthCertificate": (_EE_KU, (ExtendedKeyUsageOID.SERVER_AUTH,), False),
        "CodeSigningCertificate": (_SIGN_KU, (ExtendedKeyUsageOID.CODE_SIGNING,), True),
        "OCSPSigningCertificate": (_SIGN_KU, (ExtendedKeyUsageOID.OCSP_SIGNING,), True),
    }
    for base, (key_usage, eku, eku_critical) in end_entity.items():
        for suffix, (csr, api) in _SUFFIXES.items():
            add(Template(base + suffix, TemplateKind.END_ENTITY, None, key_usage, eku, eku_critical, csr, api,
                         critical_basic_constraints=False))
    add(Template("RootCACertificate", TemplateKind.ROOT, None, _CA_KU))
    add(Template("RootCACertificate_APIPassthrough", TemplateKind.ROOT, None, _CA_KU, api_passthrough=True))
    for length in range(4):
        for suffix, (csr, api) in _SUFFIXES.items():
            add(Template(f"SubordinateCACertificate_PathLen{length}{suffix}", TemplateKind.SUBORDINATE, length,
                         _CA_KU, csr_passthrough=csr, api_passthrough=api))
    for suffix, (csr, api) in _SUFFIXES.items():
        if not suffix:
            continue
        add(Template(f"BlankEndEntityCertificate{suffix}", TemplateKind.END_ENTITY, csr_passthrough=csr,
                     api_passthrough=api, blank=True, critical_basic_constraints=False))
        add(Template(f"BlankEndEntityCertificate_CriticalBasicConstraints{suffix}", TemplateKind.END_ENTITY,
                     csr_passthrough=csr, api_passthrough=api, blank=True))
        add(Template(f"BlankRootCACertificate{suffix}", TemplateKind.ROOT, csr_passthrough=csr,
                     api_passthrough=api, blank=True))
        for length in range(4):
            add(Template(f"BlankSubordinateCACertificate_PathLen{length}{suffix}", TemplateKind.SUBORDINATE,
                         length, csr_passthrough=csr, api_passthrough=api, blank=True))
    return templates


TEMPLATES = _build()
_TEMPLATE_ARN = re.compile(r"^arn:[\w-]+:acm-pca:::template/([A-Za-z0-9_]+)/V(\d+)$")


def template_for_arn(arn: str | None) -> Template:
    if arn is None:
        return TEMPLATES["EndEntityCertificate"]
    match = _TEMPLATE_ARN.match(arn)
    if not match:
        raise InvalidArgsError(f"TemplateArn {arn!r} is not a template ARN "
                               "(arn:aws:acm-pca:::template/<Name>/V1)", field="TemplateArn")
    template = TEMPLATES.get(match.group(1))
    if template is None or match.group(2) != "1":
        raise InvalidArgsError(f"TemplateArn names an unknown template {match.group(1)}/V{match.group(2)}",
                               field="TemplateArn")
    return template

"""Facts about a server certificate, and whether its issuer looks like TLS inspection (pure)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

# Organisations of public CAs that sign certificates for public hosts such as the service's.
PUBLIC_CA_HINTS = (
    "amazon",
    "let's encrypt",
    "internet security research group",
    "google trust services",
    "digicert",
    "sectigo",
    "comodo",
    "globalsign",
    "cloudflare",
    "entrust",
    "godaddy",
    "starfield",
    "identrust",
    "microsoft",
    "zerossl",
    "baltimore",
    "usertrust",
    "certum",
    "buypass",
    "actalis",
    "ssl.com",
    "quovadis",
    "thawte",
    "geotrust",
    "rapidssl",
)
# Words in the issuer of corporate inspection CAs and security products.
INSPECTION_HINTS = (
    "zscaler",
    "netskope",
    "palo alto",
    "fortinet",
    "fortigate",
    "blue coat",
    "bluecoat",
    "symantec web",
    "forcepoint",
    "websense",
    "sophos",
    "cisco umbrella",
    "opendns",
    "checkpoint",
    "check point",
    "mcafee web",
    "barracuda",
    "kaspersky",
    "avast",
    "eset",
    "bitdefender",
    "mitmproxy",
    "charles proxy",
    "fiddler",
    "burp",
    "proxy",
    "inspection",
    "intercept",
    "decrypt",
    "firewall",
    "ssl-inspect",
    "tls inspection",
)


def looks_public(issuer: str) -> bool:
    low = issuer.lower()
    return any(h in low for h in PUBLIC_CA_HINTS)


def looks_like_inspection(issuer: str) -> bool:
    low = issuer.lower()
    return any(h in low for h in INSPECTION_HINTS)


def certificate_facts(der: bytes, now: datetime | None = None) -> dict[str, Any]:
    """Subject, issuer, validity and SANs of a DER certificate (cryptography, no I/O)."""
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    now = now or datetime.now(timezone.utc)
    not_after = cert.not_valid_after_utc
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = [str(v) for v in ext.get_values_for_type(x509.DNSName)]
        sans += [str(v) for v in ext.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        sans = []
    return {
        "tls_leaf_subject": cert.subject.rfc4514_string(),
        "tls_issuer": cert.issuer.rfc4514_string(),
        "tls_not_before": cert.not_valid_before_utc.isoformat(),
        "tls_not_after": not_after.isoformat(),
        "tls_days_left": (not_after - now).days,
        "tls_sans": sans,
        "tls_self_signed": cert.issuer == cert.subject,
    }

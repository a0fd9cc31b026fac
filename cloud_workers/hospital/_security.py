"""Bus settings -> FastStream's security object, so a FastStream app connects exactly as our aiokafka clients do
(and the AsyncAPI document names the scheme the cluster asks for)."""

from __future__ import annotations

import ssl

from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from streams import BusSettings

__all__ = ["faststream_security"]


def _ssl_context(settings: BusSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None)
    if settings.ssl_certfile:
        context.load_cert_chain(str(settings.ssl_certfile), str(settings.ssl_keyfile) if settings.ssl_keyfile else None)
    return context


def faststream_security(settings: BusSettings) -> BaseSecurity | None:
    """The FastStream security of ``settings`` (``None`` for PLAINTEXT)."""
    protocol = settings.security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = _ssl_context(settings) if protocol in ("SSL", "SASL_SSL") else None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context)
    user = settings.sasl_username or ""
    password = settings.sasl_password.get_secret_value() if settings.sasl_password else ""
    mechanism = settings.sasl_mechanism or "PLAIN"
    if mechanism == "SCRAM-SHA-256":
        return SASLScram256(user, password, ssl_context=context)
    if mechanism == "SCRAM-SHA-512":
        return SASLScram512(user, password, ssl_context=context)
    return SASLPlaintext(user, password, ssl_context=context)

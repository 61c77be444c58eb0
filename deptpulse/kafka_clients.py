"""Kafka connection arguments for every client deptpulse makes: the one place Kafka security is built.

kafka-python (the publisher, and through it the gateway; admin clients), aiokafka (the worker's
consumer and dead-letter producer) and Faust (the worker app) take their arguments from here, and
``tests/integration/test_kafka_sasl_ssl.py`` checks these functions against a SASL_SSL broker.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from deptpulse.settings import KAFKA_SASL_MECHANISM, Settings

if TYPE_CHECKING:
    import faust


def kafka_python_kwargs(settings: Settings) -> dict[str, Any]:
    """Connection arguments for kafka-python clients: servers, and SCRAM over TLS with SASL_SSL."""
    kwargs: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap_servers.split(",")}
    if settings.kafka_security_protocol == "SASL_SSL":
        assert settings.kafka_sasl_password is not None  # the settings' validator requires it
        kwargs.update(
            security_protocol="SASL_SSL",
            sasl_mechanism=KAFKA_SASL_MECHANISM,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password.get_secret_value(),
            ssl_cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None,
        )
    return kwargs


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """TLS for asyncio clients: broker certificates (and host names) checked against the CA file,
    or the system's CAs when it is unset."""
    return ssl.create_default_context(cafile=settings.kafka_ssl_cafile)


def aiokafka_kwargs(settings: Settings) -> dict[str, Any]:
    """Connection arguments for aiokafka clients: kafka-python's, with an ``ssl_context`` instead
    of ``ssl_cafile`` (which aiokafka does not take)."""
    kwargs = kafka_python_kwargs(settings)
    kwargs.pop("ssl_cafile", None)
    if settings.kafka_security_protocol == "SASL_SSL":
        kwargs["ssl_context"] = ssl_context(settings)
    return kwargs


def faust_credentials(settings: Settings) -> faust.SASLCredentials | None:
    """``broker_credentials`` for ``faust.App``: the same SCRAM user over TLS, None with PLAINTEXT."""
    if settings.kafka_security_protocol != "SASL_SSL":
        return None
    import faust  # here: only the worker loads Faust

    arguments = aiokafka_kwargs(settings)
    return faust.SASLCredentials(
        username=arguments["sasl_plain_username"],
        password=arguments["sasl_plain_password"],
        mechanism=arguments["sasl_mechanism"],
        ssl_context=arguments["ssl_context"],
    )

"""deptpulse.kafka_clients: kafka-python, aiokafka and Faust get the same servers, user and TLS."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import faust
import pytest

from deptpulse.kafka_clients import aiokafka_kwargs, faust_credentials, kafka_python_kwargs
from deptpulse.settings import Settings

pytestmark = pytest.mark.unit

SERVERS = "kafka-1:9093,kafka-2:9093"


def test_plaintext_is_the_servers_only() -> None:
    settings = Settings(kafka_bootstrap_servers=SERVERS)

    assert kafka_python_kwargs(settings) == {"bootstrap_servers": ["kafka-1:9093", "kafka-2:9093"]}
    assert aiokafka_kwargs(settings) == kafka_python_kwargs(settings)
    assert faust_credentials(settings) is None


def test_sasl_ssl_is_the_same_scram_user_for_every_client(tmp_path: Path) -> None:
    cafile = tmp_path / "ca.crt"
    new_ca = [
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ]
    subprocess.run(
        [*new_ca, "-subj", "/CN=test CA", "-keyout", tmp_path / "ca.key", "-out", cafile],
        check=True,
        capture_output=True,
    )
    settings = Settings(
        kafka_bootstrap_servers=SERVERS,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="deptpulse",
        kafka_sasl_password="s3cret-password",
        kafka_ssl_cafile=cafile,
    )

    kafka_python = kafka_python_kwargs(settings)
    aiokafka = aiokafka_kwargs(settings)
    credentials = faust_credentials(settings)

    scram = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "deptpulse",
        "sasl_plain_password": "s3cret-password",
    }
    assert (
        kafka_python
        == {"bootstrap_servers": ["kafka-1:9093", "kafka-2:9093"], "ssl_cafile": str(cafile)} | scram
    )
    assert {key: aiokafka[key] for key in scram} == scram and "ssl_cafile" not in aiokafka
    context = aiokafka["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert len(context.get_ca_certs()) == 1  # the CA file's, not the system's
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password, credentials.mechanism.value) == (
        "deptpulse",
        "s3cret-password",
        "SCRAM-SHA-512",
    )
    assert (
        credentials.ssl_context is not None
        and credentials.ssl_context.get_ca_certs() == context.get_ca_certs()
    )

"""The local stack: Kafka (KRaft), Prometheus, Alertmanager and the WeCom relay as detached processes.

Nothing runs in containers: Kafka's jars come from Maven Central (deploy/kafka/pom.xml) into a
per-user cache, Prometheus and Alertmanager are the Debian binaries. All state lives under
``settings.home``: ``kafka/``, ``prometheus/``, ``alertmanager/``, ``logs/<service>.log`` and
``run/<service>.pid``. Set-up problems raise :class:`StackError` with a one-line explanation.

With ``DEPTPULSE_KAFKA_BROKERS=3`` Kafka is three KRaft nodes, each a broker and a controller
(``kafka``, ``kafka-2``, ``kafka-3``: one directory, log and pid file each), started together.

With ``DEPTPULSE_KAFKA_SECURITY_PROTOCOL=SASL_SSL`` the broker takes SCRAM-SHA-512 over TLS only,
with a CA and certificate made by openssl under ``kafka/tls/`` (see docs/security.md).

Used by ``deptpulse stack``, the demo and the integration fixtures::

    stack = LocalStack(settings)
    stack.up(("kafka",))
    create_topics(settings)
    ...
    stack.down()
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from kafka import KafkaAdminClient
from kafka.errors import KafkaError, TopicAlreadyExistsError

from deptpulse.kafka_clients import kafka_python_kwargs
from deptpulse.settings import DEPLOY_DIR, KAFKA_SASL_MECHANISM, Settings, kafka_replication

DEPLOY = DEPLOY_DIR
SERVICES = ("kafka", "wecom-relay", "alertmanager", "prometheus")  # start order; stopped in reverse
KAFKA_POM = DEPLOY / "kafka" / "pom.xml"
KAFKA_LOG4J = DEPLOY / "kafka" / "log4j2.xml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
ALERTMANAGER_CONFIG = DEPLOY / "alertmanager" / "generated" / "alertmanager.yml"  # deptpulse rules generate
_COMPLETE_MARKER = ".complete"
_LOG_TAIL_LINES = 15
_JAVA_HINT = "install a Java 17+ runtime (apt-get install openjdk-17-jre-headless)"
_MAVEN_HINT = "install Maven (apt-get install maven) or set KAFKA_HOME to an unpacked Kafka distribution"
_OPENSSL_HINT = "install it with: apt-get install openssl"
_SCRAM_ITERATIONS = 8192  # the broker accepts 4096 to 16384
_SCRAM_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]*")
_SECURITY_RECORD = "security.json"  # which protocol and SCRAM credential the storage was formatted with
_CLUSTER_RECORD = "cluster.json"  # in kafka/: brokers formatted for, and their ports at the last start
_CERT_RENEW_SECONDS = 7 * 24 * 3600
_NEW_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-noenc"]  # P-256, no passphrase
# A self-signed CA certificate for 10 years that may sign certificates and nothing else.
_CA = [
    *("-x509", "-days", "3650"),
    *("-addext", "basicConstraints=critical,CA:TRUE"),
    *("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
]


class StackError(Exception):
    """A set-up problem of the local stack; the message says what to change."""


@dataclass(frozen=True)
class ServiceStatus:
    """One row of ``deptpulse stack status``; ``answering`` is None when there is nothing to ask."""

    name: str
    address: str
    pid: int | None
    answering: bool | None


@dataclass(frozen=True)
class StartResult:
    """What ``LocalStack.up`` did for one service."""

    name: str
    pid: int
    already_running: bool
    seconds: float


# --- small helpers: processes, ports, HTTP --------------------------------------------------------


def connect_host(bind_host: str) -> str:
    """The address clients use for a server bound to ``bind_host`` (wildcards mean loopback)."""
    return "127.0.0.1" if bind_host in ("", "0.0.0.0", "::") else bind_host


def port_is_free(host: str, port: int) -> bool:
    """True when a server could bind ``host:port`` now (SO_REUSEADDR, as Java and Go servers do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def accepts_connections(host: str, port: int) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        socket.create_connection((host, port), timeout=0.5).close()
    except OSError:
        return False
    return True


def process_is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (Linux /proc); reaps our own exited child."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # not our child: an earlier `deptpulse stack up` started it
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    # A zombie is gone for our purposes; its parent merely has not reaped it yet.
    return state != "Z"


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _log_tail(log: Path, lines: int = _LOG_TAIL_LINES) -> str:
    if not log.exists():
        return "(no log written)"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _http_get(url: str, timeout: float = 2.0) -> bytes | None:
    """The body of a 200 response, or None when the server does not answer properly."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body: bytes = response.read()
            return body if response.status == 200 else None
    except OSError:
        return None


def _http_json(url: str) -> Any:
    body = _http_get(url)
    return json.loads(body)["data"] if body else None


def _wait_until(ready: Callable[[], bool], timeout: float, failed: Callable[[], str | None]) -> None:
    """Poll ``ready`` until true; ``failed`` returns a reason to give up early (process exited)."""
    deadline = time.monotonic() + timeout
    while True:
        reason = failed()
        if reason is not None:
            raise StackError(reason)
        if ready():
            return
        if time.monotonic() > deadline:
            raise StackError(f"not ready after {timeout:.0f} s")
        time.sleep(0.2)


def _require_executable(name: str, install_hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise StackError(f"{name} not found on PATH; {install_hint}")
    return path


def _run_ok(argv: Sequence[str]) -> bool:
    """True when a check command exits with 0."""
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


def _run(argv: Sequence[str], what: str) -> str:
    """Run a set-up command; its output goes into the error when it fails."""
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = "\n".join((result.stdout + result.stderr).splitlines()[-_LOG_TAIL_LINES:])
        raise StackError(f"{what} failed (exit code {result.returncode}):\n{output}")
    return result.stdout


# --- Kafka -----------------------------------------------------------------------------------------


def kafka_answers(settings: Settings, timeout_ms: int = 2000) -> bool:
    """True when the brokers answer a metadata request (an open port is not enough)."""
    try:
        admin = KafkaAdminClient(
            **kafka_python_kwargs(settings), bootstrap_timeout_ms=timeout_ms, request_timeout_ms=timeout_ms
        )
    except KafkaError:
        return False
    try:
        admin.list_topics()
        return True
    except KafkaError:
        return False
    finally:
        admin.close()


def create_topics(settings: Settings) -> list[str]:
    """Create the events and dead-letter topics when missing; returns the names it created.

    Replication as ``settings.kafka_replication`` says: the broker's default with one broker,
    3 replicas and ``min.insync.replicas=2`` from three.
    """
    replication, min_insync = settings.kafka_replication
    replicated: dict[str, Any] = {"replication_factor": replication}
    if min_insync > 0:
        replicated["configs"] = {"min.insync.replicas": str(min_insync)}
    wanted = {
        settings.events_topic: {"num_partitions": settings.events_partitions, **replicated},
        # -1: the broker's default partitions (1 locally).
        settings.dead_letter_topic: {"num_partitions": -1, **replicated},
    }
    try:
        with KafkaAdminClient(**kafka_python_kwargs(settings)) as admin:
            existing = set(admin.list_topics())
            missing = {name: spec for name, spec in wanted.items() if name not in existing}
            if missing:
                with contextlib.suppress(TopicAlreadyExistsError):  # another process was quicker
                    admin.create_topics(missing)
                admin.wait_for_topics(list(missing), timeout_ms=30_000)
    except KafkaError as error:
        raise StackError(
            f"could not create topics on {settings.kafka_bootstrap_servers}: {error!r}"
        ) from error
    return sorted(missing)


@dataclass(frozen=True)
class KafkaNode:
    """One KRaft node (broker and controller) of the local stack; ids count from 1."""

    node_id: int
    port: int
    controller_port: int

    @property
    def service(self) -> str:
        """Its service name: ``kafka`` for the first (as with one broker), ``kafka-<id>`` after."""
        return "kafka" if self.node_id == 1 else f"kafka-{self.node_id}"

    def as_record(self) -> dict[str, int]:
        return {"node_id": self.node_id, "port": self.port, "controller_port": self.controller_port}


def kafka_nodes(settings: Settings) -> list[KafkaNode]:
    """The local brokers the settings describe: broker i at the i-th bootstrap address, controller
    port ``kafka_controller_port + 100 * (i - 1)``."""
    addresses = settings.kafka_bootstrap_servers.split(",")
    if len(addresses) < settings.kafka_brokers:
        raise StackError(
            f"DEPTPULSE_KAFKA_BROKERS={settings.kafka_brokers} needs one address per broker in "
            f"DEPTPULSE_KAFKA_BOOTSTRAP_SERVERS (it lists {len(addresses)}); unset it for the defaults"
        )
    return [
        KafkaNode(index + 1, int(address.rsplit(":", 1)[1]), settings.kafka_controller_port + 100 * index)
        for index, address in enumerate(addresses[: settings.kafka_brokers])
    ]


def _read_cluster_record(kafka_directory: Path) -> dict[str, Any] | None:
    try:
        record: dict[str, Any] = json.loads((kafka_directory / _CLUSTER_RECORD).read_text())
    except (OSError, ValueError):
        return None
    return record


def _stack_kafka_nodes(settings: Settings, home: Path) -> list[KafkaNode]:
    """The settings' brokers; with the default of one, those of the last start when it had more,
    so that ``stack status`` and ``stack down`` see every broker without repeating the setting."""
    nodes = kafka_nodes(settings)
    record = _read_cluster_record(home / "kafka")
    if settings.kafka_brokers == 1 and record is not None and len(record.get("nodes", [])) > 1:
        return [KafkaNode(**node) for node in record["nodes"]]
    return nodes


def _kafka_version(pom: Path = KAFKA_POM) -> str:
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    version = ElementTree.parse(pom).find("m:properties/m:kafka.version", namespace)
    if version is None or not version.text:
        raise StackError(f"{pom} has no <kafka.version> property")
    return version.text


def cached_kafka_jars(settings: Settings) -> Path:
    """The cache entry for this pom.xml's jars: ``<kafka_jar_cache>/kafka-<version>-<pom hash>/libs``."""
    # The pom's hash in the name: changing a version in pom.xml resolves a fresh set of jars.
    pom_hash = hashlib.sha256(KAFKA_POM.read_bytes()).hexdigest()[:10]
    return settings.kafka_jar_cache.expanduser() / f"kafka-{_kafka_version()}-{pom_hash}" / "libs"


def _kafka_home_jars(kafka_home: Path) -> Path:
    libs = kafka_home / "libs"
    if not any(libs.glob("kafka_*.jar")):
        raise StackError(
            f"KAFKA_HOME={kafka_home} is not an unpacked Kafka distribution (no libs/kafka_*.jar); "
            "point it at one or unset it to use the jars from Maven Central"
        )
    return libs


def install_kafka(settings: Settings) -> Path:
    """The directory of the Kafka jars: $KAFKA_HOME/libs, or resolved by Maven once per pom.xml."""
    if settings.kafka_home is not None:
        return _kafka_home_jars(settings.kafka_home)
    libs = cached_kafka_jars(settings)
    entry = libs.parent
    if (entry / _COMPLETE_MARKER).exists():
        return libs
    mvn = _require_executable("mvn", _MAVEN_HINT)
    _require_executable("java", _JAVA_HINT)
    # Resolve into a private directory and rename it into place, so that neither a crash nor a
    # concurrent install ever leaves a half-copied entry that looks complete.
    partial = entry.with_name(f"{entry.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    argv = [mvn, "-q", "-B", "-f", str(KAFKA_POM), "dependency:copy-dependencies"]
    try:
        _run([*argv, f"-DoutputDirectory={partial / 'libs'}", "-DincludeScope=runtime"], "mvn (Kafka jars)")
    except StackError:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    (partial / _COMPLETE_MARKER).write_text(f"{_kafka_version()}\n")
    if entry.exists() and not (entry / _COMPLETE_MARKER).exists():
        shutil.rmtree(entry)  # left over by an install that crashed before the marker
    try:
        partial.rename(entry)
    except OSError:  # another install finished first; its copy is as good as ours
        shutil.rmtree(partial, ignore_errors=True)
    return libs


# --- Kafka over SASL_SSL: TLS material, SCRAM credentials, secret files ------------------------------


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read or write (0600), also when it existed before."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)


def ensure_tls_material(directory: Path, hosts: Iterable[str]) -> tuple[Path, Path]:
    """``(ca.crt, broker.pem)`` under ``directory``: a local CA and a broker key and certificate it signed.

    Made with openssl once; the broker certificate is reissued when it is missing, expires within a
    week or when ``hosts`` (names for its subjectAltName besides 127.0.0.1 and localhost) change.
    The private keys are PKCS#8 PEM without a passphrase, readable by their owner only.
    """
    executable = _require_executable("openssl", _OPENSSL_HINT)

    def openssl(what: str, *arguments: str | Path | int) -> None:
        _run([executable, *map(str, arguments)], f"openssl ({what})")

    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca_key, ca_cert, broker_pem = directory / "ca.key", directory / "ca.crt", directory / "broker.pem"
    if not (ca_key.exists() and ca_cert.exists()):
        # A random part in the name tells two local CAs apart in a trust store.
        subject = f"/CN=deptpulse local CA {secrets.token_hex(4)}"
        openssl("local CA", "req", *_NEW_KEY, *_CA, "-subj", subject, "-keyout", ca_key, "-out", ca_cert)
        broker_pem.unlink(missing_ok=True)  # signed by a CA that is gone
    extensions = _broker_certificate_extensions(hosts)
    extensions_file = directory / "broker.ext"
    checkend = ["x509", "-noout", "-checkend", str(_CERT_RENEW_SECONDS), "-in", str(broker_pem)]
    good_for_a_week = _run_ok([executable, *checkend])  # False as well when there is no certificate
    if good_for_a_week and extensions_file.exists() and extensions_file.read_text() == extensions:
        return ca_cert, broker_pem
    extensions_file.write_text(extensions)
    key, request, cert = directory / "broker.key", directory / "broker.csr", directory / "broker.crt"
    try:
        request_key = ["req", "-new", *_NEW_KEY, "-subj", "/CN=localhost"]
        openssl("broker key", *request_key, "-keyout", key, "-out", request)
        sign: list[str | Path | int] = ["x509", "-req", "-days", "825", "-CA", ca_cert, "-CAkey", ca_key]
        sign += ["-set_serial", secrets.randbits(63), "-extfile", extensions_file]
        openssl("broker certificate", *sign, "-in", request, "-out", cert)
        # One file, key then certificate: what Kafka's ssl.keystore.type=PEM reads from a location.
        write_private(broker_pem, key.read_text() + cert.read_text())
    finally:
        for leftover in (key, request, cert):
            leftover.unlink(missing_ok=True)
    return ca_cert, broker_pem


def _broker_certificate_extensions(hosts: Iterable[str]) -> str:
    names = {"IP:127.0.0.1", "DNS:localhost"}
    for host in hosts:
        try:
            names.add(f"IP:{ipaddress.ip_address(host)}")
        except ValueError:
            names.add(f"DNS:{host}")
    return "\n".join(
        [
            "basicConstraints=critical,CA:FALSE",
            "keyUsage=critical,digitalSignature",
            # clientAuth: the broker presents it to its own controller listener too.
            "extendedKeyUsage=serverAuth,clientAuth",
            f"subjectAltName={','.join(sorted(names))}",
            "subjectKeyIdentifier=hash",
            "authorityKeyIdentifier=keyid,issuer",
            "",
        ]
    )


def scram_stored_key(password: str, salt: bytes, iterations: int) -> bytes:
    """RFC 5802 StoredKey for SCRAM-SHA-512: what the broker keeps to check a password, not the password."""
    return hashlib.sha512(
        hmac.digest(_salted_password(password, salt, iterations), b"Client Key", "sha512")
    ).digest()


def _salted_password(password: str, salt: bytes, iterations: int) -> bytes:
    # UTF-8 without SASLprep: what the Java broker and kafka-python both do.
    return hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)


def _properties_value(value: str) -> str:
    """``value`` as a Java .properties value: backslashes doubled, non-ASCII as \\uXXXX (read as ISO-8859-1)."""
    escaped = []
    for char in value:
        if char == "\\":
            escaped.append("\\\\")
        elif " " <= char <= "~":
            escaped.append(char)
        else:
            units = char.encode("utf-16-be")
            escaped.extend(f"\\u{units[i]:02x}{units[i + 1]:02x}" for i in range(0, len(units), 2))
    return "".join(escaped)


def _double_quoted(value: str) -> str:
    """``value`` in double quotes, backslashes and quotes escaped: JAAS and java @argfile syntax."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _run_java_argfile(java: Sequence[str], arguments: Sequence[str], argfile: Path, what: str) -> str:
    """Run ``java`` with the main class and its ``arguments`` read from a 0600 @argfile.

    Arguments on a command line are readable by every local user (/proc/<pid>/cmdline).
    """
    write_private(argfile, "".join(_double_quoted(argument) + "\n" for argument in arguments))
    try:
        return _run([*java, f"@{argfile}"], what)
    finally:
        argfile.unlink(missing_ok=True)


# --- services --------------------------------------------------------------------------------------


class _Service:
    """How to configure, start and probe one local server; ``LocalStack`` runs the process."""

    name = ""
    executable = ""
    install_hint = ""
    start_timeout = 60.0
    stop_timeout = 10.0

    def __init__(self, settings: Settings, home: Path) -> None:
        self.settings = settings
        self.home = home
        self.host = connect_host(settings.bind_host)

    @property
    def directory(self) -> Path:
        return self.home / self.name

    @property
    def group(self) -> str:
        """The name it is selected by (``--service``); services of one group start together."""
        return self.name

    def ports(self) -> list[tuple[int, str]]:
        """The ports it listens on, each with the setting that moves it."""
        raise NotImplementedError

    def address(self) -> str:
        raise NotImplementedError

    def check(self) -> None:
        """Raise StackError for set-up problems found before anything starts."""
        _require_executable(self.executable, self.install_hint)

    def prepare(self) -> list[str]:
        """Write the configuration and return the command line."""
        raise NotImplementedError

    def answers(self) -> bool:
        raise NotImplementedError

    def ready(self) -> bool:
        """Ready for use; stricter than ``answers`` where a server needs time to settle."""
        return self.answers()


class _Kafka(_Service):
    """One KRaft node of ``nodes`` (all of them with one broker)."""

    name = "kafka"
    executable = "java"
    install_hint = _JAVA_HINT
    stop_timeout = 30.0  # a clean KRaft shutdown takes a few seconds

    def __init__(self, settings: Settings, home: Path, node: KafkaNode, nodes: Sequence[KafkaNode]) -> None:
        super().__init__(settings, home)
        self.node, self.nodes = node, list(nodes)
        self.name = node.service

    @property
    def group(self) -> str:
        return "kafka"

    @property
    def cluster_directory(self) -> Path:
        """The first node's directory: the cluster record and the TLS material live there."""
        return self.home / "kafka"

    def ports(self) -> list[tuple[int, str]]:
        return [
            (self.node.port, "DEPTPULSE_KAFKA_BOOTSTRAP_SERVERS"),
            (self.node.controller_port, "DEPTPULSE_KAFKA_CONTROLLER_PORT"),
        ]

    @property
    def secure(self) -> bool:
        """SASL_SSL: SCRAM over TLS for clients, mutual TLS on the controller port."""
        return self.settings.kafka_security_protocol == "SASL_SSL"

    @property
    def tls_directory(self) -> Path:
        return self.cluster_directory / "tls"

    def address(self) -> str:
        own = self.settings.kafka_bootstrap_servers if len(self.nodes) == 1 else f"{self.host}:{self.node.port}"
        return f"{own} (SASL_SSL)" if self.secure else own

    def check(self) -> None:
        super().check()
        if self.settings.kafka_home is not None:
            _kafka_home_jars(self.settings.kafka_home)
        elif not (cached_kafka_jars(self.settings).parent / _COMPLETE_MARKER).exists():
            _require_executable("mvn", _MAVEN_HINT)
        if self.secure:
            if len(self.nodes) > 1:
                raise StackError(
                    "the local stack runs SASL_SSL with one broker only: unset DEPTPULSE_KAFKA_BROKERS "
                    "or DEPTPULSE_KAFKA_SECURITY_PROTOCOL"
                )
            _require_executable("openssl", _OPENSSL_HINT)
            self._check_credentials()
        self._check_formatted_security()
        self._check_formatted_brokers()

    def _check_formatted_brokers(self) -> None:
        """The storage's quorum is the brokers it was formatted for; refuse to start another count."""
        if not (self.cluster_directory / "data" / "meta.properties").exists():
            return
        record = _read_cluster_record(self.cluster_directory)
        formatted = int(record["brokers"]) if record is not None else 1  # before records: one broker
        if formatted != len(self.nodes):
            raise StackError(
                f"the Kafka storage under {self.home} was formatted for {formatted} broker(s): set "
                f"DEPTPULSE_KAFKA_BROKERS={formatted} (stack up --kafka-brokers {formatted}), use another "
                f"DEPTPULSE_HOME, or remove {self.home}/kafka* to start afresh (its messages are lost)"
            )

    def _check_credentials(self) -> None:
        username, password = self._scram_credentials()
        if not _SCRAM_USERNAME.fullmatch(username):
            raise StackError(
                f"DEPTPULSE_KAFKA_SASL_USERNAME={username!r}: use letters, digits and . _ @ - only"
            )
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in password):
            raise StackError("DEPTPULSE_KAFKA_SASL_PASSWORD must not contain control characters")
        ca_cert, cafile = self.tls_directory / "ca.crt", self.settings.kafka_ssl_cafile
        if cafile is None:
            raise StackError(
                f"set DEPTPULSE_KAFKA_SSL_CAFILE={ca_cert}: with SASL_SSL, clients check the local "
                "broker's certificate against the CA the stack makes there"
            )
        cafile = cafile.expanduser().resolve()
        if cafile != ca_cert and not (
            ca_cert.exists() and cafile.is_file() and cafile.read_bytes() == ca_cert.read_bytes()
        ):
            raise StackError(
                f"DEPTPULSE_KAFKA_SSL_CAFILE={cafile} is not the local stack's CA; set it to {ca_cert}"
            )

    def _check_formatted_security(self) -> None:
        """Storage keeps the protocol and SCRAM credential it was formatted with; refuse to start otherwise."""
        data = self.directory / "data"
        if not (data / "meta.properties").exists():
            return
        record_file = self.directory / _SECURITY_RECORD
        record = json.loads(record_file.read_text()) if record_file.exists() else None
        afresh = f"use another DEPTPULSE_HOME, or remove {data} to start afresh (its messages are lost)"
        if not self.secure:
            if record is not None:
                raise StackError(
                    f"the broker under {self.directory} was formatted for SASL_SSL: set "
                    f"DEPTPULSE_KAFKA_SECURITY_PROTOCOL=SASL_SSL and its credentials, {afresh}"
                )
            return
        if record is None:
            raise StackError(
                f"the broker under {self.directory} was formatted for PLAINTEXT and has no SCRAM "
                f"credentials: unset DEPTPULSE_KAFKA_SECURITY_PROTOCOL, {afresh}"
            )
        username, password = self._scram_credentials()
        stored_key = scram_stored_key(password, base64.b64decode(record["salt"]), record["iterations"])
        if record["username"] != username or not hmac.compare_digest(
            stored_key, base64.b64decode(record["stored_key"])
        ):
            raise StackError(
                "DEPTPULSE_KAFKA_SASL_USERNAME and DEPTPULSE_KAFKA_SASL_PASSWORD are not the SCRAM credentials "
                f"the broker under {self.directory} was formatted with (user {record['username']!r}): use "
                f"those, {afresh}"
            )

    def _scram_credentials(self) -> tuple[str, str]:
        username, password = self.settings.kafka_sasl_username, self.settings.kafka_sasl_password
        assert username and password  # Settings requires both with SASL_SSL
        return username, password.get_secret_value()

    def server_properties(self) -> str:
        # From the nodes, not the setting: started from the cluster record, they may be more.
        replication, min_insync = kafka_replication(len(self.nodes))
        replication, min_insync = max(replication, 1), max(min_insync, 1)
        voters = ",".join(f"{node.node_id}@{self.host}:{node.controller_port}" for node in self.nodes)
        return "\n".join(
            [
                "# Written by `deptpulse stack up` from deptpulse settings; edits are overwritten.",
                "process.roles=broker,controller",
                f"node.id={self.node.node_id}",
                f"controller.quorum.voters={voters}",
                *(self._secure_listener_properties() if self.secure else self._listener_properties()),
                f"log.dirs={self.directory / 'data'}",
                "num.partitions=1",
                f"default.replication.factor={replication}",
                f"min.insync.replicas={min_insync}",
                f"offsets.topic.replication.factor={replication}",
                f"transaction.state.log.replication.factor={replication}",
                f"transaction.state.log.min.isr={min_insync}",
                f"share.coordinator.state.topic.replication.factor={replication}",
                f"share.coordinator.state.topic.min.isr={min_insync}",
                "group.initial.rebalance.delay.ms=0",
                "",
            ]
        )

    def _listener_properties(self) -> list[str]:
        settings, host, node = self.settings, self.host, self.node
        return [
            f"listeners=PLAINTEXT://{settings.bind_host}:{node.port},"
            f"CONTROLLER://{settings.bind_host}:{node.controller_port}",
            f"advertised.listeners=PLAINTEXT://{host}:{node.port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
        ]

    def _secure_listener_properties(self) -> list[str]:
        """SASL_SSL for clients and for the broker's own requests; mutual TLS on the controller port."""
        settings, host, tls, node = self.settings, self.host, self.tls_directory, self.node
        username, password = self._scram_credentials()
        # The JAAS entry checks clients' SCRAM against the credentials in the metadata log, and logs
        # the broker in as this user for its inter-broker requests. It is why this file is 0600.
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f"username={_double_quoted(username)} password={_double_quoted(password)};"
        )
        return [
            f"listeners=SASL_SSL://{settings.bind_host}:{node.port},"
            f"CONTROLLER://{settings.bind_host}:{node.controller_port}",
            f"advertised.listeners=SASL_SSL://{host}:{node.port}",
            "controller.listener.names=CONTROLLER",
            # Only a client presenting a certificate of our CA (this broker: broker.pem) reaches the
            # controller; a PLAINTEXT controller port would let any local process alter configs.
            "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL",
            "listener.name.controller.ssl.client.auth=required",
            "inter.broker.listener.name=SASL_SSL",
            f"sasl.enabled.mechanisms={KAFKA_SASL_MECHANISM}",
            f"sasl.mechanism.inter.broker.protocol={KAFKA_SASL_MECHANISM}",
            f"listener.name.sasl_ssl.{KAFKA_SASL_MECHANISM.lower()}.sasl.jaas.config={_properties_value(jaas)}",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={tls / 'broker.pem'}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={tls / 'ca.crt'}",
        ]

    def prepare(self) -> list[str]:
        java = [
            "java",
            "-Xmx512m",
            f"-Dlog4j2.configurationFile={self.directory / 'log4j2.xml'}",
            "-cp",
            f"{install_kafka(self.settings)}/*",
        ]
        properties = self.directory / "server.properties"
        (self.directory / "data").mkdir(parents=True, exist_ok=True)
        if self.secure:
            ensure_tls_material(self.tls_directory, [self.host])
            write_private(properties, self.server_properties())  # it holds the SCRAM password
        else:
            properties.write_text(self.server_properties())
        shutil.copyfile(KAFKA_LOG4J, self.directory / "log4j2.xml")
        self._format_storage(java, properties)
        return [*java, "kafka.Kafka", str(properties)]

    def _format_storage(self, java: list[str], properties: Path) -> None:
        # Once only: formatting again would give the broker a new cluster id and lose the data.
        if (self.directory / "data" / "meta.properties").exists():
            return
        cluster_id = self._formatted_cluster_id()
        if cluster_id is None:
            # The last line: the log4j configuration sends the tool's own log lines to stdout as well.
            output = _run([*java, "kafka.tools.StorageTool", "random-uuid"], "Kafka random-uuid")
            cluster_id = output.strip().splitlines()[-1]
        command = ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties)]
        if self.secure:
            self._format_with_scram_credential(java, command)
        else:
            _run([*java, *command], "Kafka format")

    def _formatted_cluster_id(self) -> str | None:
        """The cluster id of the first node, for the others: every node of a cluster shares it."""
        if self.node.node_id == 1:
            return None
        meta = self.cluster_directory / "data" / "meta.properties"
        for line in meta.read_text().splitlines() if meta.exists() else []:
            if line.startswith("cluster.id="):
                return line.split("=", 1)[1].strip()
        return None

    def write_cluster_record(self) -> None:
        """Record the broker count (the quorum the storage is formatted for) and every node's ports."""
        self.cluster_directory.mkdir(parents=True, exist_ok=True)
        record = {"brokers": len(self.nodes), "nodes": [node.as_record() for node in self.nodes]}
        (self.cluster_directory / _CLUSTER_RECORD).write_text(json.dumps(record, indent=2) + "\n")

    def _format_with_scram_credential(self, java: list[str], format_command: list[str]) -> None:
        """Format with the SCRAM user in the metadata log, and record which credential that was."""
        username, password = self._scram_credentials()
        salt = secrets.token_bytes(32)
        salted = base64.b64encode(_salted_password(password, salt, _SCRAM_ITERATIONS)).decode()
        scram = (
            f"{KAFKA_SASL_MECHANISM}=[name={username},iterations={_SCRAM_ITERATIONS},"
            f'salt="{base64.b64encode(salt).decode()}",saltedpassword="{salted}"]'
        )
        # The salted password authenticates as the user: off the command line, in a 0600 file.
        _run_java_argfile(
            java, [*format_command, "--add-scram", scram], self.directory / "format.args", "Kafka format"
        )
        record = {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": KAFKA_SASL_MECHANISM,
            "username": username,
            "iterations": _SCRAM_ITERATIONS,
            "salt": base64.b64encode(salt).decode(),
            "stored_key": base64.b64encode(scram_stored_key(password, salt, _SCRAM_ITERATIONS)).decode(),
        }
        write_private(self.directory / _SECURITY_RECORD, json.dumps(record, indent=2) + "\n")

    def answers(self) -> bool:
        """This node answers a metadata request (with several, it has joined the quorum)."""
        # Connect first: while nothing listens, kafka-python would spend its whole bootstrap timeout.
        if not accepts_connections(self.host, self.node.port):
            return False
        own = self.settings.model_copy(update={"kafka_bootstrap_servers": f"{self.host}:{self.node.port}"})
        return kafka_answers(own)


class _Prometheus(_Service):
    name = "prometheus"
    executable = "prometheus"
    install_hint = "install it with: apt-get install prometheus"

    def ports(self) -> list[tuple[int, str]]:
        return [(self.settings.prometheus_port, "DEPTPULSE_PROMETHEUS_PORT")]

    def address(self) -> str:
        return f"http://{self.host}:{self.settings.prometheus_port}"

    def prepare(self) -> list[str]:
        (self.directory / "data").mkdir(parents=True, exist_ok=True)
        config = self.directory / "prometheus.yml"
        config.write_text(render_prometheus_config(self.settings))
        return [
            self.executable,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.directory / 'data'}",
            f"--web.listen-address={self.settings.bind_host}:{self.settings.prometheus_port}",
            "--web.enable-lifecycle",
        ]

    def answers(self) -> bool:
        return _http_get(f"{self.address()}/-/ready") is not None

    def ready(self) -> bool:
        """Its self-scrape is up; when Alertmanager runs, it is scraped and discovered as well."""
        jobs_up = self._jobs_up()
        if "prometheus" not in jobs_up:
            return False
        alertmanager = f"{self.host}:{self.settings.alertmanager_port}"
        if _http_get(f"http://{alertmanager}/-/ready") is None:
            return True  # not part of this stack run: nothing more to wait for
        return "alertmanager" in jobs_up and self._discovered(alertmanager)

    def _jobs_up(self) -> set[str]:
        targets = _http_json(f"{self.address()}/api/v1/targets?state=active") or {"activeTargets": []}
        return {target["labels"]["job"] for target in targets["activeTargets"] if target["health"] == "up"}

    def _discovered(self, alertmanager: str) -> bool:
        found = _http_json(f"{self.address()}/api/v1/alertmanagers") or {"activeAlertmanagers": []}
        return any(alertmanager in entry["url"] for entry in found["activeAlertmanagers"])


class _Alertmanager(_Service):
    name = "alertmanager"
    executable = "prometheus-alertmanager"
    install_hint = "install it with: apt-get install prometheus-alertmanager"
    start_timeout = 30.0

    def ports(self) -> list[tuple[int, str]]:
        return [(self.settings.alertmanager_port, "DEPTPULSE_ALERTMANAGER_PORT")]

    def address(self) -> str:
        return f"http://{self.host}:{self.settings.alertmanager_port}"

    def prepare(self) -> list[str]:
        (self.directory / "data").mkdir(parents=True, exist_ok=True)
        return [
            self.executable,
            f"--config.file={ALERTMANAGER_CONFIG}",
            f"--storage.path={self.directory / 'data'}",
            f"--web.listen-address={self.settings.bind_host}:{self.settings.alertmanager_port}",
            "--cluster.listen-address=",  # a single instance: no gossip port
        ]

    def answers(self) -> bool:
        return _http_get(f"{self.address()}/-/ready") is not None


class _WecomRelay(_Service):
    """``deptpulse wecom-relay``: Alertmanager's webhook to WeCom group robots."""

    name = "wecom-relay"
    executable = str(Path(sys.executable).with_name("deptpulse"))
    install_hint = "install deptpulse into this Python environment (pip install -e .)"
    start_timeout = 30.0

    def ports(self) -> list[tuple[int, str]]:
        return [(self.settings.wecom_relay_port, "DEPTPULSE_WECOM_RELAY_PORT")]

    def address(self) -> str:
        return f"http://{self.host}:{self.settings.wecom_relay_port}"

    def prepare(self) -> list[str]:
        # The dead-letter path names the home directory: that is how `pid` knows the process is ours.
        return [
            self.executable,
            "wecom-relay",
            f"--host={self.settings.bind_host}",
            f"--port={self.settings.wecom_relay_port}",
            f"--dead-letters={self.home / self.name / 'dead-letters.jsonl'}",
        ]

    def answers(self) -> bool:
        return _http_get(f"{self.address()}/healthz") is not None


def render_prometheus_config(
    settings: Settings, source: Path = PROMETHEUS_CONFIG, external_labels: Mapping[str, str] | None = None
) -> str:
    """deploy/prometheus/prometheus.yml with the configured ports and absolute rule-file paths, and
    ``external_labels`` added to every alert it sends, if given."""
    config = yaml.safe_load(source.read_text())
    if external_labels:
        config.setdefault("global", {}).setdefault("external_labels", {}).update(external_labels)
    host = connect_host(settings.bind_host)
    ports = {
        "prometheus": settings.prometheus_port,
        "alertmanager": settings.alertmanager_port,
        "deptpulse-worker": settings.worker_port,
        "deptpulse-gateway": settings.gateway_port,
    }
    for job in config["scrape_configs"]:
        if job["job_name"] in ports:
            job["static_configs"] = [{"targets": [f"{host}:{ports[job['job_name']]}"]}]
    alertmanager_targets = [{"targets": [f"{host}:{settings.alertmanager_port}"]}]
    config["alerting"] = {"alertmanagers": [{"static_configs": alertmanager_targets}]}
    config["rule_files"] = [str(source.parent / pattern) for pattern in config.get("rule_files") or []]
    rendered: str = yaml.safe_dump(config, sort_keys=False)
    return f"# Generated by `deptpulse stack up` from {source}; edit that file instead.\n{rendered}"


def clickhouse_status(settings: Settings) -> ServiceStatus:
    """Embedded chdb (its path; not opened: a process may hold one chdb path only) or the server."""
    if settings.clickhouse_url is None:
        return ServiceStatus("clickhouse", f"chdb {settings.chdb_path}", None, None)
    url = urlsplit(settings.clickhouse_url.get_secret_value())
    netloc = f"{url.username}@{url.hostname}" if url.username else str(url.hostname)
    address = f"{url.scheme}://{netloc}{f':{url.port}' if url.port else ''}{url.path}"
    return ServiceStatus(
        "clickhouse", address, None, _http_get(f"{url.scheme}://{url.netloc}/ping") is not None
    )


# --- the stack -------------------------------------------------------------------------------------


class LocalStack:
    """Starts, stops and reports the local services under ``settings.home``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.home.expanduser().resolve()
        nodes = _stack_kafka_nodes(settings, self.home)
        services = (
            *(_Kafka(settings, self.home, node, nodes) for node in nodes),
            _WecomRelay(settings, self.home),
            _Alertmanager(settings, self.home),
            _Prometheus(settings, self.home),
        )
        self.services: dict[str, _Service] = {service.name: service for service in services}
        # Processes this instance started, so that stopping them also settles their Popen objects.
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def install_kafka(self) -> Path:
        """Resolve the Kafka jars (once per pom.xml) and return their directory."""
        return install_kafka(self.settings)

    def up(self, services: Iterable[str] = SERVICES) -> list[StartResult]:
        """Start the services that are not running yet; checks every one before starting any.

        The Kafka nodes start together: none answers before a majority of the quorum runs.
        """
        wanted = self._select(services)
        self._check_distinct_ports()
        to_start = [service for service in wanted if self.pid(service.name) is None]
        for service in to_start:
            service.check()
            self._check_ports(service)
        kafka = [service for service in to_start if isinstance(service, _Kafka)]
        if kafka:
            kafka[0].write_cluster_record()
        results = []
        for group in _groups(wanted):
            launched = []
            for service in group:
                pid = self.pid(service.name)
                if pid is not None:
                    results.append(StartResult(service.name, pid, already_running=True, seconds=0.0))
                else:
                    launched.append(self._launch(service))
            results.extend(self._wait_started(launched))
        return results

    def down(self, services: Iterable[str] = SERVICES) -> list[str]:
        """Stop our running services (SIGTERM, then SIGKILL); returns the names it stopped.

        The Kafka nodes are stopped together: one left alone waits for a quorum that is gone.
        """
        stopped: list[str] = []
        for group in reversed(_groups(self._select(services))):
            running = [(service, pid) for service in group if (pid := self.pid(service.name)) is not None]
            self._stop(running)
            stopped.extend(service.name for service, _ in running)
            for service in group:
                self._pid_file(service.name).unlink(missing_ok=True)
        return stopped

    def kill(self, name: str) -> int:
        """SIGKILL one running service process, as a crash would (fault tests); returns its pid.

        ``up`` starts it again; its pid file stays until then, naming a process that is gone.
        """
        pid = self.pid(name)
        if pid is None:
            raise StackError(f"{name} is not running")
        _signal_group(pid, signal.SIGKILL)
        child = self._children.pop(pid, None)
        if child is not None:
            child.wait()
        else:
            while process_is_running(pid):
                time.sleep(0.05)
        return pid

    def status(self) -> list[ServiceStatus]:
        """Each service: address, pid (when we run it) and whether it answers."""
        rows = [
            ServiceStatus(service.name, service.address(), self.pid(service.name), service.answers())
            for service in self._select(SERVICES)
        ]
        return [*rows, clickhouse_status(self.settings)]

    def pid(self, name: str) -> int | None:
        """The pid of our running ``name`` service, or None (stale pid files are ignored)."""
        pid_file = self._pid_file(name)
        try:
            pid = int(pid_file.read_text())
        except (OSError, ValueError):
            return None
        # The pid may have been reused by an unrelated process: ours mention our home directory.
        if process_is_running(pid) and f"{self.home}{os.sep}" in _command_line(pid):
            return pid
        return None

    def log(self, name: str) -> Path:
        return self.home / "logs" / f"{name}.log"

    def _pid_file(self, name: str) -> Path:
        return self.home / "run" / f"{name}.pid"

    def _select(self, names: Iterable[str]) -> list[_Service]:
        names = set(names)
        unknown = names - set(SERVICES)
        if unknown:
            raise StackError(
                f"unknown service(s) {', '.join(sorted(unknown))}; choose from {', '.join(SERVICES)}"
            )
        return [service for service in self.services.values() if service.group in names]

    def _check_distinct_ports(self) -> None:
        settings_of_port: dict[int, str] = {}
        for service in self.services.values():
            for port, setting in service.ports():
                if port in settings_of_port:
                    raise StackError(
                        f"{settings_of_port[port]} and {setting} both use port {port}; give each its own"
                    )
                settings_of_port[port] = setting

    def _check_ports(self, service: _Service) -> None:
        bind_host = self.settings.bind_host or "0.0.0.0"
        for port, setting in service.ports():
            if not port_is_free(bind_host, port):
                raise StackError(
                    f"port {port} ({service.name}) is already in use by another process; "
                    f"stop that process or set {setting} to a free port"
                )

    def _launch(self, service: _Service) -> _Launched:
        started = time.monotonic()
        argv = service.prepare()
        log = self.log(service.name)
        log.parent.mkdir(parents=True, exist_ok=True)
        self._pid_file(service.name).parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as output:
            # A session of its own: the server outlives this command and ignores its Ctrl-C.
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._children[process.pid] = process
        self._pid_file(service.name).write_text(f"{process.pid}\n")
        return _Launched(service, process, started)

    def _wait_started(self, launched: Sequence[_Launched]) -> list[StartResult]:
        """Wait until each launched service is ready; on a failure stop them all and say why."""
        results = []
        for each in launched:
            service, process = each.service, each.process

            def exited(process: subprocess.Popen[bytes] = process) -> str | None:
                if process.poll() is None:
                    return None
                return f"exited during start-up (exit code {process.returncode})"

            try:
                _wait_until(service.ready, service.start_timeout, exited)
            except StackError as error:
                self._stop([(other.service, other.process.pid) for other in launched])
                for other in launched:
                    self._pid_file(other.service.name).unlink(missing_ok=True)
                log = self.log(service.name)
                raise StackError(
                    f"{service.name} did not start: {error}; last lines of {log}:\n{_log_tail(log)}"
                ) from None
            seconds = time.monotonic() - each.started
            results.append(StartResult(service.name, process.pid, already_running=False, seconds=seconds))
        return results

    def _stop(self, running: Sequence[tuple[_Service, int]]) -> None:
        """SIGTERM to every process at once, SIGKILL to those still there after their grace period."""
        for _service, pid in running:
            _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + max((service.stop_timeout for service, _ in running), default=0.0)
        while any(process_is_running(pid) for _, pid in running) and time.monotonic() < deadline:
            time.sleep(0.1)
        for _service, pid in running:
            if process_is_running(pid):
                _signal_group(pid, signal.SIGKILL)
                while process_is_running(pid):
                    time.sleep(0.05)
            child = self._children.pop(pid, None)
            if child is not None:
                child.wait()  # already reaped; records the exit so Popen does not warn about a live child
        for service, _ in running:
            self._wait_ports_free(service)

    def _wait_ports_free(self, service: _Service, timeout: float = 5.0) -> None:
        bind_host = self.settings.bind_host or "0.0.0.0"
        deadline = time.monotonic() + timeout
        for port, _setting in service.ports():
            while not port_is_free(bind_host, port):
                if time.monotonic() > deadline:
                    raise StackError(f"port {port} still in use after stopping {service.name}")
                time.sleep(0.1)


@dataclass(frozen=True)
class _Launched:
    service: _Service
    process: subprocess.Popen[bytes]
    started: float  # time.monotonic() before its configuration was written


def _groups(services: Sequence[_Service]) -> list[list[_Service]]:
    """Consecutive services of one group together (the Kafka nodes), in order."""
    groups: list[list[_Service]] = []
    for service in services:
        if groups and groups[-1][0].group == service.group:
            groups[-1].append(service)
        else:
            groups.append([service])
    return groups


def _signal_group(pid: int, signum: int) -> None:
    # Each server leads its own session (start_new_session), so its group id is its pid.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)

"""`deptpulse simulate` and `deptpulse publish` through a real broker, read back with kcat."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from deptpulse.settings import Settings
from deptpulse.stack import create_topics

pytestmark = pytest.mark.integration

KCAT = shutil.which("kcat")


def deptpulse(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real command with the settings in its environment, as a user would."""
    env = {
        **os.environ,
        "DEPTPULSE_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "DEPTPULSE_EVENTS_TOPIC": settings.events_topic,
        "DEPTPULSE_HOME": str(settings.home),
    }
    return subprocess.run(
        [sys.executable, "-m", "deptpulse.cli", *args], env=env, capture_output=True, text=True, timeout=300
    )


def kcat_values(settings: Settings) -> list[str]:
    assert KCAT is not None, "kcat is part of the set-up (Makefile: system-packages)"
    result = subprocess.run(
        [
            KCAT,
            "-C",
            "-b",
            settings.kafka_bootstrap_servers,
            "-t",
            settings.events_topic,
            "-e",
            "-q",
            "-f",
            "%s\n",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.splitlines()


@pytest.fixture
def topic_settings(kafka_stack: Settings) -> Settings:
    """The session's broker with a fresh events topic of its own."""
    settings = kafka_stack.model_copy(update={"events_topic": f"test-roundtrip-{uuid.uuid4().hex[:8]}"})
    create_topics(settings)
    return settings


def test_a_simulated_file_published_is_consumed_whole_by_kcat(
    topic_settings: Settings, tmp_path: Path
) -> None:
    history = tmp_path / "x.jsonl"
    simulated = deptpulse(
        topic_settings,
        "simulate", "--scenario", "it-degradation", "--start", "2026-03-02T00:00:00Z",
        "--duration", "3d", "--rate", "0.02", "--seed", "5", "--out", str(history),
    )  # fmt: skip
    assert simulated.returncode == 0, simulated.stderr
    lines = history.read_text(encoding="utf-8").splitlines()
    assert len(lines) > 3000
    assert simulated.stdout.startswith(f"{len(lines)} events (")

    published = deptpulse(topic_settings, "publish", str(history))
    assert published.returncode == 0, published.stderr
    assert (
        published.stdout.strip()
        == f"{len(lines)} events published to {topic_settings.events_topic}, 0 rejected"
    )
    assert not (tmp_path / "x.jsonl.rejects.jsonl").exists()

    consumed = kcat_values(topic_settings)
    assert len(consumed) == len(lines)
    assert sorted(consumed) == sorted(lines)  # the file holds canonical JSON, and so does the topic


def test_publish_keeps_the_good_lines_and_exits_1_with_the_rejects(
    topic_settings: Settings, tmp_path: Path
) -> None:
    history = tmp_path / "x.jsonl"
    assert deptpulse(topic_settings, "simulate", "--start", "2026-03-02T09:00:00Z", "--duration", "600",
                     "--rate", "0.5", "--out", str(history)).returncode == 0  # fmt: skip
    good = history.read_text(encoding="utf-8").splitlines()
    unknown = json.loads(good[0]) | {"event_id": "bad-1", "provider_department": "marketing"}
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(
        "\n".join([good[0], json.dumps(unknown), *good[1:], "not json"]) + "\n", encoding="utf-8"
    )
    rejects = tmp_path / "rejects" / "mixed.rejects.jsonl"
    rejects.parent.mkdir()

    published = deptpulse(topic_settings, "publish", str(mixed), "--rejects", str(rejects))
    assert published.returncode == 1, published.stderr
    assert published.stdout.strip() == (
        f"{len(good)} events published to {topic_settings.events_topic}, 2 rejected "
        f"(unknown_department 1, decode 1): see {rejects}"
    )
    assert [json.loads(line)["line"] for line in rejects.read_text().splitlines()] == [2, len(good) + 2]
    assert len(kcat_values(topic_settings)) == len(good)


def test_simulate_publishes_history_straight_to_kafka(topic_settings: Settings) -> None:
    simulated = deptpulse(
        topic_settings,
        "simulate",
        "--start",
        "2026-03-02T08:00:00Z",
        "--duration",
        "2h",
        "--rate",
        "1",
        "--seed",
        "3",
    )
    assert simulated.returncode == 0, simulated.stderr
    count = int(simulated.stdout.split()[0])
    assert f"-> Kafka topic {topic_settings.events_topic}" in simulated.stdout
    assert len(kcat_values(topic_settings)) == count > 5000


def test_an_unreachable_broker_is_one_line_and_exit_code_2(kafka_stack: Settings, tmp_path: Path) -> None:
    events = tmp_path / "x.jsonl"
    events.write_text("{}\n", encoding="utf-8")
    closed = kafka_stack.model_copy(update={"kafka_bootstrap_servers": "127.0.0.1:1"})
    published = deptpulse(closed, "publish", str(events))
    assert published.returncode == 2
    assert published.stderr.strip().splitlines() == [
        "Error: cannot connect to Kafka at ['127.0.0.1:1']: KafkaTimeoutError: Unable to bootstrap from "
        "['127.0.0.1:1']"
    ]

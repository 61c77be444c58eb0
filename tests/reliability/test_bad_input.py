"""Bad input: the corpus (every kind, tests/reliability/corpus.py) mixed into good traffic.

No worker dies, the good events count exactly, each bad message is in the dead-letter topic with
its reason and nothing else is, and SQL-looking text in free string fields is accepted and
stored verbatim (inserts are parameterised).
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from tests.reliability.corpus import SQLISH, bad_messages, sql_in_every_string_field
from tests.reliability.harness import (
    FaultyRun,
    Message,
    assert_dead_letters_exact,
    assert_totals,
    expected_dead_letters,
    generate,
    partition_of,
    publish,
)

pytestmark = [pytest.mark.reliability, pytest.mark.integration]
SQL_EVENTS = 25  # x 4 events, one per free string field


def test_ten_thousand_bad_messages_are_dead_lettered_with_their_reasons(make_run: Callable[..., FaultyRun]) -> None:
    count = int(os.environ.get("RELIABILITY_BAD_COUNT", "10000"))
    start = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    mix = generate(seed=41, requests=1000, start=start)
    rnd = random.Random(41)
    # After the first tenth of good traffic: a partition's watermark exists, so "far_past" is late.
    corpus_now = start + timedelta(hours=16)
    first = len(mix.messages) // 10
    for bad in bad_messages(count, corpus_now, seed=41):
        where = rnd.randrange(first, len(mix.messages) + 1)
        mix.messages.insert(where, Message(partition_of(bad.key.decode()), bad.key, bad.value, bad.reason))
    for serial in range(SQL_EVENTS):
        for value in sql_in_every_string_field(corpus_now, serial):
            key = f"sql-{serial}"
            mix.messages.append(Message(partition_of(key), key.encode(), value))
            mix.valid.append(orjson.loads(value))

    run = make_run("bad")
    run.start()
    published = time.monotonic()
    ends = publish(run.settings, mix)
    publish_s = time.monotonic() - published
    run.wait_done(ends, 300)
    done_s = time.monotonic() - published
    rss = run.rss_mb()
    run.stop()

    assert_totals(run.pair_totals(), mix, "good events among bad ones:")
    duplicates = assert_dead_letters_exact(run.settings, expected_dead_letters(mix))
    rows = run.query(
        "SELECT event_id, source, payload FROM raw_events FINAL WHERE position(event_id, 'DROP TABLE') > 0 "
        "OR position(source, 'DROP TABLE') > 0 OR position(payload, 'DROP TABLE') > 0"
    )
    stored = {row[0]: (row[1], orjson.loads(row[2])) for row in rows}
    for serial in range(SQL_EVENTS):
        assert stored[f"{SQLISH}-{serial}"][0] == "hr-survey"
        assert stored[f"sql-source-{serial}"][0] == SQLISH
        assert stored[f"attr-{serial}"][1]["attributes"] == {SQLISH: SQLISH}
    comments = run.query("SELECT event_id, comment FROM comments FINAL WHERE position(comment, 'DROP TABLE') > 0")
    assert sorted(comments) == sorted([f"sql-comment-{s}", SQLISH] for s in range(SQL_EVENTS))
    print(f"bad input: {count} bad of {len(mix.messages)} messages, kinds {dict(Counter(m.bad_reason for m in mix.messages if m.bad_reason))}; "
          f"publish {publish_s:.1f}s, all committed {done_s:.1f}s after publishing began; worker RSS {rss:.0f} MiB; "
          f"dead-letter re-sends {duplicates}")

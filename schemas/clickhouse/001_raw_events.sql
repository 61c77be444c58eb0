-- Validated events the stream processor accepted (events still waiting for their request.opened
-- included), one row per Kafka message. Idempotent by construction: a batch that is re-processed
-- after a crash writes the same (sink_topic, sink_partition, sink_offset) again and the
-- ReplacingMergeTree keeps one; readers that need exactness use FINAL or LIMIT 1 BY.
-- The worker replays these rows (offset <= the applied offset in minute_buckets) to rebuild a
-- partition's state after a restart or a rebalance. `payload` is the canonical JSON of the event
-- without its free-text comment, which lives (redacted, shorter retention) in `comments`.
--
-- Cluster variant: add ON CLUSTER '{cluster}' and use ReplicatedReplacingMergeTree.
CREATE TABLE IF NOT EXISTS raw_events
(
    sink_topic LowCardinality(String),
    sink_partition UInt32,
    sink_offset Int64,
    event_id String,
    event_type LowCardinality(String),
    occurred_at DateTime64(3, 'UTC'),
    source LowCardinality(String),
    provider_department LowCardinality(String),
    customer_department LowCardinality(String),
    service_category LowCardinality(String),  -- '' when none
    priority LowCardinality(String),          -- '' when none
    request_id String,                        -- '' for survey.answered
    payload String CODEC(ZSTD(3)),
    ingested_at DateTime64(3, 'UTC'),
    INDEX occurred_at_minmax occurred_at TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (sink_topic, sink_partition, sink_offset)
TTL toDateTime(occurred_at) + INTERVAL 400 DAY;

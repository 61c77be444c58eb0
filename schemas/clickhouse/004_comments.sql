-- Free-text comments of feedback and surveys, e-mail addresses and phone numbers redacted by the
-- worker before they are written, kept for a shorter time than the events. Keyed by event_id:
-- a re-processed batch rewrites the same rows.
--
-- Cluster variant: ON CLUSTER '{cluster}' with ReplicatedReplacingMergeTree.
CREATE TABLE IF NOT EXISTS comments
(
    event_id String,
    event_type LowCardinality(String),
    occurred_at DateTime64(3, 'UTC'),
    provider_department LowCardinality(String),
    customer_department LowCardinality(String),
    service_category LowCardinality(String),
    request_id String,
    score UInt8,              -- CSAT 1-5 or NPS 0-10
    comment String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (provider_department, customer_department, occurred_at, event_id)
TTL toDateTime(occurred_at) + INTERVAL 180 DAY;

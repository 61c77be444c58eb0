-- One row per request snapshot; the newest last_event_at wins (ReplacingMergeTree version).
-- Re-writing a snapshot after a crash is harmless. Read with FINAL (or argMax by last_event_at).
-- No PARTITION BY: a request's rows must stay in one partition to be collapsed.
--
-- Cluster variant: ON CLUSTER '{cluster}' with ReplicatedReplacingMergeTree(last_event_at).
CREATE TABLE IF NOT EXISTS request_facts
(
    request_id String,
    provider_department LowCardinality(String),
    customer_department LowCardinality(String),
    service_category LowCardinality(String),
    priority LowCardinality(Nullable(String)),
    opened_at DateTime64(3, 'UTC'),
    first_response_at Nullable(DateTime64(3, 'UTC')),
    resolved_at Nullable(DateTime64(3, 'UTC')),
    closed_at Nullable(DateTime64(3, 'UTC')),
    status LowCardinality(String),
    reopen_count UInt32,
    first_response_wall_s Nullable(Float64),
    first_response_business_s Nullable(Float64),
    resolution_wall_s Nullable(Float64),
    resolution_business_s Nullable(Float64),
    sla_first_response_target_s Nullable(Float64),
    sla_resolution_target_s Nullable(Float64),
    sla_met Nullable(Bool),
    last_event_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(last_event_at)
ORDER BY request_id
TTL toDateTime(last_event_at) + INTERVAL 400 DAY;

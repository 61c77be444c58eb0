-- Minute aggregates AND the applied Kafka offsets, in ONE table on purpose.
--
-- The worker writes each batch as a single INSERT holding the batch's aggregate deltas
-- (row_kind = 'bucket') and, per Kafka partition in the batch, the last offset it covers
-- (row_kind = 'offset'). A single INSERT of fewer than max_insert_block_size rows into one
-- partition of one MergeTree table becomes one part, which appears atomically: after a crash
-- either the deltas and the offset are both there or neither is. Hence NO `PARTITION BY` here
-- (a partition key would split the insert into several parts, committed one by one).
--
-- Counters are signed: a delta may retract a sample an out-of-order event corrected. Rows are
-- merged by the AggregatingMergeTree in the background; queries never rely on that and always
-- aggregate (see the minute_aggregates and sink_offsets views).
--
-- Cluster variant: ON CLUSTER '{cluster}' with ReplicatedAggregatingMergeTree, and the worker
-- must insert into this local replicated table (never through a Distributed table, which splits
-- an insert by shard). Replicated tables deduplicate retried inserts by insert_deduplication_token
-- by default; non_replicated_deduplication_window gives this single-node table the same.
CREATE TABLE IF NOT EXISTS minute_buckets
(
    row_kind LowCardinality(String),                 -- 'bucket' | 'offset'
    provider_department LowCardinality(String),
    customer_department LowCardinality(String),
    service_category LowCardinality(String),         -- '' when none
    bucket_start DateTime('UTC'),                    -- minute start; 1970-01-01 on offset rows
    sink_topic LowCardinality(String),               -- '' on bucket rows
    sink_partition Int32,                            -- -1 on bucket rows
    applied_offset SimpleAggregateFunction(max, Int64),
    requests_opened SimpleAggregateFunction(sum, Int64),
    requests_resolved SimpleAggregateFunction(sum, Int64),
    requests_reopened SimpleAggregateFunction(sum, Int64),
    first_response_count SimpleAggregateFunction(sum, Int64),
    first_response_business_sum_s SimpleAggregateFunction(sum, Float64),
    first_response_wall_sum_s SimpleAggregateFunction(sum, Float64),
    first_response_hist SimpleAggregateFunction(sumMap, Map(UInt16, Int64)),
    resolution_count SimpleAggregateFunction(sum, Int64),
    resolution_business_sum_s SimpleAggregateFunction(sum, Float64),
    resolution_wall_sum_s SimpleAggregateFunction(sum, Float64),
    resolution_hist SimpleAggregateFunction(sumMap, Map(UInt16, Int64)),
    sla_met SimpleAggregateFunction(sum, Int64),
    sla_breached SimpleAggregateFunction(sum, Int64),
    csat_1 SimpleAggregateFunction(sum, Int64),
    csat_2 SimpleAggregateFunction(sum, Int64),
    csat_3 SimpleAggregateFunction(sum, Int64),
    csat_4 SimpleAggregateFunction(sum, Int64),
    csat_5 SimpleAggregateFunction(sum, Int64),
    nps_promoters SimpleAggregateFunction(sum, Int64),
    nps_passives SimpleAggregateFunction(sum, Int64),
    nps_detractors SimpleAggregateFunction(sum, Int64)
)
ENGINE = AggregatingMergeTree
ORDER BY (row_kind, provider_department, customer_department, service_category, bucket_start,
          sink_topic, sink_partition)
SETTINGS non_replicated_deduplication_window = 10000;

-- Bucket rows only, merged: what every query reads.
CREATE VIEW IF NOT EXISTS minute_aggregates AS
SELECT
    provider_department,
    customer_department,
    service_category,
    bucket_start,
    sum(requests_opened) AS requests_opened,
    sum(requests_resolved) AS requests_resolved,
    sum(requests_reopened) AS requests_reopened,
    sum(first_response_count) AS first_response_count,
    sum(first_response_business_sum_s) AS first_response_business_sum_s,
    sum(first_response_wall_sum_s) AS first_response_wall_sum_s,
    sumMap(first_response_hist) AS first_response_hist,
    sum(resolution_count) AS resolution_count,
    sum(resolution_business_sum_s) AS resolution_business_sum_s,
    sum(resolution_wall_sum_s) AS resolution_wall_sum_s,
    sumMap(resolution_hist) AS resolution_hist,
    sum(sla_met) AS sla_met,
    sum(sla_breached) AS sla_breached,
    sum(csat_1) AS csat_1,
    sum(csat_2) AS csat_2,
    sum(csat_3) AS csat_3,
    sum(csat_4) AS csat_4,
    sum(csat_5) AS csat_5,
    sum(nps_promoters) AS nps_promoters,
    sum(nps_passives) AS nps_passives,
    sum(nps_detractors) AS nps_detractors
FROM minute_buckets
WHERE row_kind = 'bucket'
GROUP BY provider_department, customer_department, service_category, bucket_start;

-- The offset of the last message whose effects are in minute_buckets, per Kafka partition.
CREATE VIEW IF NOT EXISTS sink_offsets AS
SELECT sink_topic, sink_partition, max(applied_offset) AS applied_offset
FROM minute_buckets
WHERE row_kind = 'offset'
GROUP BY sink_topic, sink_partition;

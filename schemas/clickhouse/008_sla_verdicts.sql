-- Separate first-response and resolution SLA verdicts (issue 18): each judged when the metric
-- completes or when its target passes, counted in that minute; the combined verdict (sla_met,
-- sla_breached) stays. request_facts keeps each request's two verdicts (NULL until judged).
-- The minute_aggregates view and the rollup projections are rebuilt to carry the new columns
-- (the projections are stream_processors.scorecard.queries.ROLLUP_PROJECTIONS_DDL; a unit test
-- checks they agree). Rows written before hold 0 in the new columns: history is not re-judged.

ALTER TABLE minute_buckets ADD COLUMN IF NOT EXISTS first_response_sla_met SimpleAggregateFunction(sum, Int64) DEFAULT 0;

ALTER TABLE minute_buckets ADD COLUMN IF NOT EXISTS first_response_sla_breached SimpleAggregateFunction(sum, Int64) DEFAULT 0;

ALTER TABLE minute_buckets ADD COLUMN IF NOT EXISTS resolution_sla_met SimpleAggregateFunction(sum, Int64) DEFAULT 0;

ALTER TABLE minute_buckets ADD COLUMN IF NOT EXISTS resolution_sla_breached SimpleAggregateFunction(sum, Int64) DEFAULT 0;

ALTER TABLE request_facts ADD COLUMN IF NOT EXISTS first_response_sla_met Nullable(Bool);

ALTER TABLE request_facts ADD COLUMN IF NOT EXISTS resolution_sla_met Nullable(Bool);

CREATE OR REPLACE VIEW minute_aggregates AS
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
    sum(nps_detractors) AS nps_detractors,
    sum(first_response_sla_met) AS first_response_sla_met,
    sum(first_response_sla_breached) AS first_response_sla_breached,
    sum(resolution_sla_met) AS resolution_sla_met,
    sum(resolution_sla_breached) AS resolution_sla_breached
FROM minute_buckets
WHERE row_kind = 'bucket'
GROUP BY provider_department, customer_department, service_category, bucket_start;

ALTER TABLE minute_buckets DROP PROJECTION IF EXISTS minutely;

ALTER TABLE minute_buckets DROP PROJECTION IF EXISTS hourly;

ALTER TABLE minute_buckets DROP PROJECTION IF EXISTS daily;

ALTER TABLE minute_buckets MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild';

ALTER TABLE minute_buckets ADD PROJECTION IF NOT EXISTS minutely
(
    SELECT row_kind, bucket_start, provider_department, customer_department,
        sum(requests_opened), sum(requests_resolved), sum(requests_reopened), sum(first_response_count), sum(first_response_business_sum_s), sum(first_response_wall_sum_s), sumMap(first_response_hist), sum(resolution_count), sum(resolution_business_sum_s), sum(resolution_wall_sum_s), sumMap(resolution_hist), sum(sla_met), sum(sla_breached), sum(csat_1), sum(csat_2), sum(csat_3), sum(csat_4), sum(csat_5), sum(nps_promoters), sum(nps_passives), sum(nps_detractors), sum(first_response_sla_met), sum(first_response_sla_breached), sum(resolution_sla_met), sum(resolution_sla_breached)
    GROUP BY row_kind, bucket_start, provider_department, customer_department
);

ALTER TABLE minute_buckets ADD PROJECTION IF NOT EXISTS hourly
(
    SELECT row_kind, toStartOfHour(bucket_start), provider_department, customer_department,
        sum(requests_opened), sum(requests_resolved), sum(requests_reopened), sum(first_response_count), sum(first_response_business_sum_s), sum(first_response_wall_sum_s), sumMap(first_response_hist), sum(resolution_count), sum(resolution_business_sum_s), sum(resolution_wall_sum_s), sumMap(resolution_hist), sum(sla_met), sum(sla_breached), sum(csat_1), sum(csat_2), sum(csat_3), sum(csat_4), sum(csat_5), sum(nps_promoters), sum(nps_passives), sum(nps_detractors), sum(first_response_sla_met), sum(first_response_sla_breached), sum(resolution_sla_met), sum(resolution_sla_breached)
    GROUP BY row_kind, toStartOfHour(bucket_start), provider_department, customer_department
);

ALTER TABLE minute_buckets ADD PROJECTION IF NOT EXISTS daily
(
    SELECT row_kind, toStartOfDay(bucket_start), provider_department, customer_department,
        sum(requests_opened), sum(requests_resolved), sum(requests_reopened), sum(first_response_count), sum(first_response_business_sum_s), sum(first_response_wall_sum_s), sumMap(first_response_hist), sum(resolution_count), sum(resolution_business_sum_s), sum(resolution_wall_sum_s), sumMap(resolution_hist), sum(sla_met), sum(sla_breached), sum(csat_1), sum(csat_2), sum(csat_3), sum(csat_4), sum(csat_5), sum(nps_promoters), sum(nps_passives), sum(nps_detractors), sum(first_response_sla_met), sum(first_response_sla_breached), sum(resolution_sla_met), sum(resolution_sla_breached)
    GROUP BY row_kind, toStartOfDay(bucket_start), provider_department, customer_department
);

ALTER TABLE minute_buckets MATERIALIZE PROJECTION minutely;

ALTER TABLE minute_buckets MATERIALIZE PROJECTION hourly;

ALTER TABLE minute_buckets MATERIALIZE PROJECTION daily;

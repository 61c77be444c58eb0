-- The SLA clock of each request snapshot, for the at-risk watch (stream_processors.core.at_risk):
-- running, paused (waiting on the customer) or stopped (resolved or closed), and the wall and
-- business seconds of the pauses that have ended. Snapshots written before this migration have
-- sla_clock '' (the watch then reads the clock from status, without earlier pauses).

ALTER TABLE request_facts ADD COLUMN IF NOT EXISTS sla_clock LowCardinality(String) DEFAULT '' AFTER sla_met;

ALTER TABLE request_facts ADD COLUMN IF NOT EXISTS sla_paused_wall_s Float64 DEFAULT 0 AFTER sla_clock;

ALTER TABLE request_facts ADD COLUMN IF NOT EXISTS sla_paused_business_s Float64 DEFAULT 0 AFTER sla_paused_wall_s;

-- Comments keep the survey question and campaign they answer, and who answered: a pseudonymous
-- hash (of respondent_id, else the request, else the event), so that no comment, quote or theme
-- is shown for a group of fewer than the privacy minimum of distinct respondents.
-- Survey scores by question and campaign are read from raw_events' payload (every answer, with or
-- without a comment); invitations and improvement actions are raw_events rows too.

ALTER TABLE comments ADD COLUMN IF NOT EXISTS question_id LowCardinality(String) DEFAULT '';

ALTER TABLE comments ADD COLUMN IF NOT EXISTS campaign_id LowCardinality(String) DEFAULT '';

ALTER TABLE comments ADD COLUMN IF NOT EXISTS respondent String DEFAULT '';

ALTER TABLE raw_events ADD INDEX IF NOT EXISTS event_type_set event_type TYPE set(16) GRANULARITY 1;

ALTER TABLE raw_events MATERIALIZE INDEX event_type_set;

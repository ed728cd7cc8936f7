-- 0001: the call record (issue 9, "Call records (CDR)"): one row per call, written by
-- `records.consumer` from the call's summary on its tenant's stream. Times are UTC epoch
-- milliseconds (shown in the record's `timezone`); durations are milliseconds, NULL where
-- the call never reached that point (never queued: no wait; no agent: no talk).
-- `recording_path` and the billing columns are filled by recordings and billing later.
CREATE TABLE call_records (
    call_uuid TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    dnis TEXT NOT NULL,
    caller TEXT NOT NULL DEFAULT '',
    caller_kind TEXT NOT NULL DEFAULT '',
    caller_province TEXT NOT NULL DEFAULT '',
    caller_city TEXT NOT NULL DEFAULT '',
    timezone TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    answer_ms BIGINT,
    end_ms BIGINT NOT NULL,
    answer_mode TEXT NOT NULL DEFAULT '',
    ivr_path TEXT NOT NULL DEFAULT '[]',
    queue TEXT NOT NULL DEFAULT '',
    wait_ms BIGINT,
    agent TEXT NOT NULL DEFAULT '',
    agent_answer_ms BIGINT,
    talk_ms BIGINT,
    billsec INTEGER NOT NULL DEFAULT 0,
    hangup_cause TEXT NOT NULL DEFAULT '',
    hangup_side TEXT NOT NULL DEFAULT '',
    disposition TEXT NOT NULL,
    outcome TEXT NOT NULL DEFAULT '',
    recording_path TEXT,
    billed_fen BIGINT,
    billing_result TEXT,
    source_id TEXT NOT NULL DEFAULT '',
    stored_ms BIGINT NOT NULL
);

-- Exports and reports read one tenant's period.
CREATE INDEX call_records_tenant_start ON call_records (tenant, start_ms);

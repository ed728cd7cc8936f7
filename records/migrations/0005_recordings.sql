-- 0005: the recordings index (issue 9, "Recordings"; recordings/index.py). One row per recorded
-- call, written with its call record from the call's summary, i.e. from what RECORD_START and
-- RECORD_STOP said. `name` is relative to the recordings root
-- (<tenant>/<yyyy>/<mm>/<dd>/<call-uuid>.wav, the date in the tenant's time zone, also in `day`);
-- `duration_ms` and `size` are the switch's record_ms and record_file_size, NULL when it did not
-- report them. Every lookup names the tenant.
CREATE TABLE recordings (
    call_uuid TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    day TEXT NOT NULL,
    agent TEXT NOT NULL DEFAULT '',
    caller TEXT NOT NULL DEFAULT '',
    dnis TEXT NOT NULL DEFAULT '',
    queue TEXT NOT NULL DEFAULT '',
    channels INTEGER NOT NULL DEFAULT 1,
    started_by TEXT NOT NULL DEFAULT '',
    started_ms BIGINT NOT NULL,
    stopped_ms BIGINT,
    duration_ms BIGINT,
    size BIGINT,
    completion TEXT NOT NULL DEFAULT '',
    call_end_ms BIGINT,
    stored_ms BIGINT NOT NULL
);
CREATE INDEX recordings_tenant_started ON recordings (tenant, started_ms);
CREATE INDEX recordings_tenant_agent ON recordings (tenant, agent, started_ms);
CREATE INDEX recordings_tenant_caller ON recordings (tenant, caller, started_ms);
CREATE INDEX recordings_tenant_day ON recordings (tenant, day);

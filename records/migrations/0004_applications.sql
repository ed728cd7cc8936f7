-- 0004: applications for a 400 number, their materials and contracts (issue 12,
-- provider/applications.py). An application holds one reserved number for one applicant; its
-- materials are files kept under the tenant's folder (never a path a user gave); the audit's
-- due time is counted in working days (provider/sla.py); a contract follows an accepted audit.
CREATE TABLE applications (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL,
    tenant TEXT NOT NULL,
    applicant_kind TEXT NOT NULL,
    applicant_name TEXT NOT NULL,
    state TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    submitted_ms BIGINT,
    due_ms BIGINT,
    decided_ms BIGINT,
    decided_by TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX applications_by_state ON applications (state, due_ms);
CREATE TABLE application_materials (
    application_id TEXT NOT NULL,
    item TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    file_path TEXT NOT NULL DEFAULT '',
    size BIGINT NOT NULL DEFAULT 0,
    sha256 TEXT NOT NULL DEFAULT '',
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (application_id, item)
);
CREATE TABLE contracts (
    application_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    number TEXT NOT NULL,
    package TEXT NOT NULL,
    promotion TEXT NOT NULL DEFAULT '',
    term_years INTEGER NOT NULL,
    auto_renew INTEGER NOT NULL,
    yearly_fee_fen BIGINT NOT NULL,
    sla TEXT NOT NULL,
    esign_ref TEXT NOT NULL,
    starts_on TEXT NOT NULL,
    signed_ms BIGINT NOT NULL,
    signed_by TEXT NOT NULL
);

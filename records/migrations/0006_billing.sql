-- 0006: billing (issue 9, "Billing (400 cost sharing)", billing/). Money is integer fen; days
-- are 'YYYY-MM-DD' in the account's time zone (a package or a rate takes effect at that
-- day's midnight there). The ledger is the audit trail: every change of a balance (top-up,
-- adjustment, a rated call) is one row with who, when, why and the balance after it; `seq`
-- counts an account's changes, and the Redis credit view (billing/credit.py) keeps the
-- newest seq it was given, so an older view never overwrites a newer one.
CREATE TABLE billing_accounts (
    tenant TEXT PRIMARY KEY,
    timezone TEXT NOT NULL,
    increment_s INTEGER NOT NULL,
    monthly_rent_fen BIGINT NOT NULL,
    services TEXT NOT NULL DEFAULT '[]',
    balance_fen BIGINT NOT NULL,
    low_credit_fen BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE TABLE billing_packages (
    tenant TEXT NOT NULL,
    effective_on TEXT NOT NULL,
    package TEXT NOT NULL,
    set_by TEXT NOT NULL,
    set_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant, effective_on)
);
-- An account's own rates per caller kind, replacing the package's: consecutive periods
-- [valid_from, valid_to), the last one open (valid_to NULL); billing/accounts.py refuses a
-- table with a gap or an overlap.
CREATE TABLE billing_rates (
    tenant TEXT NOT NULL,
    caller_kind TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to TEXT,
    fen_per_minute BIGINT NOT NULL,
    PRIMARY KEY (tenant, caller_kind, valid_from)
);
-- Included minutes used, per account and package year (the calendar year of the answer).
CREATE TABLE billing_allowance (
    tenant TEXT NOT NULL,
    year INTEGER NOT NULL,
    used_s BIGINT NOT NULL,
    PRIMARY KEY (tenant, year)
);
CREATE TABLE billing_ledger (
    tenant TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    amount_fen BIGINT NOT NULL,
    balance_fen BIGINT NOT NULL,
    by_whom TEXT NOT NULL,
    reason TEXT NOT NULL,
    call_uuid TEXT,
    PRIMARY KEY (tenant, seq)
);
-- A call changes a balance once: its second rating finds this row.
CREATE UNIQUE INDEX billing_ledger_call ON billing_ledger (call_uuid);

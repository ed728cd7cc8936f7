-- 0007: what a tenant pays besides its calls, and included minutes per contract year (issue 9,
-- billing/fees.py). The data moves (allowance recomputed from the rated records, the account's
-- service list into dated subscriptions, contracts' promotions onto the package rows) run in
-- Python in this migration's transaction: records/migrate.py DATA_STEPS, billing/upgrade.py.
--
-- A promotion is a fixed yearly fee for a term, agreed on the package row it came with (the
-- price as signed, so a later catalogue change does not move it); `promotion_until` is the
-- first day (excluded) the list fee applies again.
ALTER TABLE billing_packages ADD COLUMN promotion TEXT NOT NULL DEFAULT '';
ALTER TABLE billing_packages ADD COLUMN promotion_fee_fen BIGINT;
ALTER TABLE billing_packages ADD COLUMN promotion_until TEXT;
-- Value-added services subscribed, as an append-only trail: a row says the service is on
-- (subscribed 1) or off (0) from `effective_on`; the newest row (set_ms) of the latest day not
-- after D says whether it is on at D. Nothing is updated or deleted.
CREATE TABLE billing_services (
    tenant TEXT NOT NULL,
    service TEXT NOT NULL,
    effective_on TEXT NOT NULL,
    subscribed INTEGER NOT NULL,
    set_by TEXT NOT NULL,
    set_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant, service, effective_on, set_ms)
);
-- Included minutes used per contract year: `year_from` is the year's first day, an
-- anniversary of the account's effective date (billing/fees.py contract_year), not the
-- calendar year of 0006's billing_allowance, which the data step replaces and drops.
CREATE TABLE billing_allowance_years (
    tenant TEXT NOT NULL,
    year_from TEXT NOT NULL,
    used_s BIGINT NOT NULL,
    PRIMARY KEY (tenant, year_from)
);

-- 0002: the 400-number inventory of the provider's back office (issue 12, provider/): every
-- number with its carrier, vanity grade and life-cycle state, and every move of that state
-- (who, when, why). `version` counts a number's moves: each move checks the version it read,
-- so two concurrent moves of one number cannot both land (provider/inventory.py).
CREATE TABLE numbers (
    number TEXT PRIMARY KEY,
    carrier TEXT NOT NULL,
    grade TEXT NOT NULL,
    points INTEGER NOT NULL,
    state TEXT NOT NULL,
    tenant TEXT NOT NULL DEFAULT '',
    holder TEXT NOT NULL DEFAULT '',
    reserved_until_ms BIGINT,
    version INTEGER NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX numbers_by_offer ON numbers (state, carrier, grade);
CREATE TABLE number_events (
    number TEXT NOT NULL,
    version INTEGER NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (number, version)
);

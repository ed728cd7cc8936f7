-- 0003: the test calls (拨测) placed when a number is activated (issue 12, provider/activation.py):
-- each with its result and the walk it printed, kept as the activation's report.
CREATE TABLE number_tests (
    number TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    tenant TEXT NOT NULL,
    actor TEXT NOT NULL,
    passed INTEGER NOT NULL,
    report TEXT NOT NULL,
    PRIMARY KEY (number, at_ms)
);

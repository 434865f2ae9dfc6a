-- Events that may be delivered more than once (registry notifications are retried) are logged once:
-- the first delivery of a key appends an entry and remembers its index.
CREATE TABLE log_dedupe (
    key TEXT   PRIMARY KEY,
    idx BIGINT NOT NULL
);

-- outbox.db as commit 600e0b0 made it: Dedupe window on lookup (seen_at dropped).
-- The DDL is its stores' SCHEMA strings, verbatim (git show 600e0b0:<file>), in this order:
--   gateway/outbox.py
-- then rows as the gateway writes them (made by the stores, kept in the columns this version had).
-- Such a database has no PRAGMA user_version (0): no commit before gateway/schema.py set one.

-- gateway/outbox.py
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, at REAL NOT NULL, line TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS seen (device TEXT NOT NULL, seq INTEGER NOT NULL, k REAL NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, source TEXT NOT NULL, device TEXT,
    reason TEXT NOT NULL, detail TEXT NOT NULL, size INTEGER NOT NULL, payload BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS dead_letters_reason ON dead_letters (reason, id);
CREATE TABLE IF NOT EXISTS dead_letter_counts (reason TEXT PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox_drops (id INTEGER PRIMARY KEY CHECK (id = 1), count INTEGER NOT NULL);

-- rows
INSERT INTO dead_letter_counts (reason, count) VALUES ('bad_json', 1);
INSERT INTO dead_letters (id, at, source, device, reason, detail, size, payload) VALUES (1, 1790000002.0, 'mqtt:fm/demo/lamp-0009/reading', 'lamp-0009', 'bad_json', 'Expecting value', 5, X'7b6f6f7073');
INSERT INTO outbox (id, at, line) VALUES (1, 1790000000.0, 'streetlight,site=demo,device=lamp-0001 lit=false,current_a=0 1790000000000000000');
INSERT INTO outbox (id, at, line) VALUES (2, 1790000001.0, 'drain_level,site=demo,device=well-0003 level_m=0.42 1790000001000000000');
INSERT INTO outbox_drops (id, count) VALUES (1, 12);
INSERT INTO seen (device, seq, k, at) VALUES ('lamp-0001', 17, 1789999939.0, 1790000000.0);
INSERT INTO seen (device, seq, k, at) VALUES ('well-0003', 4, 1789999969.0, 1790000001.0);

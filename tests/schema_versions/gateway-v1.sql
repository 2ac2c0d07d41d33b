-- gateway.db as commit aad0b54 made it: Ingest spine (the device registry).
-- The DDL is its stores' SCHEMA strings, verbatim (git show aad0b54:<file>), in this order:
--   gateway/devices.py
-- then rows as the gateway writes them (made by the stores, kept in the columns this version had).
-- Such a database has no PRAGMA user_version (0): no commit before gateway/schema.py set one.

-- gateway/devices.py
CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY, kind TEXT NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL,
    last_ts REAL, last_fields TEXT, online INTEGER NOT NULL, offline_reason TEXT, status_at REAL NOT NULL,
    readings INTEGER NOT NULL, rejected INTEGER NOT NULL);

-- rows
INSERT INTO devices (device, kind, first_seen, last_seen, last_ts, last_fields, online, offline_reason, status_at, readings, rejected) VALUES ('lamp-0002', 'streetlight', 1789999990.0, 1789999990.0, NULL, '{}', 0, 'status', 1789999990.0, 0, 0);
INSERT INTO devices (device, kind, first_seen, last_seen, last_ts, last_fields, online, offline_reason, status_at, readings, rejected) VALUES ('well-0003', 'drain_level', 1789999970.0, 1789999970.0, 1789999969.0, '{"level_m": 0.42}', 1, NULL, 1789999970.0, 1, 0);
INSERT INTO devices (device, kind, first_seen, last_seen, last_ts, last_fields, online, offline_reason, status_at, readings, rejected) VALUES ('lamp-0001', 'streetlight', 1789999940.0, 1789999940.0, 1789999939.0, '{"lit": false, "current_a": 0.0}', 1, NULL, 1789999940.0, 1, 0);

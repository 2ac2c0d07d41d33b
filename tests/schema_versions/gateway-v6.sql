-- gateway.db as commit 42712a3 made it: Users, roles, sessions and tokens.
-- The DDL is its stores' SCHEMA strings, verbatim (git show 42712a3:<file>), in this order:
--   gateway/auth.py
--   gateway/commitments/monthly.py
--   gateway/devices.py
--   gateway/events.py
--   gateway/inspections/checkpoints.py
--   gateway/inspections/field.py
--   gateway/inspections/records.py
--   gateway/inspections/taps.py
--   gateway/tickets.py
--   gateway/webhooks.py
-- then rows as the gateway writes them (made by the stores, kept in the columns this version had).
-- Such a database has no PRAGMA user_version (0): no commit before gateway/schema.py set one.

-- gateway/auth.py
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE COLLATE NOCASE, role TEXT NOT NULL,
    password TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0, must_change INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0, lockouts INTEGER NOT NULL DEFAULT 0, locked_until REAL,
    created_at REAL NOT NULL, created_by TEXT NOT NULL, last_login REAL, password_changed_at REAL);
CREATE TABLE IF NOT EXISTS auth_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT, hash TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, name TEXT NOT NULL,
    user_id INTEGER, device TEXT, created_at REAL NOT NULL, created_by TEXT NOT NULL, last_used REAL,
    expires_at REAL, revoked_at REAL, revoked_by TEXT);
CREATE INDEX IF NOT EXISTS auth_tokens_user ON auth_tokens (user_id);

-- gateway/commitments/monthly.py
CREATE TABLE IF NOT EXISTS commitment_months (month TEXT PRIMARY KEY, frozen_at REAL NOT NULL, report TEXT NOT NULL);

-- gateway/devices.py
CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY, kind TEXT NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL,
    last_ts REAL, last_fields TEXT, online INTEGER NOT NULL, offline_reason TEXT, status_at REAL NOT NULL,
    readings INTEGER NOT NULL, rejected INTEGER NOT NULL);

-- gateway/events.py
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, type TEXT NOT NULL, title TEXT NOT NULL, text TEXT NOT NULL,
    data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS event_cursors (relay TEXT PRIMARY KEY, last_id INTEGER NOT NULL);

-- gateway/inspections/checkpoints.py
CREATE TABLE IF NOT EXISTS checkpoint_edits (
    id TEXT PRIMARY KEY, doc TEXT, deleted INTEGER NOT NULL DEFAULT 0, at REAL NOT NULL, by TEXT NOT NULL);

-- gateway/inspections/field.py
CREATE TABLE IF NOT EXISTS patrol_visits (
    round TEXT NOT NULL, route TEXT NOT NULL, due_at REAL NOT NULL, checkpoint TEXT NOT NULL, seq INTEGER NOT NULL,
    expected_at REAL NOT NULL, at REAL, status TEXT NOT NULL, guard TEXT, flag TEXT,
    PRIMARY KEY (round, seq));
CREATE INDEX IF NOT EXISTS patrol_visits_due ON patrol_visits (due_at);

-- gateway/inspections/records.py
CREATE TABLE IF NOT EXISTS inspections (
    id INTEGER PRIMARY KEY, asset TEXT NOT NULL, plan TEXT NOT NULL, at REAL NOT NULL, by TEXT NOT NULL,
    tag_at REAL, results TEXT NOT NULL, note TEXT NOT NULL DEFAULT '', photos TEXT NOT NULL DEFAULT '[]',
    failed TEXT NOT NULL DEFAULT '', applied INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS inspections_asset ON inspections (asset, plan, at);
CREATE INDEX IF NOT EXISTS inspections_at ON inspections (at);
CREATE INDEX IF NOT EXISTS inspections_pending ON inspections (applied) WHERE applied = 0;
CREATE TABLE IF NOT EXISTS inspection_overdue (
    asset TEXT NOT NULL, plan TEXT NOT NULL, due_at REAL NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (asset, plan, due_at));

-- gateway/inspections/taps.py
CREATE TABLE IF NOT EXISTS taps (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, reader TEXT NOT NULL, tag TEXT NOT NULL, checkpoint TEXT,
    guard TEXT, badge TEXT, source TEXT NOT NULL, flagged TEXT, accepted_by TEXT);
CREATE INDEX IF NOT EXISTS taps_at ON taps (at);
CREATE TABLE IF NOT EXISTS unknown_tags (
    tag TEXT PRIMARY KEY, first_at REAL NOT NULL, last_at REAL NOT NULL, taps INTEGER NOT NULL,
    last_reader TEXT NOT NULL);

-- gateway/tickets.py
CREATE TABLE IF NOT EXISTS tickets (
    id INTEGER PRIMARY KEY, subject TEXT, asset TEXT, device TEXT, category TEXT, fault TEXT NOT NULL,
    priority TEXT NOT NULL, status TEXT NOT NULL, title TEXT NOT NULL, note TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL, opened_at REAL NOT NULL, opened_by TEXT NOT NULL, clocks_from REAL NOT NULL,
    respond_by REAL, arrive_by REAL, resolve_by REAL,
    acknowledged_at REAL, acknowledged_by TEXT, on_site_at REAL, on_site_by TEXT,
    resolved_at REAL, resolved_by TEXT, closed_at REAL, closed_by TEXT, cancelled_at REAL, cancelled_by TEXT,
    assignee TEXT, occurrences INTEGER NOT NULL DEFAULT 1, last_occurrence_at REAL NOT NULL,
    fault_cleared_at REAL, self_cleared INTEGER NOT NULL DEFAULT 0, reworks INTEGER NOT NULL DEFAULT 0,
    callback_due REAL, escalations TEXT NOT NULL DEFAULT '[]', callback_overdue INTEGER NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX IF NOT EXISTS one_live_ticket ON tickets (subject, fault)
    WHERE subject IS NOT NULL AND status NOT IN ('closed', 'cancelled');
CREATE INDEX IF NOT EXISTS tickets_status ON tickets (status, opened_at);
CREATE TABLE IF NOT EXISTS ticket_log (
    id INTEGER PRIMARY KEY, ticket INTEGER NOT NULL, at REAL NOT NULL, action TEXT NOT NULL, by TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '', data TEXT NOT NULL DEFAULT '{}');
CREATE INDEX IF NOT EXISTS ticket_log_ticket ON ticket_log (ticket, id);
CREATE TABLE IF NOT EXISTS callbacks (
    id INTEGER PRIMARY KEY, ticket INTEGER NOT NULL, at REAL NOT NULL, by TEXT NOT NULL, channel TEXT NOT NULL,
    score INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5), note TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS asset_states (
    id INTEGER PRIMARY KEY, asset TEXT NOT NULL, at REAL NOT NULL, state TEXT NOT NULL, faults TEXT NOT NULL,
    cause TEXT NOT NULL, device TEXT, reading_ts REAL);
CREATE INDEX IF NOT EXISTS asset_states_asset ON asset_states (asset, at);

-- gateway/webhooks.py
CREATE TABLE IF NOT EXISTS webhook_cursors (hook TEXT PRIMARY KEY, last_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id INTEGER PRIMARY KEY, hook TEXT NOT NULL, event_id INTEGER NOT NULL, at REAL NOT NULL,
    attempt INTEGER NOT NULL, ok INTEGER NOT NULL, status INTEGER, reason TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS webhook_deliveries_hook ON webhook_deliveries (hook, id);

-- rows
INSERT INTO asset_states (id, asset, at, state, faults, cause, device, reading_ts) VALUES (1, 'L-0001', 1789913600.0, 'in_service', '', 'site', NULL, NULL);
INSERT INTO asset_states (id, asset, at, state, faults, cause, device, reading_ts) VALUES (2, 'L-0001', 1790000000.0, 'faulty', 'lamp_out', 'reading', 'lamp-0001', 1789999999.0);
INSERT INTO asset_states (id, asset, at, state, faults, cause, device, reading_ts) VALUES (3, 'L-0001', 1790007500.0, 'in_service', '', 'reading', 'lamp-0001', 1790007499.0);
INSERT INTO asset_states (id, asset, at, state, faults, cause, device, reading_ts) VALUES (4, 'W-0003', 1790003600.0, 'faulty', 'level_high', 'reading', 'well-0003', 1790003598.0);
INSERT INTO asset_states (id, asset, at, state, faults, cause, device, reading_ts) VALUES (5, 'L-0007', 1790014400.0, 'faulty', 'lamp_out,offline', 'reading', 'lamp-0007', NULL);
INSERT INTO auth_tokens (id, hash, kind, name, user_id, device, created_at, created_by, last_used, expires_at, revoked_at, revoked_by) VALUES (1, 'b918b22a1581fedd39058065f00e6aad35bd561f20257151131a1ddcd21803de', 'installer', 'installer (first start)', NULL, NULL, 1790000000.0, 'first start', NULL, NULL, NULL, NULL);
INSERT INTO callbacks (id, ticket, at, by, channel, score, note) VALUES (1, 1, 1790093600.0, '客服小王', 'phone', 5, '业主满意');
INSERT INTO checkpoint_edits (id, doc, deleted, at, by) VALUES ('CP-31', '{"id": "CP-31", "name": "东门", "tag": "04A224B2C15E99"}', 0, 1790000000.0, 'manager');
INSERT INTO commitment_months (month, frozen_at, report) VALUES ('2026-08', 1788272000.0, '{"period": {"label": "2026-08"}, "results": []}');
INSERT INTO devices (device, kind, first_seen, last_seen, last_ts, last_fields, online, offline_reason, status_at, readings, rejected) VALUES ('lamp-0002', 'streetlight', 1789999990.0, 1789999990.0, NULL, '{}', 0, 'status', 1789999990.0, 0, 0);
INSERT INTO devices (device, kind, first_seen, last_seen, last_ts, last_fields, online, offline_reason, status_at, readings, rejected) VALUES ('well-0003', 'drain_level', 1789999970.0, 1789999970.0, 1789999969.0, '{"level_m": 0.42}', 1, NULL, 1789999970.0, 1, 0);
INSERT INTO devices (device, kind, first_seen, last_seen, last_ts, last_fields, online, offline_reason, status_at, readings, rejected) VALUES ('lamp-0001', 'streetlight', 1789999940.0, 1789999940.0, 1789999939.0, '{"lit": false, "current_a": 0.0}', 1, NULL, 1789999940.0, 1, 0);
INSERT INTO event_cursors (relay, last_id) VALUES ('mqtt', 3);
INSERT INTO events (id, at, type, title, text, data) VALUES (1, 1790000000.0, 'ticket.opened', '新工单 #1【零修】1号路灯不亮', '设施：L-0001
状态：open', '{"ticket": {"id": 1, "subject": "asset:L-0001", "asset": "L-0001", "device": "lamp-0001", "category": "lighting", "fault": "lamp_out", "priority": "general", "status": "open", "title": "1号路灯不亮", "note": "", "source": "sensor", "opened_at": 1790000000.0, "opened_by": "sensor", "clocks_from": 1790000000.0, "respond_by": 1790086400.0, "arrive_by": null, "resolve_by": 1790172800.0, "acknowledged_at": null, "acknowledged_by": null, "on_site_at": null, "on_site_by": null, "resolved_at": null, "resolved_by": null, "closed_at": null, "closed_by": null, "cancelled_at": null, "cancelled_by": null, "assignee": null, "occurrences": 1, "last_occurrence_at": 1790000000.0, "fault_cleared_at": null, "self_cleared": false, "reworks": 0, "callback_due": null, "escalations": []}}');
INSERT INTO events (id, at, type, title, text, data) VALUES (2, 1790000600.0, 'ticket.acknowledge', '工单已响应 #1【零修】1号路灯不亮', '设施：L-0001
状态：acknowledged', '{"ticket": {"id": 1, "subject": "asset:L-0001", "asset": "L-0001", "device": "lamp-0001", "category": "lighting", "fault": "lamp_out", "priority": "general", "status": "acknowledged", "title": "1号路灯不亮", "note": "", "source": "sensor", "opened_at": 1790000000.0, "opened_by": "sensor", "clocks_from": 1790000000.0, "respond_by": 1790086400.0, "arrive_by": null, "resolve_by": 1790172800.0, "acknowledged_at": 1790000600.0, "acknowledged_by": "李师傅", "on_site_at": null, "on_site_by": null, "resolved_at": null, "resolved_by": null, "closed_at": null, "closed_by": null, "cancelled_at": null, "cancelled_by": null, "assignee": "李师傅", "occurrences": 1, "last_occurrence_at": 1790000000.0, "fault_cleared_at": null, "self_cleared": false, "reworks": 0, "callback_due": null, "escalations": []}}');
INSERT INTO events (id, at, type, title, text, data) VALUES (3, 1790003600.0, 'ticket.arrive', '维修人员已到场 #1【零修】1号路灯不亮', '设施：L-0001
状态：on_site', '{"ticket": {"id": 1, "subject": "asset:L-0001", "asset": "L-0001", "device": "lamp-0001", "category": "lighting", "fault": "lamp_out", "priority": "general", "status": "on_site", "title": "1号路灯不亮", "note": "", "source": "sensor", "opened_at": 1790000000.0, "opened_by": "sensor", "clocks_from": 1790000000.0, "respond_by": 1790086400.0, "arrive_by": null, "resolve_by": 1790172800.0, "acknowledged_at": 1790000600.0, "acknowledged_by": "李师傅", "on_site_at": 1790003600.0, "on_site_by": "李师傅", "resolved_at": null, "resolved_by": null, "closed_at": null, "closed_by": null, "cancelled_at": null, "cancelled_by": null, "assignee": "李师傅", "occurrences": 1, "last_occurrence_at": 1790000000.0, "fault_cleared_at": null, "self_cleared": false, "reworks": 0, "callback_due": null, "escalations": []}}');
INSERT INTO events (id, at, type, title, text, data) VALUES (4, 1790007200.0, 'ticket.resolve', '工单已处理 #1【零修】1号路灯不亮', '设施：L-0001
状态：resolved
换了灯泡', '{"ticket": {"id": 1, "subject": "asset:L-0001", "asset": "L-0001", "device": "lamp-0001", "category": "lighting", "fault": "lamp_out", "priority": "general", "status": "resolved", "title": "1号路灯不亮", "note": "", "source": "sensor", "opened_at": 1790000000.0, "opened_by": "sensor", "clocks_from": 1790000000.0, "respond_by": 1790086400.0, "arrive_by": null, "resolve_by": 1790172800.0, "acknowledged_at": 1790000600.0, "acknowledged_by": "李师傅", "on_site_at": 1790003600.0, "on_site_by": "李师傅", "resolved_at": 1790007200.0, "resolved_by": "李师傅", "closed_at": null, "closed_by": null, "cancelled_at": null, "cancelled_by": null, "assignee": "李师傅", "occurrences": 1, "last_occurrence_at": 1790000000.0, "fault_cleared_at": null, "self_cleared": false, "reworks": 0, "callback_due": null, "escalations": []}}');
INSERT INTO events (id, at, type, title, text, data) VALUES (5, 1790007500.0, 'ticket.closed', '工单已关闭 #1【零修】1号路灯不亮', '设施：L-0001
状态：closed
the sensor confirmed the repair', '{"ticket": {"id": 1, "subject": "asset:L-0001", "asset": "L-0001", "device": "lamp-0001", "category": "lighting", "fault": "lamp_out", "priority": "general", "status": "closed", "title": "1号路灯不亮", "note": "", "source": "sensor", "opened_at": 1790000000.0, "opened_by": "sensor", "clocks_from": 1790000000.0, "respond_by": 1790086400.0, "arrive_by": null, "resolve_by": 1790172800.0, "acknowledged_at": 1790000600.0, "acknowledged_by": "李师傅", "on_site_at": 1790003600.0, "on_site_by": "李师傅", "resolved_at": 1790007200.0, "resolved_by": "李师傅", "closed_at": 1790007500.0, "closed_by": "sensor", "cancelled_at": null, "cancelled_by": null, "assignee": "李师傅", "occurrences": 1, "last_occurrence_at": 1790000000.0, "fault_cleared_at": 1790007500.0, "self_cleared": false, "reworks": 0, "callback_due": 1790266700.0, "escalations": []}}');
INSERT INTO events (id, at, type, title, text, data) VALUES (6, 1790093600.0, 'callback.recorded', '回访已记录 #1【零修】1号路灯不亮', '设施：L-0001
状态：closed
业主满意', '{"ticket": {"id": 1, "subject": "asset:L-0001", "asset": "L-0001", "device": "lamp-0001", "category": "lighting", "fault": "lamp_out", "priority": "general", "status": "closed", "title": "1号路灯不亮", "note": "", "source": "sensor", "opened_at": 1790000000.0, "opened_by": "sensor", "clocks_from": 1790000000.0, "respond_by": 1790086400.0, "arrive_by": null, "resolve_by": 1790172800.0, "acknowledged_at": 1790000600.0, "acknowledged_by": "李师傅", "on_site_at": 1790003600.0, "on_site_by": "李师傅", "resolved_at": 1790007200.0, "resolved_by": "李师傅", "closed_at": 1790007500.0, "closed_by": "sensor", "cancelled_at": null, "cancelled_by": null, "assignee": "李师傅", "occurrences": 1, "last_occurrence_at": 1790000000.0, "fault_cleared_at": 1790007500.0, "self_cleared": false, "reworks": 0, "callback_due": 1790266700.0, "escalations": []}}');
INSERT INTO events (id, at, type, title, text, data) VALUES (7, 1790003600.0, 'ticket.opened', '新工单 #2【急修】3号雨水井水位高', '设施：W-0003
状态：open', '{"ticket": {"id": 2, "subject": "asset:W-0003", "asset": "W-0003", "device": "well-0003", "category": "drainage", "fault": "level_high", "priority": "emergency", "status": "open", "title": "3号雨水井水位高", "note": "", "source": "sensor", "opened_at": 1790003600.0, "opened_by": "sensor", "clocks_from": 1790003600.0, "respond_by": 1790004500.0, "arrive_by": 1790005400.0, "resolve_by": 1790032400.0, "acknowledged_at": null, "acknowledged_by": null, "on_site_at": null, "on_site_by": null, "resolved_at": null, "resolved_by": null, "closed_at": null, "closed_by": null, "cancelled_at": null, "cancelled_by": null, "assignee": null, "occurrences": 1, "last_occurrence_at": 1790003600.0, "fault_cleared_at": null, "self_cleared": false, "reworks": 0, "callback_due": null, "escalations": []}}');
INSERT INTO events (id, at, type, title, text, data) VALUES (8, 1790005400.0, 'ticket.resolve', '工单已处理 #2【急修】3号雨水井水位高', '设施：W-0003
状态：resolved', '{"ticket": {"id": 2, "subject": "asset:W-0003", "asset": "W-0003", "device": "well-0003", "category": "drainage", "fault": "level_high", "priority": "emergency", "status": "resolved", "title": "3号雨水井水位高", "note": "", "source": "sensor", "opened_at": 1790003600.0, "opened_by": "sensor", "clocks_from": 1790003600.0, "respond_by": 1790004500.0, "arrive_by": 1790005400.0, "resolve_by": 1790032400.0, "acknowledged_at": 1790005400.0, "acknowledged_by": "张师傅", "on_site_at": null, "on_site_by": null, "resolved_at": 1790005400.0, "resolved_by": "张师傅", "closed_at": null, "closed_by": null, "cancelled_at": null, "cancelled_by": null, "assignee": "张师傅", "occurrences": 1, "last_occurrence_at": 1790003600.0, "fault_cleared_at": null, "self_cleared": false, "reworks": 0, "callback_due": null, "escalations": []}}');
INSERT INTO events (id, at, type, title, text, data) VALUES (9, 1790005760.0, 'ticket.reopened', '工单返修 #2【急修】3号雨水井水位高', '设施：W-0003
状态：open
the fault is still there after the repair', '{"ticket": {"id": 2, "subject": "asset:W-0003", "asset": "W-0003", "device": "well-0003", "category": "drainage", "fault": "level_high", "priority": "emergency", "status": "open", "title": "3号雨水井水位高", "note": "", "source": "sensor", "opened_at": 1790003600.0, "opened_by": "sensor", "clocks_from": 1790005760.0, "respond_by": 1790006660.0, "arrive_by": 1790007560.0, "resolve_by": 1790034560.0, "acknowledged_at": null, "acknowledged_by": null, "on_site_at": null, "on_site_by": null, "resolved_at": null, "resolved_by": null, "closed_at": null, "closed_by": null, "cancelled_at": null, "cancelled_by": null, "assignee": "张师傅", "occurrences": 2, "last_occurrence_at": 1790005760.0, "fault_cleared_at": null, "self_cleared": false, "reworks": 1, "callback_due": null, "escalations": []}}');
INSERT INTO events (id, at, type, title, text, data) VALUES (10, 1790006480.0, 'ticket.arrive', '维修人员已到场 #2【急修】3号雨水井水位高', '设施：W-0003
状态：on_site', '{"ticket": {"id": 2, "subject": "asset:W-0003", "asset": "W-0003", "device": "well-0003", "category": "drainage", "fault": "level_high", "priority": "emergency", "status": "on_site", "title": "3号雨水井水位高", "note": "", "source": "sensor", "opened_at": 1790003600.0, "opened_by": "sensor", "clocks_from": 1790005760.0, "respond_by": 1790006660.0, "arrive_by": 1790007560.0, "resolve_by": 1790034560.0, "acknowledged_at": 1790006480.0, "acknowledged_by": "张师傅", "on_site_at": 1790006480.0, "on_site_by": "张师傅", "resolved_at": null, "resolved_by": null, "closed_at": null, "closed_by": null, "cancelled_at": null, "cancelled_by": null, "assignee": "张师傅", "occurrences": 2, "last_occurrence_at": 1790005760.0, "fault_cleared_at": null, "self_cleared": false, "reworks": 1, "callback_due": null, "escalations": []}}');
INSERT INTO events (id, at, type, title, text, data) VALUES (11, 1790010800.0, 'ticket.opened', '新工单 #3【紧急】北门道闸卡住', '状态：open', '{"ticket": {"id": 3, "subject": null, "asset": null, "device": null, "category": null, "fault": "manual", "priority": "urgent", "status": "open", "title": "北门道闸卡住", "note": "业主电话报修", "source": "api", "opened_at": 1790010800.0, "opened_by": "manager", "clocks_from": 1790010800.0, "respond_by": 1790012600.0, "arrive_by": 1790018000.0, "resolve_by": 1790097200.0, "acknowledged_at": null, "acknowledged_by": null, "on_site_at": null, "on_site_by": null, "resolved_at": null, "resolved_by": null, "closed_at": null, "closed_by": null, "cancelled_at": null, "cancelled_by": null, "assignee": null, "occurrences": 1, "last_occurrence_at": 1790010800.0, "fault_cleared_at": null, "self_cleared": false, "reworks": 0, "callback_due": null, "escalations": []}}');
INSERT INTO events (id, at, type, title, text, data) VALUES (12, 1790010860.0, 'ticket.assign', '工单已指派 #3【紧急】北门道闸卡住', '状态：open', '{"ticket": {"id": 3, "subject": null, "asset": null, "device": null, "category": null, "fault": "manual", "priority": "urgent", "status": "open", "title": "北门道闸卡住", "note": "业主电话报修", "source": "api", "opened_at": 1790010800.0, "opened_by": "manager", "clocks_from": 1790010800.0, "respond_by": 1790012600.0, "arrive_by": 1790018000.0, "resolve_by": 1790097200.0, "acknowledged_at": null, "acknowledged_by": null, "on_site_at": null, "on_site_by": null, "resolved_at": null, "resolved_by": null, "closed_at": null, "closed_by": null, "cancelled_at": null, "cancelled_by": null, "assignee": "王师傅", "occurrences": 1, "last_occurrence_at": 1790010800.0, "fault_cleared_at": null, "self_cleared": false, "reworks": 0, "callback_due": null, "escalations": []}}');
INSERT INTO events (id, at, type, title, text, data) VALUES (13, 1790014400.0, 'ticket.opened', '新工单 #4【零修】7号路灯不亮', '设施：L-0007
状态：open', '{"ticket": {"id": 4, "subject": "asset:L-0007", "asset": "L-0007", "device": "lamp-0007", "category": "lighting", "fault": "lamp_out", "priority": "general", "status": "open", "title": "7号路灯不亮", "note": "", "source": "sensor", "opened_at": 1790014400.0, "opened_by": "sensor", "clocks_from": 1790014400.0, "respond_by": 1790100800.0, "arrive_by": null, "resolve_by": 1790187200.0, "acknowledged_at": null, "acknowledged_by": null, "on_site_at": null, "on_site_by": null, "resolved_at": null, "resolved_by": null, "closed_at": null, "closed_by": null, "cancelled_at": null, "cancelled_by": null, "assignee": null, "occurrences": 1, "last_occurrence_at": 1790014400.0, "fault_cleared_at": null, "self_cleared": false, "reworks": 0, "callback_due": null, "escalations": []}}');
INSERT INTO events (id, at, type, title, text, data) VALUES (14, 1790018000.0, 'ticket.resolve', '工单已处理 #4【零修】7号路灯不亮', '设施：L-0007
状态：resolved', '{"ticket": {"id": 4, "subject": "asset:L-0007", "asset": "L-0007", "device": "lamp-0007", "category": "lighting", "fault": "lamp_out", "priority": "general", "status": "resolved", "title": "7号路灯不亮", "note": "", "source": "sensor", "opened_at": 1790014400.0, "opened_by": "sensor", "clocks_from": 1790014400.0, "respond_by": 1790100800.0, "arrive_by": null, "resolve_by": 1790187200.0, "acknowledged_at": 1790018000.0, "acknowledged_by": "李师傅", "on_site_at": null, "on_site_by": null, "resolved_at": 1790018000.0, "resolved_by": "李师傅", "closed_at": null, "closed_by": null, "cancelled_at": null, "cancelled_by": null, "assignee": "李师傅", "occurrences": 1, "last_occurrence_at": 1790014400.0, "fault_cleared_at": null, "self_cleared": false, "reworks": 0, "callback_due": null, "escalations": []}}');
INSERT INTO events (id, at, type, title, text, data) VALUES (15, 1790018060.0, 'ticket.closed', '工单已关闭 #4【零修】7号路灯不亮', '设施：L-0007
状态：closed
the sensor confirmed the repair', '{"ticket": {"id": 4, "subject": "asset:L-0007", "asset": "L-0007", "device": "lamp-0007", "category": "lighting", "fault": "lamp_out", "priority": "general", "status": "closed", "title": "7号路灯不亮", "note": "", "source": "sensor", "opened_at": 1790014400.0, "opened_by": "sensor", "clocks_from": 1790014400.0, "respond_by": 1790100800.0, "arrive_by": null, "resolve_by": 1790187200.0, "acknowledged_at": 1790018000.0, "acknowledged_by": "李师傅", "on_site_at": null, "on_site_by": null, "resolved_at": 1790018000.0, "resolved_by": "李师傅", "closed_at": 1790018060.0, "closed_by": "sensor", "cancelled_at": null, "cancelled_by": null, "assignee": "李师傅", "occurrences": 1, "last_occurrence_at": 1790014400.0, "fault_cleared_at": 1790018060.0, "self_cleared": false, "reworks": 0, "callback_due": 1790277260.0, "escalations": []}}');
INSERT INTO events (id, at, type, title, text, data) VALUES (16, 1790021600.0, 'ticket.opened', '新工单 #5【零修】9号路灯不亮', '设施：L-0009
状态：open', '{"ticket": {"id": 5, "subject": "asset:L-0009", "asset": "L-0009", "device": null, "category": "lighting", "fault": "lamp_out", "priority": "general", "status": "open", "title": "9号路灯不亮", "note": "", "source": "sensor", "opened_at": 1790021600.0, "opened_by": "sensor", "clocks_from": 1790021600.0, "respond_by": 1790108000.0, "arrive_by": null, "resolve_by": 1790194400.0, "acknowledged_at": null, "acknowledged_by": null, "on_site_at": null, "on_site_by": null, "resolved_at": null, "resolved_by": null, "closed_at": null, "closed_by": null, "cancelled_at": null, "cancelled_by": null, "assignee": null, "occurrences": 1, "last_occurrence_at": 1790021600.0, "fault_cleared_at": null, "self_cleared": false, "reworks": 0, "callback_due": null, "escalations": []}}');
INSERT INTO events (id, at, type, title, text, data) VALUES (17, 1790023400.0, 'ticket.cancel', '工单已取消 #5【零修】9号路灯不亮', '设施：L-0009
状态：cancelled
误报', '{"ticket": {"id": 5, "subject": "asset:L-0009", "asset": "L-0009", "device": null, "category": "lighting", "fault": "lamp_out", "priority": "general", "status": "cancelled", "title": "9号路灯不亮", "note": "", "source": "sensor", "opened_at": 1790021600.0, "opened_by": "sensor", "clocks_from": 1790021600.0, "respond_by": 1790108000.0, "arrive_by": null, "resolve_by": 1790194400.0, "acknowledged_at": null, "acknowledged_by": null, "on_site_at": null, "on_site_by": null, "resolved_at": null, "resolved_by": null, "closed_at": null, "closed_by": null, "cancelled_at": 1790023400.0, "cancelled_by": "manager", "assignee": null, "occurrences": 1, "last_occurrence_at": 1790021600.0, "fault_cleared_at": null, "self_cleared": false, "reworks": 0, "callback_due": null, "escalations": []}}');
INSERT INTO inspection_overdue (asset, plan, due_at, at) VALUES ('F-0002', 'extinguisher_monthly', 1789913600.0, 1790000060.0);
INSERT INTO inspections (id, asset, plan, at, by, tag_at, results, note, photos, failed, applied) VALUES (1, 'F-0001', 'extinguisher_monthly', 1790028800.0, 'G001', 1790028770.0, '{"pressure": "pass", "seal": "fail"}', '铅封断了', '[]', 'seal', 0);
INSERT INTO patrol_visits (round, route, due_at, checkpoint, seq, expected_at, at, status, guard, flag) VALUES ('night@1790000000', 'night', 1790000000.0, 'CP-01', 0, 1790000300.0, 1790025200.0, 'ok', 'G001', NULL);
INSERT INTO patrol_visits (round, route, due_at, checkpoint, seq, expected_at, at, status, guard, flag) VALUES ('night@1790000000', 'night', 1790000000.0, 'CP-02', 1, 1790000600.0, NULL, 'missed', 'G001', NULL);
INSERT INTO taps (id, at, reader, tag, checkpoint, guard, badge, source, flagged, accepted_by) VALUES (1, 1790025200.0, 'gate-north', '04A224B2C15E80', 'CP-01', 'G001', NULL, 'serial:/dev/ttyUSB0', 'too_fast', NULL);
INSERT INTO taps (id, at, reader, tag, checkpoint, guard, badge, source, flagged, accepted_by) VALUES (2, 1790025320.0, 'gate-north', '04FFFFFFFFFF01', NULL, 'G001', NULL, 'serial:/dev/ttyUSB0', NULL, NULL);
INSERT INTO ticket_log (id, ticket, at, action, by, note, data) VALUES (1, 1, 1790000000.0, 'open', 'sensor', '', '{}');
INSERT INTO ticket_log (id, ticket, at, action, by, note, data) VALUES (2, 1, 1790000600.0, 'acknowledge', '李师傅', '', '{}');
INSERT INTO ticket_log (id, ticket, at, action, by, note, data) VALUES (3, 1, 1790003600.0, 'arrive', '李师傅', '', '{}');
INSERT INTO ticket_log (id, ticket, at, action, by, note, data) VALUES (4, 1, 1790007200.0, 'resolve', '李师傅', '换了灯泡', '{}');
INSERT INTO ticket_log (id, ticket, at, action, by, note, data) VALUES (5, 1, 1790007500.0, 'close', 'sensor', 'the sensor confirmed the repair', '{}');
INSERT INTO ticket_log (id, ticket, at, action, by, note, data) VALUES (6, 1, 1790093600.0, 'callback', '客服小王', '业主满意', '{"channel": "phone", "score": 5}');
INSERT INTO ticket_log (id, ticket, at, action, by, note, data) VALUES (7, 2, 1790003600.0, 'open', 'sensor', '', '{}');
INSERT INTO ticket_log (id, ticket, at, action, by, note, data) VALUES (8, 2, 1790005400.0, 'resolve', '张师傅', '', '{}');
INSERT INTO ticket_log (id, ticket, at, action, by, note, data) VALUES (9, 2, 1790005760.0, 'reopen', 'sensor', 'the fault is still there after the repair', '{}');
INSERT INTO ticket_log (id, ticket, at, action, by, note, data) VALUES (10, 2, 1790006480.0, 'arrive', '张师傅', '', '{}');
INSERT INTO ticket_log (id, ticket, at, action, by, note, data) VALUES (11, 3, 1790010800.0, 'open', 'manager', '业主电话报修', '{}');
INSERT INTO ticket_log (id, ticket, at, action, by, note, data) VALUES (12, 3, 1790010860.0, 'assign', 'manager', '', '{"assignee": "王师傅"}');
INSERT INTO ticket_log (id, ticket, at, action, by, note, data) VALUES (13, 4, 1790014400.0, 'open', 'sensor', '', '{}');
INSERT INTO ticket_log (id, ticket, at, action, by, note, data) VALUES (14, 4, 1790018000.0, 'resolve', '李师傅', '', '{}');
INSERT INTO ticket_log (id, ticket, at, action, by, note, data) VALUES (15, 4, 1790018060.0, 'close', 'sensor', 'the sensor confirmed the repair', '{}');
INSERT INTO ticket_log (id, ticket, at, action, by, note, data) VALUES (16, 5, 1790021600.0, 'open', 'sensor', '', '{}');
INSERT INTO ticket_log (id, ticket, at, action, by, note, data) VALUES (17, 5, 1790023400.0, 'cancel', 'manager', '误报', '{}');
INSERT INTO tickets (id, subject, asset, device, category, fault, priority, status, title, note, source, opened_at, opened_by, clocks_from, respond_by, arrive_by, resolve_by, acknowledged_at, acknowledged_by, on_site_at, on_site_by, resolved_at, resolved_by, closed_at, closed_by, cancelled_at, cancelled_by, assignee, occurrences, last_occurrence_at, fault_cleared_at, self_cleared, reworks, callback_due, escalations, callback_overdue) VALUES (1, 'asset:L-0001', 'L-0001', 'lamp-0001', 'lighting', 'lamp_out', 'general', 'closed', '1号路灯不亮', '', 'sensor', 1790000000.0, 'sensor', 1790000000.0, 1790086400.0, NULL, 1790172800.0, 1790000600.0, '李师傅', 1790003600.0, '李师傅', 1790007200.0, '李师傅', 1790007500.0, 'sensor', NULL, NULL, '李师傅', 1, 1790000000.0, 1790007500.0, 0, 0, 1790266700.0, '[]', 0);
INSERT INTO tickets (id, subject, asset, device, category, fault, priority, status, title, note, source, opened_at, opened_by, clocks_from, respond_by, arrive_by, resolve_by, acknowledged_at, acknowledged_by, on_site_at, on_site_by, resolved_at, resolved_by, closed_at, closed_by, cancelled_at, cancelled_by, assignee, occurrences, last_occurrence_at, fault_cleared_at, self_cleared, reworks, callback_due, escalations, callback_overdue) VALUES (2, 'asset:W-0003', 'W-0003', 'well-0003', 'drainage', 'level_high', 'emergency', 'on_site', '3号雨水井水位高', '', 'sensor', 1790003600.0, 'sensor', 1790005760.0, 1790006660.0, 1790007560.0, 1790034560.0, 1790006480.0, '张师傅', 1790006480.0, '张师傅', NULL, NULL, NULL, NULL, NULL, NULL, '张师傅', 2, 1790005760.0, NULL, 0, 1, NULL, '[]', 0);
INSERT INTO tickets (id, subject, asset, device, category, fault, priority, status, title, note, source, opened_at, opened_by, clocks_from, respond_by, arrive_by, resolve_by, acknowledged_at, acknowledged_by, on_site_at, on_site_by, resolved_at, resolved_by, closed_at, closed_by, cancelled_at, cancelled_by, assignee, occurrences, last_occurrence_at, fault_cleared_at, self_cleared, reworks, callback_due, escalations, callback_overdue) VALUES (3, NULL, NULL, NULL, NULL, 'manual', 'urgent', 'open', '北门道闸卡住', '业主电话报修', 'api', 1790010800.0, 'manager', 1790010800.0, 1790012600.0, 1790018000.0, 1790097200.0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '王师傅', 1, 1790010800.0, NULL, 0, 0, NULL, '[]', 0);
INSERT INTO tickets (id, subject, asset, device, category, fault, priority, status, title, note, source, opened_at, opened_by, clocks_from, respond_by, arrive_by, resolve_by, acknowledged_at, acknowledged_by, on_site_at, on_site_by, resolved_at, resolved_by, closed_at, closed_by, cancelled_at, cancelled_by, assignee, occurrences, last_occurrence_at, fault_cleared_at, self_cleared, reworks, callback_due, escalations, callback_overdue) VALUES (4, 'asset:L-0007', 'L-0007', 'lamp-0007', 'lighting', 'lamp_out', 'general', 'closed', '7号路灯不亮', '', 'sensor', 1790014400.0, 'sensor', 1790014400.0, 1790100800.0, NULL, 1790187200.0, 1790018000.0, '李师傅', NULL, NULL, 1790018000.0, '李师傅', 1790018060.0, 'sensor', NULL, NULL, '李师傅', 1, 1790014400.0, 1790018060.0, 0, 0, 1790277260.0, '[]', 0);
INSERT INTO tickets (id, subject, asset, device, category, fault, priority, status, title, note, source, opened_at, opened_by, clocks_from, respond_by, arrive_by, resolve_by, acknowledged_at, acknowledged_by, on_site_at, on_site_by, resolved_at, resolved_by, closed_at, closed_by, cancelled_at, cancelled_by, assignee, occurrences, last_occurrence_at, fault_cleared_at, self_cleared, reworks, callback_due, escalations, callback_overdue) VALUES (5, 'asset:L-0009', 'L-0009', NULL, 'lighting', 'lamp_out', 'general', 'cancelled', '9号路灯不亮', '', 'sensor', 1790021600.0, 'sensor', 1790021600.0, 1790108000.0, NULL, 1790194400.0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1790023400.0, 'manager', NULL, 1, 1790021600.0, NULL, 0, 0, NULL, '[]', 0);
INSERT INTO unknown_tags (tag, first_at, last_at, taps, last_reader) VALUES ('04FFFFFFFFFF01', 1790025320.0, 1790025320.0, 1, 'gate-north');
INSERT INTO users (id, name, role, password, disabled, must_change, failures, lockouts, locked_until, created_at, created_by, last_login, password_changed_at) VALUES (1, '王师傅', 'maintenance', 'scrypt$16384$8$1$aTkkX54B8oW58QT6p3lW8A$ODEfp0Gp7LWIdZwnn1RkR3rSInKIZr2aroiKOqJLabc', 0, 1, 0, 0, NULL, 1790000000.0, 'admin', NULL, 1790000000.0);
INSERT INTO users (id, name, role, password, disabled, must_change, failures, lockouts, locked_until, created_at, created_by, last_login, password_changed_at) VALUES (2, 'G001', 'guard', 'scrypt$16384$8$1$y/FY3wvDbbvx0Zuzp877ZA$NFPhOxvPcRq4VZeMZdI3Qpvh42zD48TWEwDe/ICqghg', 0, 0, 0, 0, NULL, 1790000000.0, 'admin', NULL, 1790000000.0);
INSERT INTO webhook_cursors (hook, last_id) VALUES ('wecom-repair', 5);
INSERT INTO webhook_deliveries (id, hook, event_id, at, attempt, ok, status, reason) VALUES (1, 'wecom-repair', 5, 1790000001.0, 1, 1, 200, 'ok');

// The console's SQLite schema. One table of events (the JSON as the collector wrote it, plus the
// columns the views filter on), one row per detection technique, and two summaries kept up to
// date as events arrive: containers (per node) and sensors (per node).
//
// Each index costs every insert: the events have those the views need first (node, container,
// rule, severity, kind, time, and technique in its own table). Image and runtime filters scan
// newest first, the containers table (a row per container) answers them by node.

export const SCHEMA_VERSION = 1;

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY,
  node TEXT NOT NULL,
  boot TEXT NOT NULL,
  instance TEXT NOT NULL,
  seq INTEGER,
  t INTEGER NOT NULL,
  kind TEXT NOT NULL,
  container_id TEXT,
  image TEXT,
  runtime TEXT,
  rule TEXT,
  severity INTEGER,
  text TEXT NOT NULL,
  json TEXT NOT NULL
);
-- A resent batch (collector restarted between this insert and its log commit) is not stored twice.
CREATE UNIQUE INDEX IF NOT EXISTS events_run_seq ON events (node, boot, instance, seq) WHERE seq IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_node ON events (node, id);
CREATE INDEX IF NOT EXISTS events_container ON events (container_id, id) WHERE container_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_rule ON events (rule, id) WHERE rule IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_severity ON events (severity, id) WHERE severity IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_kind ON events (kind, id);
CREATE INDEX IF NOT EXISTS events_time ON events (t);
CREATE TABLE IF NOT EXISTS techniques (
  event_id INTEGER NOT NULL,
  technique TEXT NOT NULL,
  node TEXT NOT NULL,
  t INTEGER NOT NULL,
  PRIMARY KEY (event_id, technique)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS techniques_by ON techniques (technique, t, node);
CREATE INDEX IF NOT EXISTS techniques_time ON techniques (t);
CREATE TABLE IF NOT EXISTS containers (
  node TEXT NOT NULL,
  id TEXT NOT NULL,
  runtime TEXT,
  image TEXT,
  name TEXT,
  privileged INTEGER NOT NULL DEFAULT 0,
  created_t INTEGER,
  started_t INTEGER,
  exited_t INTEGER,
  exit_code INTEGER,
  signal INTEGER,
  execs INTEGER NOT NULL DEFAULT 0,
  detections INTEGER NOT NULL DEFAULT 0,
  first_t INTEGER NOT NULL,
  last_t INTEGER NOT NULL,
  container TEXT NOT NULL,
  PRIMARY KEY (node, id)
);
CREATE INDEX IF NOT EXISTS containers_last ON containers (last_t);
CREATE INDEX IF NOT EXISTS containers_node_last ON containers (node, last_t);
CREATE INDEX IF NOT EXISTS containers_id ON containers (id);
CREATE TABLE IF NOT EXISTS sensors (
  node TEXT PRIMARY KEY,
  boot TEXT NOT NULL,
  instance TEXT NOT NULL,
  version TEXT,
  kernel TEXT,
  last_seen_ms INTEGER NOT NULL,
  stats_t INTEGER,
  prev_stats_t INTEGER,
  events_emitted INTEGER,
  prev_events_emitted INTEGER,
  ring_drops INTEGER,
  sink_drops INTEGER,
  spool_events INTEGER,
  containers INTEGER,
  silent_since_ms INTEGER
);
`;

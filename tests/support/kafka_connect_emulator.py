#!/usr/bin/env python3
"""Kafka Connect worker emulator for nightjar's CDC tests (Python 3.11, stdlib only).

Emulates the REST API of one Kafka Connect worker hosting Debezium-like source
connectors, following /work/shared/reference/kafka-connect.md (§2 endpoints and
messages, §3 JSON shapes, §4 state machine, §8 emulator requirements).

Usage:
    python3 kafka_connect_emulator.py --port 0 --port-file FILE
        [--connectors a,b] [--tasks N] [--transition-delay SECONDS] [--verbose]

Binds 127.0.0.1 only. Once listening it writes the bound port to FILE (written to
FILE.tmp, then renamed). Runs until SIGTERM or SIGINT and then exits with 0. Each
--connectors entry starts RUNNING with --tasks tasks (default 1) and fake
Debezium Postgres offsets.

Kafka Connect API (see the spec for the bodies):
    GET  /                                   {"version","commit","kafka_cluster_id"}
    GET  /health
    GET  /connectors[?expand=status&expand=info]
    GET  /connectors/{n}                      ConnectorInfo       DELETE -> 204
    GET  /connectors/{n}/status               ConnectorStateInfo
    GET  /connectors/{n}/tasks/{t}/status
    POST /connectors/{n}/tasks/{t}/restart    204
    PUT  /connectors/{n}/pause | /resume      202, empty body
    PUT  /connectors/{n}/stop                 204
    POST /connectors/{n}/restart[?includeTasks=&onlyFailed=]   204, or 202 + body
    GET|PATCH|DELETE /connectors/{n}/offsets

Control API (JSON in and out; these requests are not journalled and never faulted):
    POST   /_emulator/connectors  {"name", "tasks"?: N, "state"?: "RUNNING|PAUSED|STOPPED",
                                   "flavor"?: "postgres|oracle|sqlserver", "offsets"?: [...],
                                   "config"?: {...}, "worker_id"?: str}            -> 201
    DELETE /_emulator/connectors/{n}      remove a connector (an "external actor" deleting it)
    POST   /_emulator/config      any of {"transition_delay_s", "connector_delay_s",
                                   "task_delays_s", "offsets_supported",
                                   "offsets_write_supported", "restart_params_supported",
                                   "version", "profile", "sink_poll_s"}  -> the whole config
                                  profile "3.4" | "3.5" | "3.6": sets version and the two
                                  offsets flags together (3.4: no stop, no offsets; 3.5: stop
                                  and GET offsets, PATCH/DELETE -> 405; 3.6: everything)
    POST   /_emulator/connectors  ... "type": "sink" makes a sink connector: config "topics"
                                  (one topic), Kafka offsets {"kafka_topic","kafka_partition"}
                                  -> {"kafka_offset"} (the next record to consume), and with
                                  "sink": {"conninfo", "table", "key"?: [...],
                                  "flush_interval_s"?: S} an emulated sink (below)
    POST   /_emulator/topics/{t}  {"records": [{"key": {...}, "value": {...}|null}, ...]}
                                  appends row changes to the in-emulator topic t (partition 0)
    GET    /_emulator/topics/{t}  {"records": [...], "end_offset": N}

Emulated sink: while a sink connector with a "sink" spec is RUNNING (connector and every
task) it consumes its topic from its consumer position and applies each record to the
PostgreSQL table through `psql` (conninfo as given; PG* environment variables apply):
"insert.mode" upsert (the default) upserts the value's columns by the key's columns
(ON CONFLICT DO UPDATE), "insert" inserts plainly (a duplicate key fails the task, as a
non-idempotent sink does), a null value deletes the row. The committed offset
(GET .../offsets) follows the position at once, or every flush_interval_s when set
(offset.flush.interval.ms); a stop commits at once (the final commit), a pause does not.
A start from STOPPED (tasks regenerated) consumes from the committed offset, so a PATCH of
the offsets while STOPPED makes the sink replay from there. A psql failure fails the task
with the psql error as trace.
    POST   /_emulator/faults      {"status_409_next"?: K, "status_500_next"?: K,
                                   "endpoints"?: [filter, ...], "message_409"?: str,
                                   "message_500"?: str, "apply_change"?: bool,
                                   "slow_next"?: K, "delay_s"?: D}  -> active rules
                                  slow_next: the next K matching requests are answered (and
                                  their change applied) only after D seconds: a hanging
                                  worker, or a target-state write still landing. Target
                                  states are last-writer-wins by arrival: a resume that
                                  arrives while an earlier pause is still landing wins.
    DELETE /_emulator/faults      clear all fault rules
    POST   /_emulator/refuse      {"seconds": S}  close the listener for S seconds
    POST   /_emulator/fail        {"connector": n, "task"?: int, "trace"?: str, "after_resume"?: bool}
                                  after_resume: the task does not fail now but at its first
                                  transition to RUNNING after a resume (the deferred Debezium
                                  error of spec §0.5; a relapse), also when a stop in between
                                  regenerated the tasks
                                  on_pause: the task fails instead of its next transition to
                                  PAUSED (a connector turning FAILED while being paused)
    POST   /_emulator/offsets     {"connector": n, "offsets": [{"partition", "offset"}, ...],
                                   "delay_s"?: S}  with delay_s the new offsets are committed S
                                  seconds later (offset.flush.interval.ms, also while paused)
    GET    /_emulator/requests    journal of non-control requests, oldest first
    DELETE /_emulator/requests    clear the journal
    GET    /_emulator/state       target and observed states of every connector

Timing of transitions: pause, resume, stop and restart record the target state
synchronously and answer; the observed states converge later, as in a real
distributed worker. With transition_delay_s = D the connector instance converges
after D/2 and each task after D, so the half-way state of §3 (connector PAUSED,
task RUNNING) is observable and everything has converged after D. connector_delay_s
and task_delays_s (a list indexed by task id) override the two delays. With a delay
of 0 the transition is applied before the response is sent.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

HOST = "127.0.0.1"

# Exact texts from the spec (§1, §2).
MSG_NOT_FOUND = "HTTP 404 Not Found"
MSG_METHOD_NOT_ALLOWED = "HTTP 405 Method Not Allowed"
MSGS_409 = (
    "Cannot complete request momentarily due to stale configuration "
    "(typically caused by a concurrent config change)",
    "Cannot complete request momentarily due to no known leader URL, "
    "likely because a rebalance was underway.",
    "Cannot complete request because of a conflicting operation (e.g. worker rebalance)",
)
MSG_500_TARGET_STATE = "Error writing target state to Kafka"
MSG_500_TIMEOUT = "Request timed out"
MSG_OFFSETS_NOT_STOPPED = (
    "Connectors must be in the STOPPED state before their offsets can be modified. "
    "This can be done for the specified connector by issuing a 'PUT' request to the "
    "'/connectors/{name}/stop' endpoint"
)
MSG_OFFSETS_MISSING = "Partitions / offsets need to be provided for an alter offsets request"
MSG_OFFSETS_ALTERED = "The offsets for this connector have been altered successfully"
MSG_OFFSETS_RESET = "The offsets for this connector have been reset successfully"

DEFAULT_TRACE = (
    "org.apache.kafka.connect.errors.ConnectException: An exception occurred in the change "
    "event producer. This connector will be stopped.\n\tat io.debezium.pipeline.ErrorHandler"
    ".setProducerThrowable(ErrorHandler.java:67)\n\t...\nCaused by: io.debezium.DebeziumException:"
    " Could not execute heartbeat action query (Error: 57P01)\n\t..."
)

CONNECTOR_CLASSES = {
    "postgres": "io.debezium.connector.postgresql.PostgresConnector",
    "oracle": "io.debezium.connector.oracle.OracleConnector",
    "sqlserver": "io.debezium.connector.sqlserver.SqlServerConnector",
}

# Target state (persisted, what the operator asked for) -> the observed state an
# instance settles in. Tasks of a STOPPED connector do not exist at all.
TARGET_TO_STATE = {"STARTED": "RUNNING", "PAUSED": "PAUSED", "STOPPED": "STOPPED"}
INITIAL_STATE_TO_TARGET = {"RUNNING": "STARTED", "PAUSED": "PAUSED", "STOPPED": "STOPPED"}

SINK_CLASS = "io.debezium.connector.jdbc.JdbcSinkConnector"

# Version profiles (spec §8.6) for the features nightjar detects.
PROFILES = {
    "3.4": {"version": "3.4.1", "offsets_supported": False, "offsets_write_supported": False},
    "3.5": {"version": "3.5.2", "offsets_supported": True, "offsets_write_supported": False},
    "3.6": {"version": "3.6.2", "offsets_supported": True, "offsets_write_supported": True},
}


def sql_literal(v) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if not isinstance(v, str):
        v = json.dumps(v)
    return "'" + v.replace("'", "''") + "'"


def sql_ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def sink_statement(table: str, key_columns: list[str], mode: str, record: dict) -> str:
    """The SQL a JDBC sink runs for one record (upsert by key, plain insert, or delete)."""
    key, value = record.get("key") or {}, record.get("value")
    if value is None:
        where = " AND ".join(f"{sql_ident(k)} = {sql_literal(key.get(k))}" for k in key_columns)
        return f"DELETE FROM {table} WHERE {where};"
    columns = list(value)
    insert = (f"INSERT INTO {table} ({', '.join(map(sql_ident, columns))}) VALUES "
              f"({', '.join(sql_literal(value[c]) for c in columns)})")
    if mode != "upsert":
        return insert + ";"
    rest = [c for c in columns if c not in key_columns]
    action = ("DO UPDATE SET " + ", ".join(f"{sql_ident(c)} = EXCLUDED.{sql_ident(c)}" for c in rest)
              if rest else "DO NOTHING")
    return f"{insert} ON CONFLICT ({', '.join(map(sql_ident, key_columns))}) {action};"


class ApiError(Exception):
    """An error answered with the Kafka Connect error body {"error_code", "message"}."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def error_body(status: int, message: str) -> dict:
    return {"error_code": status, "message": message}


def fake_offsets(name: str, flavor: str) -> list[dict]:
    """Debezium-shaped offsets (spec §3), deterministic per connector name."""
    seed = zlib.crc32(name.encode())
    if flavor == "oracle":
        scn = 2_000_000 + seed % 1_000_000
        return [{"partition": {"server": name},
                 "offset": {"scn": str(scn), "commit_scn": f"{scn}:1:0a001b00c4030000",
                            "snapshot_scn": str(scn - 5000)}}]
    if flavor == "sqlserver":
        return [{"partition": {"server": name, "database": "inventory"},
                 "offset": {"commit_lsn": "0000006a:00006608:0003",
                            "change_lsn": "0000006a:00006608:0002", "event_serial_no": 1}}]
    lsn = 24_000_000 + seed % 1_000_000
    return [{"partition": {"server": name},
             "offset": {"lsn": lsn, "lsn_proc": lsn, "lsn_commit": lsn, "txId": 500 + seed % 100,
                        "ts_usec": 1_732_500_000_000_000, "messageType": "UPDATE"}}]


def parse_bool_param(values: list[str] | None) -> bool:
    # JAX-RS @QueryParam boolean: Boolean.valueOf, i.e. only "true" (any case) is true.
    return bool(values) and values[0].strip().lower() == "true"


class Task:
    def __init__(self, task_id: int, state: str, worker_id: str):
        self.id = task_id
        self.state = state
        self.trace = ""
        self.worker_id = worker_id
        self.fail_on_resume = ""  # a trace to fail with at the next transition to RUNNING
        self.fail_on_pause = ""  # a trace to fail with instead of its next transition to PAUSED

    def status(self) -> dict:
        body = {"id": self.id, "state": self.state, "worker_id": self.worker_id}
        if self.trace:  # @JsonInclude(NON_EMPTY): omitted when empty
            body["trace"] = self.trace
        return body


class Connector:
    def __init__(self, name: str, task_count: int, initial_state: str, worker_id: str,
                 flavor: str = "postgres", config: dict | None = None,
                 offsets: list | None = None, kind: str = "source", sink: dict | None = None):
        self.name = name
        self.type = kind
        self.flavor = flavor
        self.worker_id = worker_id
        self.task_count = task_count  # "tasks.max"; used to regenerate tasks after STOPPED
        if kind == "sink":
            self.config = {"connector.class": SINK_CLASS, "name": name,
                           "tasks.max": str(task_count), "topics": name + ".rows",
                           "insert.mode": "upsert", "primary.key.mode": "record_key"}
        else:
            self.config = {"connector.class": CONNECTOR_CLASSES[flavor], "name": name,
                           "tasks.max": str(task_count), "topic.prefix": name}
        self.config.update(config or {})
        self.sink = sink  # {"conninfo", "table", "key", "flush_interval_s"}: the emulated sink
        self.position: int | None = None  # the sink's consumer position (None: from the committed)
        self.last_flush = time.monotonic()
        if offsets is not None:
            self.offsets = offsets
        elif kind == "sink":
            self.offsets = []  # nothing consumed yet: the sink starts at the topic's beginning
        else:
            self.offsets = fake_offsets(name, flavor)
        self.target = INITIAL_STATE_TO_TARGET[initial_state]
        self.state = initial_state
        self.trace = ""
        self.tasks: list[Task] = []
        if self.target != "STOPPED":
            self.regenerate_tasks(TARGET_TO_STATE[self.target])
        # Bumped by every transition request; a scheduled convergence step only
        # applies if no newer transition has superseded it.
        self.generation = 0
        self.fail_on_pause = ""  # a trace to fail with instead of the next transition to PAUSED
        self.target_sequence = 0  # arrival number of the target-state write that holds
        self.pending_offsets: list | None = None  # committed at the next flush (control /offsets delay_s)
        self.offsets_reset = False  # DELETE .../offsets: a source snapshots afresh at its next start
        # Deferred task failures (/_emulator/fail after_resume) kept across a stop, which empties the
        # tasks: the regenerated tasks of the next resume fail as the old ones would have.
        self.fail_on_resume_after_stop: dict[int, str] = {}

    def regenerate_tasks(self, state: str) -> None:
        self.tasks = [Task(i, state, self.worker_id) for i in range(self.task_count)]

    def topic(self) -> str:
        return str(self.config.get("topics", "")).split(",")[0].strip()

    def committed(self) -> int:
        """The sink's committed offset of partition 0 of its topic (0 when none)."""
        for o in self.offsets:
            p = o.get("partition", {})
            if p.get("kafka_topic") == self.topic() and p.get("kafka_partition") == 0:
                return int(o.get("offset", {}).get("kafka_offset", 0))
        return 0

    def commit(self) -> None:
        """Commits the consumer position as the partition's offset (what a flush does)."""
        if self.position is None:
            return
        partition = {"kafka_topic": self.topic(), "kafka_partition": 0}
        self.offsets = [o for o in self.offsets if o.get("partition") != partition]
        self.offsets.append({"partition": partition, "offset": {"kafka_offset": self.position}})
        self.last_flush = time.monotonic()

    def running(self) -> bool:
        return (self.target == "STARTED" and self.state == "RUNNING" and bool(self.tasks)
                and all(t.state == "RUNNING" for t in self.tasks))

    def status(self) -> dict:
        connector = {"state": self.state, "worker_id": self.worker_id}
        if self.trace:
            connector["trace"] = self.trace
        return {"name": self.name, "connector": connector,
                "tasks": [t.status() for t in self.tasks], "type": self.type}

    def info(self) -> dict:
        return {"name": self.name, "config": dict(self.config),
                "tasks": [{"connector": self.name, "task": t.id} for t in self.tasks],
                "type": self.type}

    def settled(self) -> bool:
        """True when no instance still has a transition to make (FAILED counts as settled)."""
        expected = TARGET_TO_STATE[self.target]
        if self.state != expected and not (self.state == "FAILED" and self.target != "STOPPED"):
            return False
        if self.target == "STOPPED":
            return not self.tasks
        return all(t.state in (expected, "FAILED") for t in self.tasks)

    def internal_state(self) -> dict:
        return {"target_state": self.target,
                "connector": {"state": self.state, "worker_id": self.worker_id,
                              "trace": self.trace},
                "tasks": [{"id": t.id, "state": t.state, "worker_id": t.worker_id, "trace": t.trace}
                          for t in self.tasks],
                "task_count": self.task_count, "type": self.type, "flavor": self.flavor,
                "config": dict(self.config), "offsets": self.offsets,
                "position": self.position, "settled": self.settled()}


class FaultRule:
    """Answer `status` instead of the real response for the next `remaining` matching requests."""

    def __init__(self, status: int, count: int, endpoints: list[str] | None,
                 message: str | None, apply_change: bool):
        self.status = status
        self.remaining = count
        self.endpoints = endpoints
        self._patterns = [re.compile(e) for e in endpoints or []]
        self.message = message
        self.apply_change = apply_change

    def matches(self, method: str, path: str) -> bool:
        # A filter matches if it is a prefix of the path, or as a regex it is found
        # in the path or in "METHOD /path" (so "^PUT " or "/pause$" both work).
        if not self.endpoints:
            return True
        for text, pattern in zip(self.endpoints, self._patterns):
            if path.startswith(text) or pattern.search(path) or pattern.search(f"{method} {path}"):
                return True
        return False

    def describe(self) -> dict:
        return {"status": self.status, "remaining": self.remaining, "endpoints": self.endpoints,
                "message": self.message, "apply_change": self.apply_change}


# Route table for the Kafka Connect API: (regex on the raw path, {method: handler name}).
# A known path with another method gives 405, an unknown path 404 (spec §8.1).
_SEG = r"(?P<name>[^/]+)"
ROUTES = [
    (r"/", {"GET": "get_root"}),
    (r"/health", {"GET": "get_health"}),
    (r"/connectors/?", {"GET": "get_connectors"}),
    (rf"/connectors/{_SEG}/?", {"GET": "get_connector", "DELETE": "delete_connector"}),
    (rf"/connectors/{_SEG}/status", {"GET": "get_status"}),
    (rf"/connectors/{_SEG}/tasks/(?P<task>-?\d+)/status", {"GET": "get_task_status"}),
    (rf"/connectors/{_SEG}/tasks/(?P<task>-?\d+)/restart", {"POST": "restart_task"}),
    (rf"/connectors/{_SEG}/pause", {"PUT": "pause"}),
    (rf"/connectors/{_SEG}/resume", {"PUT": "resume"}),
    (rf"/connectors/{_SEG}/stop", {"PUT": "stop"}),
    (rf"/connectors/{_SEG}/restart", {"POST": "restart"}),
    (rf"/connectors/{_SEG}/offsets",
     {"GET": "get_offsets", "PATCH": "patch_offsets", "DELETE": "delete_offsets"}),
]
ROUTES = [(re.compile(pattern + r"\Z"), methods) for pattern, methods in ROUTES]

CONTROL_PREFIX = "/_emulator"


class Emulator:
    """All state of the emulated worker. Every access holds self.lock."""

    def __init__(self, worker_id: str, transition_delay_s: float):
        self.lock = threading.RLock()
        self.worker_id = worker_id
        self.connectors: dict[str, Connector] = {}
        self.config = {
            "transition_delay_s": transition_delay_s,
            "connector_delay_s": None,
            "task_delays_s": None,
            "offsets_supported": True,
            "offsets_write_supported": True,
            "restart_params_supported": True,
            "version": "3.9.0",
            "sink_poll_s": 0.05,
        }
        self.topics: dict[str, list[dict]] = {}  # the in-emulator topics (partition 0 each)
        self._sink_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.faults: list[FaultRule] = []
        self.slow: list[FaultRule] = []  # "slow_next": answered (and applied) after delay_s
        self._sequence = 0  # request arrival counter (last-writer-wins of target states)
        self._409_counter = 0  # cycles through the three 409 messages
        self.journal: list[dict] = []
        self.listener: Listener | None = None  # set by main(); used by /_emulator/refuse

    # ------------------------------------------------------------------ dispatch

    def handle(self, method: str, raw_path: str, query: str, body: bytes,
               has_auth: bool) -> tuple[int, object]:
        """Returns (status, body); body None means an empty body."""
        if raw_path == CONTROL_PREFIX or raw_path.startswith(CONTROL_PREFIX + "/"):
            try:
                return self._control(method, raw_path[len(CONTROL_PREFIX):], body)
            except ApiError as e:
                return e.status, error_body(e.status, e.message)

        entry = {"method": method, "path": raw_path, "query": query, "time": time.time(),
                 "body": body.decode("utf-8", "replace") if body else None,
                 "authorization": has_auth, "status": None}
        with self.lock:
            self.journal.append(entry)
            self._sequence += 1
            sequence = self._sequence  # arrival order: the last writer of a target state wins
            slow = self._take_slow(method, raw_path)
            rule = None if slow is not None else self._take_fault(method, raw_path)
        if slow is not None:
            # F4 "slow 2xx" / a hanging worker: the request is answered (and its change lands) only
            # after delay_s. A target-state write that arrived later and already landed wins.
            time.sleep(slow.delay_s)
        with self.lock:
            if rule is not None and not rule.apply_change:
                result = self._fault_response(rule, method, raw_path)
            else:
                result = self._route(method, raw_path, query, body, sequence)
                if rule is not None:  # change applied, but the client sees an error
                    result = self._fault_response(rule, method, raw_path)
            entry["status"] = result[0]
        return result

    def _route(self, method: str, raw_path: str, query: str, body: bytes,
               sequence: int = 0) -> tuple[int, object]:
        try:
            for pattern, methods in ROUTES:
                m = pattern.match(raw_path)
                if not m:
                    continue
                if method not in methods:
                    raise ApiError(405, MSG_METHOD_NOT_ALLOWED)
                args = {k: unquote(v) for k, v in m.groupdict().items()}
                if "task" in args:
                    args["task"] = int(args["task"])
                params = parse_qs(query, keep_blank_values=True)
                return getattr(self, "api_" + methods[method])(params=params, body=body,
                                                                sequence=sequence, **args)
            raise ApiError(404, MSG_NOT_FOUND)
        except ApiError as e:
            return e.status, error_body(e.status, e.message)

    def _take_slow(self, method: str, path: str) -> FaultRule | None:
        for rule in self.slow:
            if rule.remaining > 0 and rule.matches(method, path):
                rule.remaining -= 1
                self.slow = [r for r in self.slow if r.remaining > 0]
                return rule
        return None

    def _take_fault(self, method: str, path: str) -> FaultRule | None:
        for rule in self.faults:
            if rule.remaining > 0 and rule.matches(method, path):
                rule.remaining -= 1
                return rule
        return None

    def _fault_response(self, rule: FaultRule, method: str, path: str) -> tuple[int, dict]:
        self.faults = [r for r in self.faults if r.remaining > 0]
        message = rule.message
        if message is None and rule.status == 409:
            message = MSGS_409[self._409_counter % len(MSGS_409)]
            self._409_counter += 1
        elif message is None:
            # Pause/resume only ever fail with the config-topic write error (spec §0.2).
            target_write = method == "PUT" and re.search(r"/(pause|resume)$", path)
            message = MSG_500_TARGET_STATE if target_write else MSG_500_TIMEOUT
        return rule.status, error_body(rule.status, message)

    # ------------------------------------------------------------------ helpers

    def _connector(self, name: str, message: str) -> Connector:
        c = self.connectors.get(name)
        if c is None:
            raise ApiError(404, message)
        return c

    def _schedule(self, delay: float, fn, *args) -> None:
        if delay <= 0:
            fn(*args)
            return

        def run():
            with self.lock:
                fn(*args)

        timer = threading.Timer(delay, run)
        timer.daemon = True
        timer.start()

    def _delays(self, c: Connector) -> tuple[float, list[float]]:
        base = float(self.config["transition_delay_s"])
        connector_delay = self.config["connector_delay_s"]
        connector_delay = base / 2 if connector_delay is None else float(connector_delay)
        per_task = self.config["task_delays_s"] or []
        task_delays = [float(per_task[t.id]) if t.id < len(per_task) else base for t in c.tasks]
        return connector_delay, task_delays

    def _start_transition(self, c: Connector) -> None:
        """Schedule convergence of the connector, then its tasks, to the target state."""
        c.generation += 1
        generation = c.generation
        connector_delay, task_delays = self._delays(c)
        self._schedule(connector_delay, self._converge_connector, c, generation)
        for task, delay in zip(list(c.tasks), task_delays):
            self._schedule(delay, self._converge_task, c, task, generation)

    def _converge_connector(self, c: Connector, generation: int) -> None:
        if c.generation != generation or self.connectors.get(c.name) is not c:
            return  # superseded by a newer transition, or deleted
        if c.state == "FAILED" and c.target != "STOPPED":
            return  # FAILED ignores pause and resume; only restart or stop leave it
        if c.fail_on_pause and c.target == "PAUSED":
            c.state, c.trace, c.fail_on_pause = "FAILED", c.fail_on_pause, ""
            return
        c.state = TARGET_TO_STATE[c.target]
        c.trace = ""

    def _converge_task(self, c: Connector, task: Task, generation: int) -> None:
        if c.generation != generation or task not in c.tasks or task.state == "FAILED":
            return
        if task.fail_on_resume and c.target == "STARTED":
            task.state, task.trace, task.fail_on_resume = "FAILED", task.fail_on_resume, ""
            return
        if task.fail_on_pause and c.target == "PAUSED":
            task.state, task.trace, task.fail_on_pause = "FAILED", task.fail_on_pause, ""
            return
        task.state = TARGET_TO_STATE[c.target]
        task.trace = ""
        if (c.type == "source" and c.target == "STARTED" and c.offsets_reset
                and c.running()):
            # Offsets were reset: the source snapshots afresh and streams from a new position.
            c.offsets_reset = False
            fresh = fake_offsets(c.name, c.flavor)
            for o in fresh:
                o["offset"]["snapshot_completed"] = True
            c.offsets = fresh

    # ------------------------------------------------------------------ Kafka Connect API

    def api_get_root(self, **_):
        return 200, {"version": self.config["version"], "commit": "1eb7644c0ffee123",
                     "kafka_cluster_id": "nJ7tEmuLat0rClusterId0"}

    def api_get_health(self, **_):
        return 200, {"status": "healthy",
                     "message": "Worker has completed startup and is ready to handle requests."}

    def api_get_connectors(self, params, **_):
        names = sorted(self.connectors)
        expand = params.get("expand")
        if not expand:
            return 200, names
        # Each expand value is a separate parameter; unknown values (e.g. "status,info")
        # are ignored, leaving an empty object per connector.
        result = {}
        for name in names:
            c = self.connectors[name]
            entry = {}
            if "status" in expand:
                entry["status"] = c.status()
            if "info" in expand:
                entry["info"] = c.info()
            result[name] = entry
        return 200, result

    def api_get_connector(self, name, **_):
        return 200, self._connector(name, f"Connector {name} not found").info()

    def api_delete_connector(self, name, **_):
        self._connector(name, f"Connector {name} not found")
        del self.connectors[name]
        return 204, None

    def api_get_status(self, name, **_):
        return 200, self._connector(name, f"No status found for connector {name}").status()

    def api_get_task_status(self, name, task, **_):
        c = self._connector(name, f"No status found for task {name}-{task}")
        for t in c.tasks:
            if t.id == task:
                return 200, t.status()
        raise ApiError(404, f"No status found for task {name}-{task}")

    def _superseded(self, c: Connector, sequence: int) -> bool:
        """A target-state write that arrived before the last applied one is answered but changes
        nothing: the config topic keeps the later write (last writer wins)."""
        if sequence and sequence < c.target_sequence:
            return True
        c.target_sequence = max(c.target_sequence, sequence)
        return False

    def api_pause(self, name, sequence=0, **_):
        c = self._connector(name, f"Unknown connector {name}")
        if self._superseded(c, sequence):
            return 202, None
        c.target = "PAUSED"  # STOPPED -> PAUSED keeps tasks [] (spec §4, inferred)
        self._start_transition(c)
        return 202, None

    def api_resume(self, name, sequence=0, **_):
        c = self._connector(name, f"Unknown connector {name}")
        if self._superseded(c, sequence):
            return 202, None
        c.target = "STARTED"
        if not c.tasks and c.task_count:
            # Resuming a STOPPED connector regenerates its tasks; they come up
            # UNASSIGNED and converge to RUNNING with the normal task delay.
            c.regenerate_tasks("UNASSIGNED")
            for t in c.tasks:
                t.fail_on_resume = c.fail_on_resume_after_stop.pop(t.id, "")
        self._start_transition(c)
        return 202, None

    def api_stop(self, name, sequence=0, **_):
        if not self.config["offsets_supported"]:
            raise ApiError(404, MSG_NOT_FOUND)  # workers <= 3.4 have neither stop nor offsets
        c = self._connector(name, f"Unknown connector {name}")
        if self._superseded(c, sequence):
            return 204, None
        c.target = "STOPPED"
        for t in c.tasks:
            if t.fail_on_resume:
                c.fail_on_resume_after_stop[t.id] = t.fail_on_resume
        c.tasks = []  # the task configs are emptied first; statuses disappear
        if c.type == "sink":
            c.commit()  # the tasks shut down with a final offset commit (spec §4)
            c.position = None  # the next start consumes from the committed offset
        self._start_transition(c)
        return 204, None

    def api_restart(self, name, params, **_):
        c = self._connector(name, f"Unknown connector: {name}")
        include_tasks = parse_bool_param(params.get("includeTasks"))
        only_failed = parse_bool_param(params.get("onlyFailed"))
        if not self.config["restart_params_supported"] or not (include_tasks or only_failed):
            # Pre-3.0 behaviour, still used when both params are false: restart the
            # connector instance only. It is stopped (UNASSIGNED) and started again
            # in the current target state.
            c.state, c.trace = "UNASSIGNED", ""
            self._start_transition(c)
            return 204, None
        # KIP-745 RestartRequest semantics.
        if not only_failed or c.state == "FAILED":
            c.state, c.trace = "RESTARTING", ""
        if include_tasks:
            for t in c.tasks:
                if not only_failed or t.state == "FAILED":
                    t.state, t.trace = "RESTARTING", ""
        body = c.status()  # taken before convergence, so RESTARTING shows even with delay 0
        self._start_transition(c)
        return 202, body

    def api_restart_task(self, name, task, **_):
        c = self._connector(name, f"Unknown connector: {name}")
        for t in c.tasks:
            if t.id == task:
                t.state, t.trace = "UNASSIGNED", ""  # stopped, then started in the target state
                self._start_transition(c)
                return 204, None
        raise ApiError(404, f"Unknown task: {name}-{task}")

    def api_get_offsets(self, name, **_):
        if not self.config["offsets_supported"]:
            raise ApiError(404, MSG_NOT_FOUND)
        c = self._connector(name, f"Connector {name} not found")
        return 200, {"offsets": c.offsets}

    def _offsets_writable(self, name: str) -> Connector:
        if not self.config["offsets_supported"]:
            raise ApiError(404, MSG_NOT_FOUND)
        if not self.config["offsets_write_supported"]:
            raise ApiError(405, MSG_METHOD_NOT_ALLOWED)  # 3.5: GET only
        c = self._connector(name, f"Connector {name} not found")
        if c.target != "STOPPED":
            raise ApiError(400, MSG_OFFSETS_NOT_STOPPED.replace("{name}", name))
        return c

    def api_patch_offsets(self, name, body, **_):
        if not self.config["offsets_supported"]:
            raise ApiError(404, MSG_NOT_FOUND)
        if not self.config["offsets_write_supported"]:
            raise ApiError(405, MSG_METHOD_NOT_ALLOWED)
        # ConnectorsResource checks the body before the herder checks the state.
        try:
            request = json.loads(body) if body else None
        except ValueError as e:
            raise ApiError(400, f"Invalid JSON: {e}") from None
        entries = request.get("offsets") if isinstance(request, dict) else None
        if not entries or not isinstance(entries, list):
            raise ApiError(400, MSG_OFFSETS_MISSING)
        c = self._offsets_writable(name)
        for entry in entries:
            if not isinstance(entry, dict) or "partition" not in entry:
                raise ApiError(400, MSG_OFFSETS_MISSING)
            kept = [o for o in c.offsets if o["partition"] != entry["partition"]]
            if entry.get("offset") is not None:  # a null offset removes the partition
                kept.append({"partition": entry["partition"], "offset": entry["offset"]})
            c.offsets = kept
        c.position = None
        return 200, {"message": MSG_OFFSETS_ALTERED}

    def api_delete_offsets(self, name, **_):
        c = self._offsets_writable(name)
        c.offsets = []
        c.position = None
        c.offsets_reset = True  # a source snapshots afresh at its next start
        return 200, {"message": MSG_OFFSETS_RESET}

    # ------------------------------------------------------------------ control API

    def _control(self, method: str, path: str, body: bytes) -> tuple[int, object]:
        try:
            payload = json.loads(body) if body else {}
        except ValueError as e:
            raise ApiError(400, f"Invalid JSON: {e}") from None
        if method in ("POST", "PUT") and not isinstance(payload, dict):
            raise ApiError(400, "Expected a JSON object")

        if path == "/refuse" and method == "POST":
            # Not under self.lock: closing the listener waits for the accept loop.
            seconds = payload.get("seconds")
            if not isinstance(seconds, (int, float)) or seconds < 0:
                raise ApiError(400, "'seconds' must be a non-negative number")
            if not self.listener.refuse(float(seconds)):
                raise ApiError(409, "Already refusing connections")
            return 200, {"refusing_for_s": seconds}

        with self.lock:
            if path == "/connectors" and method == "POST":
                return 201, self._control_add_connector(payload)
            m = re.fullmatch(r"/connectors/([^/]+)", path)
            if m and method == "DELETE":
                name = unquote(m.group(1))
                self._connector(name, f"Unknown connector {name}")
                del self.connectors[name]
                return 200, {"deleted": name}
            if path == "/config" and method == "POST":
                return 200, self._control_config(payload)
            if path == "/config" and method == "GET":
                return 200, dict(self.config)
            if path == "/faults" and method == "POST":
                return 200, self._control_faults(payload)
            if path == "/faults" and method == "GET":
                return 200, [r.describe() for r in self.faults]
            if path == "/faults" and method == "DELETE":
                self.faults = []
                self.slow = []
                return 200, []
            m = re.fullmatch(r"/topics/([^/]+)", path)
            if m and method in ("GET", "POST"):
                return 200, self._control_topic(method, unquote(m.group(1)), payload)
            if path == "/fail" and method == "POST":
                return 200, self._control_fail(payload)
            if path == "/offsets" and method == "POST":
                c = self._connector(str(payload.get("connector")), "Unknown connector")
                offsets = payload.get("offsets")
                if not isinstance(offsets, list):
                    raise ApiError(400, "'offsets' must be a list")
                delay = payload.get("delay_s", 0)
                if not isinstance(delay, (int, float)) or isinstance(delay, bool) or delay < 0:
                    raise ApiError(400, "'delay_s' must be a non-negative number")
                if delay > 0:
                    # The periodic offset commit (offset.flush.interval.ms) lands later, also while
                    # the connector is paused: GET .../offsets shows the old ones until then.
                    c.pending_offsets = offsets

                    def commit(c=c, offsets=offsets):
                        if c.pending_offsets is offsets:
                            c.offsets, c.pending_offsets = offsets, None

                    self._schedule(float(delay), commit)
                    return 200, {"offsets": c.offsets, "pending": offsets}
                c.offsets = offsets
                return 200, {"offsets": c.offsets}
            if path == "/requests" and method == "GET":
                return 200, [dict(e) for e in self.journal]
            if path == "/requests" and method == "DELETE":
                self.journal = []
                return 200, []
            if path == "/state" and method == "GET":
                return 200, {"config": dict(self.config),
                             "refusing": self.listener is not None and self.listener.refusing,
                             "faults": [r.describe() for r in self.faults],
                             "connectors": {n: c.internal_state()
                                            for n, c in sorted(self.connectors.items())}}
        raise ApiError(404, f"Unknown control endpoint {method} {CONTROL_PREFIX}{path}")

    def add_connector(self, name: str, tasks: int, state: str = "RUNNING",
                      flavor: str = "postgres", config: dict | None = None,
                      offsets: list | None = None, worker_id: str | None = None,
                      kind: str = "source", sink: dict | None = None) -> Connector:
        if name in self.connectors:
            raise ApiError(409, f"Connector {name} already exists")
        c = Connector(name, tasks, state, worker_id or self.worker_id, flavor, config, offsets,
                      kind, sink)
        self.connectors[name] = c
        return c

    def _control_add_connector(self, p: dict) -> dict:
        name, tasks, state = p.get("name"), p.get("tasks", 1), p.get("state", "RUNNING")
        flavor = p.get("flavor", "postgres")
        if not isinstance(name, str) or not name or "/" in name:
            raise ApiError(400, "'name' must be a non-empty string without '/'")
        if not isinstance(tasks, int) or isinstance(tasks, bool) or tasks < 0:
            raise ApiError(400, "'tasks' must be a non-negative integer")
        if state not in INITIAL_STATE_TO_TARGET:
            raise ApiError(400, "'state' must be RUNNING, PAUSED or STOPPED")
        if flavor not in CONNECTOR_CLASSES:
            raise ApiError(400, f"'flavor' must be one of {sorted(CONNECTOR_CLASSES)}")
        kind, sink = p.get("type", "source"), p.get("sink")
        if kind not in ("source", "sink"):
            raise ApiError(400, "'type' must be source or sink")
        if sink is not None:
            if kind != "sink" or not isinstance(sink, dict):
                raise ApiError(400, "'sink' needs \"type\": \"sink\" and must be an object")
            if not isinstance(sink.get("conninfo"), str) or not isinstance(sink.get("table"), str):
                raise ApiError(400, "'sink' needs string 'conninfo' and 'table'")
            key = sink.setdefault("key", ["id"])
            if not isinstance(key, list) or not key or not all(isinstance(k, str) for k in key):
                raise ApiError(400, "'sink.key' must be a non-empty list of column names")
        c = self.add_connector(name, tasks, state, flavor, p.get("config"), p.get("offsets"),
                               p.get("worker_id"), kind, sink)
        return c.internal_state()

    def _control_topic(self, method: str, topic: str, p: dict) -> dict:
        records = self.topics.setdefault(topic, [])
        if method == "POST":
            new = p.get("records")
            if not isinstance(new, list) or not all(isinstance(r, dict) for r in new):
                raise ApiError(400, "'records' must be a list of {\"key\", \"value\"} objects")
            records.extend({"key": r.get("key"), "value": r.get("value")} for r in new)
        return {"records": records, "end_offset": len(records)}

    # ------------------------------------------------------------------ emulated sink

    def start_sink_loop(self) -> None:
        self._sink_thread = threading.Thread(target=self._sink_loop, daemon=True)
        self._sink_thread.start()

    def stop_sink_loop(self) -> None:
        self._stopping.set()
        if self._sink_thread is not None:
            self._sink_thread.join(timeout=10)

    def _sink_loop(self) -> None:
        while not self._stopping.wait(float(self.config["sink_poll_s"])):
            with self.lock:
                for c in list(self.connectors.values()):
                    if c.type == "sink" and c.sink is not None:
                        self._sink_step(c)

    def _sink_step(self, c: Connector) -> None:
        """One poll of an emulated sink task: apply the next records, commit when due. Runs under
        self.lock, so a stop or a PATCH never lands in the middle of a batch."""
        if not c.running():
            return
        if c.position is None:
            c.position = c.committed()
        records = self.topics.get(c.topic(), [])
        batch = records[c.position:c.position + 200]
        if batch:
            table = ".".join(sql_ident(part) for part in c.sink["table"].split("."))
            mode = str(c.config.get("insert.mode", "upsert"))
            sql = "BEGIN;\n" + "\n".join(sink_statement(table, c.sink["key"], mode, r)
                                          for r in batch) + "\nCOMMIT;\n"
            try:
                done = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d",
                                       c.sink["conninfo"]], input=sql, capture_output=True,
                                      text=True, timeout=30)
                error = done.stderr.strip() if done.returncode != 0 else ""
            except (OSError, subprocess.TimeoutExpired) as e:
                error = str(e)
            if error:
                trace = ("org.apache.kafka.connect.errors.ConnectException: Exiting WorkerSinkTask "
                         "due to unrecoverable exception.\n\t...\nCaused by: " + error)
                for t in c.tasks:
                    t.state, t.trace = "FAILED", trace
                return
            c.position += len(batch)
        flush = float(c.sink.get("flush_interval_s") or 0)
        if flush <= 0 or time.monotonic() - c.last_flush >= flush:
            if c.position != c.committed() or not c.offsets:
                c.commit()

    def _control_config(self, p: dict) -> dict:
        def number(v):
            return isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0

        checks = {
            "transition_delay_s": number,
            "connector_delay_s": lambda v: v is None or number(v),
            "task_delays_s": lambda v: v is None or (isinstance(v, list) and all(map(number, v))),
            "offsets_supported": lambda v: isinstance(v, bool),
            "restart_params_supported": lambda v: isinstance(v, bool),
            "version": lambda v: isinstance(v, str),
            "offsets_write_supported": lambda v: isinstance(v, bool),
            "profile": lambda v: v in PROFILES,
            "sink_poll_s": lambda v: number(v) and v > 0,
        }
        for key, value in p.items():
            if key not in checks:
                raise ApiError(400, f"Unknown config key '{key}'")
            if not checks[key](value):
                raise ApiError(400, f"Invalid value for '{key}': {value!r}")
        if "profile" in p:
            self.config.update(PROFILES[p["profile"]])
        self.config.update({k: v for k, v in p.items() if k != "profile"})
        return dict(self.config)

    def _control_faults(self, p: dict) -> list:
        known = {"status_409_next", "status_500_next", "endpoints", "message_409",
                 "message_500", "apply_change", "slow_next", "delay_s"}
        unknown = set(p) - known
        if unknown:
            raise ApiError(400, f"Unknown fault keys {sorted(unknown)}")
        endpoints = p.get("endpoints")
        if endpoints is not None:
            if not isinstance(endpoints, list) or not all(isinstance(e, str) for e in endpoints):
                raise ApiError(400, "'endpoints' must be a list of strings")
            for e in endpoints:
                try:
                    re.compile(e)
                except re.error as err:
                    raise ApiError(400, f"Bad endpoint regex {e!r}: {err}") from None
        slow = p.get("slow_next", 0)
        if not isinstance(slow, int) or isinstance(slow, bool) or slow < 0:
            raise ApiError(400, "'slow_next' must be a non-negative integer")
        if slow:
            delay = p.get("delay_s")
            if not isinstance(delay, (int, float)) or isinstance(delay, bool) or delay <= 0:
                raise ApiError(400, "'slow_next' needs a positive 'delay_s'")
            rule = FaultRule(200, slow, endpoints, None, True)
            rule.delay_s = float(delay)
            self.slow.append(rule)
        for status in (409, 500):
            count = p.get(f"status_{status}_next", 0)
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise ApiError(400, f"'status_{status}_next' must be a non-negative integer")
            if count:
                self.faults.append(FaultRule(status, count, endpoints, p.get(f"message_{status}"),
                                             bool(p.get("apply_change", False))))
        return [r.describe() for r in self.faults]

    def _control_fail(self, p: dict) -> dict:
        name = p.get("connector")
        c = self._connector(str(name), f"Unknown connector {name}")
        trace = p.get("trace") or DEFAULT_TRACE
        task = p.get("task")
        if task is None and p.get("on_pause"):
            c.fail_on_pause = trace
        elif task is None:
            c.state, c.trace = "FAILED", trace
        else:
            match = [t for t in c.tasks if t.id == task]
            if not match:
                raise ApiError(404, f"Unknown task: {name}-{task}")
            if p.get("after_resume"):
                match[0].fail_on_resume = trace
            elif p.get("on_pause"):
                match[0].fail_on_pause = trace
            else:
                match[0].state, match[0].trace = "FAILED", trace
        return c.status()


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so "refuse" really refuses the next request
    # (a kept-alive connection would bypass the closed listener).
    protocol_version = "HTTP/1.0"
    server_version = "KafkaConnectEmulator/1.0"

    def version_string(self):
        return self.server_version  # no Python version suffix

    def _dispatch(self):
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        emulator: Emulator = self.server.emulator
        status, payload = emulator.handle(self.command, split.path, split.query, body,
                                          "Authorization" in self.headers)
        data = b"" if payload is None else json.dumps(payload).encode()
        try:
            self.send_response(status)
            if status != 204:  # a 204 carries no Content-Length
                if payload is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away; nothing to do

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("kafka-connect-emulator: %s\n" % (fmt % args))


class Listener:
    """Owns the listening socket so that it can be closed and reopened on the same port."""

    def __init__(self, emulator: Emulator, port: int, verbose: bool):
        self.emulator = emulator
        self.verbose = verbose
        self.port = port
        self.refusing = False
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._reopen_timer: threading.Timer | None = None
        self._stopped = False

    def open(self) -> None:
        server = ThreadingHTTPServer((HOST, self.port), Handler)  # binds and listens
        server.emulator = self.emulator
        server.verbose = self.verbose
        self.port = server.server_address[1]  # resolves --port 0
        self._server = server
        # A short poll interval keeps shutdown() (used by refuse) fast.
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def _close(self) -> None:
        if self._server is not None:
            self._server.shutdown()      # stop the accept loop
            self._server.server_close()  # close the listening socket: connection refused
            self._server = None

    def refuse(self, seconds: float) -> bool:
        """Close the listener now and reopen it after `seconds`. In-flight requests,
        including the one asking for this, still get their answer."""
        with self._lock:
            if self.refusing or self._stopped:
                return False
            self.refusing = True
            self._close()
            self._reopen_timer = threading.Timer(seconds, self._reopen)
            self._reopen_timer.daemon = True
            self._reopen_timer.start()
            return True

    def _reopen(self) -> None:
        deadline = time.monotonic() + 10
        with self._lock:
            while not self._stopped:
                try:
                    self.open()
                    break
                except OSError as e:  # port briefly unavailable; keep trying
                    if time.monotonic() > deadline:
                        sys.stderr.write(f"kafka-connect-emulator: cannot re-listen on "
                                         f"{self.port}: {e}\n")
                        break
                    time.sleep(0.05)
            self.refusing = False

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._reopen_timer is not None:
                self._reopen_timer.cancel()
            self._close()


def write_port_file(path: str, port: int) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, path)  # atomic: readers never see a partial file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Kafka Connect REST API emulator for tests.")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any free)")
    parser.add_argument("--port-file", required=True, help="file that receives the bound port")
    parser.add_argument("--connectors", default="", help="comma-separated connector names")
    parser.add_argument("--tasks", type=int, default=1, help="tasks per connector (default 1)")
    parser.add_argument("--transition-delay", type=float, default=0.1,
                        help="initial transition_delay_s (default 0.1, so a status read right "
                             "after a 202 still shows the old state, as on a real worker)")
    parser.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = parser.parse_args(argv)
    if args.tasks < 0 or args.transition_delay < 0:
        parser.error("--tasks and --transition-delay must not be negative")

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    emulator = Emulator(worker_id="", transition_delay_s=args.transition_delay)
    listener = Listener(emulator, args.port, args.verbose)
    emulator.listener = listener
    listener.open()
    emulator.worker_id = f"{HOST}:{listener.port}"
    with emulator.lock:
        for name in filter(None, (n.strip() for n in args.connectors.split(","))):
            emulator.add_connector(name, args.tasks)
    write_port_file(args.port_file, listener.port)

    emulator.start_sink_loop()
    while not stop.wait(0.5):  # the timeout keeps signal delivery prompt
        pass
    listener.stop()
    emulator.stop_sink_loop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

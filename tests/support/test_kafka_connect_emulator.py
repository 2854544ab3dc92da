"""Tests for kafka_connect_emulator.py (stdlib only).

Run from the repository root:
    python3 -m unittest tests/support/test_kafka_connect_emulator.py

One emulator subprocess serves the whole TestCase; every test adds its own
connectors through the control API, and setUp resets config, faults and the
request journal. Expected texts are copied from the spec
(/work/shared/reference/kafka-connect.md) on purpose, not imported from the emulator.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

EMULATOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kafka_connect_emulator.py")

SPEC_409_MESSAGES = {
    "Cannot complete request momentarily due to stale configuration "
    "(typically caused by a concurrent config change)",
    "Cannot complete request momentarily due to no known leader URL, "
    "likely because a rebalance was underway.",
    "Cannot complete request because of a conflicting operation (e.g. worker rebalance)",
}

# Bypass any http_proxy in the environment: requests must go straight to 127.0.0.1.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Emulator:
    """An emulator subprocess on a free port; use as a context manager or call close()."""

    def __init__(self, *extra_args, env=None):
        self.dir = tempfile.TemporaryDirectory(prefix="kc-emu-")
        port_file = os.path.join(self.dir.name, "port")
        self.stderr = open(os.path.join(self.dir.name, "stderr"), "w+")
        self.proc = subprocess.Popen(
            [sys.executable, EMULATOR, "--port", "0", "--port-file", port_file, *extra_args],
            stdout=subprocess.DEVNULL, stderr=self.stderr, env=env)
        try:
            deadline = time.monotonic() + 10
            while not os.path.exists(port_file):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stderr.seek(0)
                    raise RuntimeError(f"emulator did not start: {self.stderr.read()}")
                time.sleep(0.02)
            with open(port_file) as f:
                self.port = int(f.read())
        except BaseException:
            self.close()
            raise
        self.base = f"http://127.0.0.1:{self.port}"

    def call(self, method, path, body=None):
        """Returns (status, parsed JSON or None, raw bytes). Raises URLError if unreachable."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with OPENER.open(request, timeout=5) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
            e.close()
        return status, (json.loads(raw) if raw else None), raw

    def close(self, sig=signal.SIGTERM):
        """Stops the process; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
        self.dir.cleanup()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()


class KafkaConnectEmulatorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator()
        cls.addClassCleanup(cls.emu.close)

    def setUp(self):
        self.call("POST", "/_emulator/config",
                  {"transition_delay_s": 0.1, "connector_delay_s": None, "task_delays_s": None,
                   "offsets_supported": True, "offsets_write_supported": True,
                   "restart_params_supported": True, "version": "3.9.0"})
        self.call("DELETE", "/_emulator/faults")
        self.call("DELETE", "/_emulator/requests")

    # ------------------------------------------------------------------ helpers

    def call(self, method, path, body=None):
        return self.emu.call(method, path, body)

    def add(self, name, tasks=1, state="RUNNING"):
        status, body, _ = self.call("POST", "/_emulator/connectors",
                                    {"name": name, "tasks": tasks, "state": state})
        self.assertEqual(status, 201, body)

    def status(self, name):
        code, body, _ = self.call("GET", f"/connectors/{name}/status")
        self.assertEqual(code, 200, body)
        return body

    def states(self, name):
        body = self.status(name)
        return body["connector"]["state"], [t["state"] for t in body["tasks"]]

    def wait_for(self, predicate, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.02)
        self.fail("condition not met in time")

    def wait_settled(self, name):
        def settled():
            return self.call("GET", "/_emulator/state")[1]["connectors"][name]["settled"]
        self.wait_for(settled)

    # ------------------------------------------------------------------ tests

    def test_status_info_and_error_shapes(self):
        self.add("shape", tasks=2)
        self.assertEqual(self.status("shape"), {
            "name": "shape",
            "connector": {"state": "RUNNING", "worker_id": f"127.0.0.1:{self.emu.port}"},
            "tasks": [{"id": 0, "state": "RUNNING", "worker_id": f"127.0.0.1:{self.emu.port}"},
                      {"id": 1, "state": "RUNNING", "worker_id": f"127.0.0.1:{self.emu.port}"}],
            "type": "source"})  # trace omitted when empty
        code, info, _ = self.call("GET", "/connectors/shape")
        self.assertEqual(code, 200)
        self.assertEqual(info["tasks"], [{"connector": "shape", "task": 0},
                                         {"connector": "shape", "task": 1}])
        self.assertEqual(self.call("GET", "/connectors/shape/tasks/1/status")[:2],
                         (200, {"id": 1, "state": "RUNNING",
                                "worker_id": f"127.0.0.1:{self.emu.port}"}))
        code, root, _ = self.call("GET", "/")
        self.assertEqual(code, 200)
        self.assertEqual(set(root), {"version", "commit", "kafka_cluster_id"})

        expected_404s = {
            ("GET", "/connectors/nope/status"): "No status found for connector nope",
            ("GET", "/connectors/shape/tasks/7/status"): "No status found for task shape-7",
            ("GET", "/connectors/nope"): "Connector nope not found",
            ("PUT", "/connectors/nope/pause"): "Unknown connector nope",
            ("PUT", "/connectors/nope/resume"): "Unknown connector nope",
            ("POST", "/connectors/nope/restart"): "Unknown connector: nope",
            ("POST", "/connectors/shape/tasks/7/restart"): "Unknown task: shape-7",
            ("GET", "/no/such/endpoint"): "HTTP 404 Not Found",
        }
        for (method, path), message in expected_404s.items():
            with self.subTest(path=path):
                self.assertEqual(self.call(method, path)[:2],
                                 (404, {"error_code": 404, "message": message}))
        self.assertEqual(self.call("DELETE", "/connectors/shape/status")[:2],
                         (405, {"error_code": 405, "message": "HTTP 405 Method Not Allowed"}))

    def test_list_and_expand(self):
        self.add("list-a")
        self.add("list-b", state="PAUSED")
        code, names, _ = self.call("GET", "/connectors")
        self.assertEqual(code, 200)
        self.assertIsInstance(names, list)
        self.assertTrue({"list-a", "list-b"} <= set(names))
        code, expanded, _ = self.call("GET", "/connectors?expand=status&expand=info")
        self.assertEqual(code, 200)
        self.assertEqual(expanded["list-b"]["status"]["connector"]["state"], "PAUSED")
        self.assertEqual(expanded["list-b"]["info"]["name"], "list-b")
        # A comma-separated value is unknown to Kafka Connect and ignored.
        self.assertEqual(self.call("GET", "/connectors?expand=status,info")[1]["list-a"], {})

    def test_pause_is_accepted_then_converges_connector_first(self):
        self.add("slow", tasks=2)
        self.call("POST", "/_emulator/config", {"connector_delay_s": 0.2, "transition_delay_s": 0.8})
        started = time.monotonic()
        code, body, raw = self.call("PUT", "/connectors/slow/pause")
        self.assertEqual((code, body, raw), (202, None, b""))
        self.assertEqual(self.states("slow"), ("RUNNING", ["RUNNING", "RUNNING"]))

        time.sleep(max(0.0, 0.5 - (time.monotonic() - started)))
        self.assertEqual(self.states("slow"), ("PAUSED", ["RUNNING", "RUNNING"]))

        self.wait_for(lambda: self.states("slow") == ("PAUSED", ["PAUSED", "PAUSED"]))
        self.assertGreaterEqual(time.monotonic() - started, 0.75)

        # Pausing again is still a 202; resume converges back to RUNNING.
        self.assertEqual(self.call("PUT", "/connectors/slow/pause")[0], 202)
        self.call("POST", "/_emulator/config", {"connector_delay_s": None, "transition_delay_s": 0.1})
        self.assertEqual(self.call("PUT", "/connectors/slow/resume")[:2], (202, None))
        self.wait_for(lambda: self.states("slow") == ("RUNNING", ["RUNNING", "RUNNING"]))

    def test_pause_and_resume_leave_failed_connector_failed(self):
        self.add("broken", tasks=1)
        code, _, _ = self.call("POST", "/_emulator/fail",
                               {"connector": "broken", "trace": "java.lang.Boom\n\tat x"})
        self.assertEqual(code, 200)
        self.assertEqual(self.call("PUT", "/connectors/broken/pause")[0], 202)
        self.wait_settled("broken")
        body = self.status("broken")
        self.assertEqual(body["connector"]["state"], "FAILED")
        self.assertEqual(body["connector"]["trace"], "java.lang.Boom\n\tat x")
        self.assertEqual(body["tasks"][0]["state"], "PAUSED")  # the tasks still pause (F5)
        state = self.call("GET", "/_emulator/state")[1]["connectors"]["broken"]
        self.assertEqual(state["target_state"], "PAUSED")  # target written anyway

        self.assertEqual(self.call("PUT", "/connectors/broken/resume")[0], 202)
        self.wait_settled("broken")
        self.assertEqual(self.states("broken"), ("FAILED", ["RUNNING"]))

    def test_failed_task_stays_failed_on_pause(self):
        self.add("halfbroken", tasks=2)
        self.call("POST", "/_emulator/fail", {"connector": "halfbroken", "task": 0})
        self.assertEqual(self.call("PUT", "/connectors/halfbroken/pause")[0], 202)
        self.wait_settled("halfbroken")
        self.assertEqual(self.states("halfbroken"), ("PAUSED", ["FAILED", "PAUSED"]))
        self.assertIn("ConnectException", self.status("halfbroken")["tasks"][0]["trace"])

    def test_failure_after_resume_is_deferred_until_the_task_runs_again(self):
        self.add("relapse", tasks=2, state="PAUSED")
        self.call("POST", "/_emulator/fail", {"connector": "relapse", "task": 1, "trace": "late",
                                              "after_resume": True})
        self.assertEqual(self.states("relapse"), ("PAUSED", ["PAUSED", "PAUSED"]))
        self.assertEqual(self.call("PUT", "/connectors/relapse/resume")[0], 202)
        self.wait_settled("relapse")
        self.assertEqual(self.states("relapse"), ("RUNNING", ["RUNNING", "FAILED"]))
        self.assertEqual(self.status("relapse")["tasks"][1]["trace"], "late")
        # Only once: after a restart it runs.
        self.call("POST", "/connectors/relapse/tasks/1/restart")
        self.wait_for(lambda: self.states("relapse") == ("RUNNING", ["RUNNING", "RUNNING"]))

    def test_failure_after_resume_survives_a_stop(self):
        self.add("relapse-stop", tasks=1, state="RUNNING")
        self.call("POST", "/_emulator/fail", {"connector": "relapse-stop", "task": 0, "trace": "late",
                                              "after_resume": True})
        self.assertEqual(self.call("PUT", "/connectors/relapse-stop/stop")[0], 204)
        self.wait_for(lambda: self.states("relapse-stop") == ("STOPPED", []))
        self.assertEqual(self.call("PUT", "/connectors/relapse-stop/resume")[0], 202)
        self.wait_for(lambda: self.states("relapse-stop") == ("RUNNING", ["FAILED"]))
        self.assertEqual(self.status("relapse-stop")["tasks"][0]["trace"], "late")

    def test_restart_only_failed_task_of_paused_connector_comes_up_paused(self):
        self.add("revive", tasks=2, state="PAUSED")
        self.call("POST", "/_emulator/fail", {"connector": "revive", "task": 1, "trace": "boom"})
        self.call("POST", "/_emulator/config", {"transition_delay_s": 0.4})
        code, body, _ = self.call("POST", "/connectors/revive/restart?includeTasks=true&onlyFailed=true")
        self.assertEqual(code, 202)
        self.assertEqual(body["connector"]["state"], "PAUSED")  # not failed: not restarted
        self.assertEqual([(t["id"], t["state"]) for t in body["tasks"]],
                         [(0, "PAUSED"), (1, "RESTARTING")])
        self.assertNotIn("trace", body["tasks"][1])
        self.assertEqual(self.states("revive"), ("PAUSED", ["PAUSED", "RESTARTING"]))
        self.wait_for(lambda: self.states("revive") == ("PAUSED", ["PAUSED", "PAUSED"]))
        self.assertNotIn("trace", self.status("revive")["tasks"][1])

        # With no delay the restart completes before the answer, but the 202 body
        # still shows the instances marked RESTARTING.
        self.call("POST", "/_emulator/fail", {"connector": "revive", "task": 0})
        self.call("POST", "/_emulator/config", {"transition_delay_s": 0})
        code, body, _ = self.call("POST", "/connectors/revive/restart?includeTasks=true&onlyFailed=true")
        self.assertEqual(code, 202)
        self.assertEqual([t["state"] for t in body["tasks"]], ["RESTARTING", "PAUSED"])
        self.assertEqual(self.states("revive"), ("PAUSED", ["PAUSED", "PAUSED"]))

    def test_restart_without_params_and_on_old_workers_restarts_connector_only(self):
        self.add("oldstyle", tasks=1)
        self.call("POST", "/_emulator/fail", {"connector": "oldstyle"})
        self.call("POST", "/_emulator/fail", {"connector": "oldstyle", "task": 0})
        self.assertEqual(self.call("POST", "/connectors/oldstyle/restart")[:3], (204, None, b""))
        self.wait_settled("oldstyle")
        self.assertEqual(self.states("oldstyle"), ("RUNNING", ["FAILED"]))

        self.call("POST", "/_emulator/config", {"restart_params_supported": False})
        self.call("POST", "/_emulator/fail", {"connector": "oldstyle"})
        code, body, _ = self.call("POST", "/connectors/oldstyle/restart?includeTasks=true&onlyFailed=true")
        self.assertEqual((code, body), (204, None))  # params ignored like workers < 3.0
        self.wait_settled("oldstyle")
        self.assertEqual(self.states("oldstyle"), ("RUNNING", ["FAILED"]))

        # Per-task restart is how old workers get a task back.
        self.assertEqual(self.call("POST", "/connectors/oldstyle/tasks/0/restart")[0], 204)
        self.wait_for(lambda: self.states("oldstyle") == ("RUNNING", ["RUNNING"]))

    def test_409_and_500_injection(self):
        self.add("conflict")
        code, _, _ = self.call("POST", "/_emulator/faults",
                               {"status_409_next": 2, "endpoints": ["/restart$"]})
        self.assertEqual(code, 200)
        self.assertEqual(self.call("GET", "/connectors/conflict/status")[0], 200)  # not matched
        messages = []
        for _ in range(2):
            code, body, _ = self.call("POST", "/connectors/conflict/restart")
            self.assertEqual(code, 409)
            self.assertEqual(body["error_code"], 409)
            self.assertIn(body["message"], SPEC_409_MESSAGES)
            messages.append(body["message"])
        self.assertEqual(len(set(messages)), 2)  # cycles through the spec's messages
        self.assertEqual(self.call("POST", "/connectors/conflict/restart")[0], 204)  # K used up

        # 500 on pause, without the change applied ...
        self.call("POST", "/_emulator/faults", {"status_500_next": 1, "endpoints": ["^PUT .*/pause$"]})
        self.assertEqual(self.call("PUT", "/connectors/conflict/pause")[:2],
                         (500, {"error_code": 500, "message": "Error writing target state to Kafka"}))
        target = lambda: self.call("GET", "/_emulator/state")[1]["connectors"]["conflict"]["target_state"]
        self.assertEqual(target(), "STARTED")
        # ... and with it applied (the write landed but the client saw an error).
        self.call("POST", "/_emulator/faults",
                  {"status_500_next": 1, "endpoints": ["/pause"], "apply_change": True})
        self.assertEqual(self.call("PUT", "/connectors/conflict/pause")[0], 500)
        self.assertEqual(target(), "PAUSED")
        self.assertEqual(self.call("GET", "/_emulator/faults")[1], [])

    def test_refuse_gives_connection_refused_then_recovers(self):
        code, _, _ = self.call("POST", "/_emulator/refuse", {"seconds": 1.0})
        self.assertEqual(code, 200)
        started = time.monotonic()
        with self.assertRaises(urllib.error.URLError) as ctx:
            self.call("GET", "/connectors")
        self.assertIsInstance(ctx.exception.reason, ConnectionRefusedError)

        recovered_after = None
        while time.monotonic() - started < 5:
            try:
                if self.call("GET", "/connectors")[0] == 200:
                    recovered_after = time.monotonic() - started
                    break
            except urllib.error.URLError:
                time.sleep(0.05)
        self.assertIsNotNone(recovered_after, "listener did not come back")
        self.assertGreaterEqual(recovered_after, 0.9)

    def test_offsets_supported_and_unsupported(self):
        self.add("offs")
        code, body, _ = self.call("GET", "/connectors/offs/offsets")
        self.assertEqual(code, 200)
        self.assertEqual(len(body["offsets"]), 1)
        entry = body["offsets"][0]
        self.assertEqual(entry["partition"], {"server": "offs"})
        self.assertTrue({"lsn", "lsn_proc", "lsn_commit", "txId", "ts_usec"} <= set(entry["offset"]))
        self.assertEqual(self.call("GET", "/connectors/nope/offsets")[:2],
                         (404, {"error_code": 404, "message": "Connector nope not found"}))
        # Offsets can only be changed while STOPPED.
        code, body, _ = self.call("DELETE", "/connectors/offs/offsets")
        self.assertEqual(code, 400)
        self.assertTrue(body["message"].startswith("Connectors must be in the STOPPED state"))

        self.call("POST", "/_emulator/config", {"offsets_supported": False})
        not_found = (404, {"error_code": 404, "message": "HTTP 404 Not Found"})
        self.assertEqual(self.call("GET", "/connectors/offs/offsets")[:2], not_found)
        self.assertEqual(self.call("PUT", "/connectors/offs/stop")[:2], not_found)  # <= 3.4

    def test_stop_empties_tasks_and_resume_regenerates_them(self):
        self.add("stopper", tasks=2)
        self.assertEqual(self.call("PUT", "/connectors/stopper/stop")[:2], (204, None))
        self.wait_for(lambda: self.states("stopper") == ("STOPPED", []))
        self.assertEqual(self.call("GET", "/connectors/stopper/offsets")[0], 200)  # any state
        self.assertEqual(self.call("PUT", "/connectors/stopper/resume")[0], 202)
        self.wait_for(lambda: self.states("stopper") == ("RUNNING", ["RUNNING", "RUNNING"]))

    def test_request_log_records_calls_in_order(self):
        self.add("logged")
        self.call("GET", "/connectors?expand=status")
        self.call("PUT", "/connectors/logged/pause")
        self.call("GET", "/connectors/logged/status")
        code, log, _ = self.call("GET", "/_emulator/requests")
        self.assertEqual(code, 200)
        self.assertEqual([(e["method"], e["path"], e["query"], e["status"]) for e in log], [
            ("GET", "/connectors", "expand=status", 200),
            ("PUT", "/connectors/logged/pause", "", 202),
            ("GET", "/connectors/logged/status", "", 200),
        ])  # control calls (add connector, this GET) are not journalled
        times = [e["time"] for e in log]
        self.assertEqual(times, sorted(times))
        self.assertLess(abs(times[-1] - time.time()), 60)
        self.call("DELETE", "/_emulator/requests")
        self.assertEqual(self.call("GET", "/_emulator/requests")[1], [])


    def test_target_state_is_last_writer_wins_when_a_pause_is_still_landing(self):
        # Issue 13: a resume sent while a slow pause is still landing must win.
        self.add("lww", tasks=1)
        self.call("POST", "/_emulator/config", {"transition_delay_s": 0})
        self.call("POST", "/_emulator/faults",
                  {"slow_next": 1, "delay_s": 1.0, "endpoints": ["/lww/pause$"]})
        import threading
        result = {}
        pause = threading.Thread(
            target=lambda: result.setdefault("pause", self.call("PUT", "/connectors/lww/pause")[0]))
        pause.start()
        time.sleep(0.3)  # the pause has arrived and is still landing
        self.assertEqual(self.call("PUT", "/connectors/lww/resume")[0], 202)
        pause.join()
        self.assertEqual(result["pause"], 202)
        time.sleep(0.2)
        self.assertEqual(self.states("lww"), ("RUNNING", ["RUNNING"]))
        state = self.call("GET", "/_emulator/state")[1]["connectors"]["lww"]
        self.assertEqual(state["target_state"], "STARTED")

    def test_slow_answers_outlast_a_client_timeout_and_still_apply(self):
        self.add("hang", tasks=1)
        self.call("POST", "/_emulator/config", {"transition_delay_s": 0})
        self.call("POST", "/_emulator/faults",
                  {"slow_next": 1, "delay_s": 1.5, "endpoints": ["/hang/pause$"]})
        request = urllib.request.Request(self.emu.base + "/connectors/hang/pause", method="PUT")
        with self.assertRaises(Exception):
            OPENER.open(request, timeout=0.5)
        self.wait_for(lambda: self.states("hang")[0] == "PAUSED", timeout=5)

    def test_task_fails_instead_of_pausing(self):
        self.add("fop", tasks=2)
        self.call("POST", "/_emulator/fail", {"connector": "fop", "task": 1, "on_pause": True})
        self.assertEqual(self.states("fop"), ("RUNNING", ["RUNNING", "RUNNING"]))
        self.assertEqual(self.call("PUT", "/connectors/fop/pause")[0], 202)
        self.wait_settled("fop")
        body = self.status("fop")
        self.assertEqual(body["connector"]["state"], "PAUSED")
        self.assertEqual([t["state"] for t in body["tasks"]], ["PAUSED", "FAILED"])
        self.assertIn("ConnectException", body["tasks"][1]["trace"])
        # The connector instance itself can fail instead of pausing; its tasks still pause.
        self.add("fop2", tasks=1)
        self.call("POST", "/_emulator/fail", {"connector": "fop2", "on_pause": True})
        self.assertEqual(self.call("PUT", "/connectors/fop2/pause")[0], 202)
        self.wait_settled("fop2")
        self.assertEqual(self.states("fop2"), ("FAILED", ["PAUSED"]))

    def test_offsets_committed_later_while_paused(self):
        self.add("lag", tasks=1)
        old = self.call("GET", "/connectors/lag/offsets")[1]["offsets"]
        new = [{"partition": {"server": "lag"}, "offset": {"lsn": 99}}]
        self.call("POST", "/_emulator/offsets", {"connector": "lag", "offsets": new, "delay_s": 0.5})
        self.assertEqual(self.call("GET", "/connectors/lag/offsets")[1]["offsets"], old)
        self.wait_for(lambda: self.call("GET", "/connectors/lag/offsets")[1]["offsets"] == new)

class CommandLineTest(unittest.TestCase):
    def test_cli_connectors_tasks_and_clean_sigterm_exit(self):
        emu = Emulator("--connectors", "cli-a,cli-b", "--tasks", "3")
        try:
            self.assertEqual(emu.call("GET", "/connectors")[1], ["cli-a", "cli-b"])
            status = emu.call("GET", "/connectors/cli-b/status")[1]
            self.assertEqual(status["connector"]["state"], "RUNNING")
            self.assertEqual([t["state"] for t in status["tasks"]], ["RUNNING"] * 3)
        finally:
            self.assertEqual(emu.close(signal.SIGTERM), 0)


if __name__ == "__main__":
    unittest.main()


FAKE_PSQL = """#!/bin/sh
# Records the SQL a sink batch sends (stdin) and the conninfo; fails when FAIL exists.
dir=$(dirname "$0")
cat >> "$dir/sql.log"
echo "$@" >> "$dir/args.log"
if [ -e "$dir/FAIL" ]; then echo 'psql: error: connection to server failed' >&2; exit 2; fi
exit 0
"""


class SinkAndOffsetsTest(unittest.TestCase):
    """Sink connectors, the 3.5/3.6 offsets split and the emulated sink (with a fake psql that
    records the SQL; the real PostgreSQL round trip is tested by tests/integration/cdc_replay_test)."""

    @classmethod
    def setUpClass(cls):
        cls.bin = tempfile.TemporaryDirectory(prefix="kc-psql-")
        cls.addClassCleanup(cls.bin.cleanup)
        psql = os.path.join(cls.bin.name, "psql")
        with open(psql, "w") as f:
            f.write(FAKE_PSQL)
        os.chmod(psql, 0o755)
        env = dict(os.environ, PATH=cls.bin.name + os.pathsep + os.environ.get("PATH", ""))
        cls.emu = Emulator("--transition-delay", "0", env=env)
        cls.addClassCleanup(cls.emu.close)

    def setUp(self):
        for name in ("sql.log", "args.log", "FAIL"):
            try:
                os.unlink(os.path.join(self.bin.name, name))
            except FileNotFoundError:
                pass
        self.call("POST", "/_emulator/config", {"profile": "3.6", "transition_delay_s": 0})

    def call(self, method, path, body=None):
        return self.emu.call(method, path, body)

    def sql(self):
        try:
            with open(os.path.join(self.bin.name, "sql.log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def offsets(self, name):
        code, body, _ = self.call("GET", f"/connectors/{name}/offsets")
        self.assertEqual(code, 200, body)
        return body["offsets"]

    def kafka_offset(self, name):
        entries = self.offsets(name)
        return entries[0]["offset"]["kafka_offset"] if entries else None

    def wait_for(self, predicate, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.02)
        self.fail("condition not met in time")

    def add_sink(self, name, sink=None, config=None, state="RUNNING"):
        body = {"name": name, "type": "sink", "state": state, "config": config or {}}
        if sink is not None:
            body["sink"] = sink
        code, out, _ = self.call("POST", "/_emulator/connectors", body)
        self.assertEqual(code, 201, out)
        return out

    def append(self, topic, records):
        code, out, _ = self.call("POST", f"/_emulator/topics/{topic}", {"records": records})
        self.assertEqual(code, 200, out)
        return out

    def test_sink_status_type_and_kafka_offsets_shape(self):
        self.add_sink("s-shape", config={"topics": "shape.rows"})
        code, body, _ = self.call("GET", "/connectors/s-shape/status")
        self.assertEqual((code, body["type"]), (200, "sink"))
        code, info, _ = self.call("GET", "/connectors/s-shape")
        self.assertEqual(info["type"], "sink")
        self.assertEqual(info["config"]["insert.mode"], "upsert")
        self.assertEqual(self.offsets("s-shape"), [])
        self.assertEqual(self.call("PUT", "/connectors/s-shape/stop")[0], 204)
        entry = {"partition": {"kafka_topic": "shape.rows", "kafka_partition": 0},
                 "offset": {"kafka_offset": 7}}
        code, body, _ = self.call("PATCH", "/connectors/s-shape/offsets", {"offsets": [entry]})
        self.assertEqual((code, body), (200, {"message": "The offsets for this connector have "
                                                         "been altered successfully"}))
        self.assertEqual(self.offsets("s-shape"), [entry])

    def test_offsets_writes_need_stopped_and_36(self):
        self.add_sink("s-split")
        entry = {"partition": {"kafka_topic": "s-split.rows", "kafka_partition": 0},
                 "offset": {"kafka_offset": 1}}
        code, body, _ = self.call("PATCH", "/connectors/s-split/offsets", {"offsets": [entry]})
        self.assertEqual(code, 400)
        self.assertEqual(body["message"],
                         "Connectors must be in the STOPPED state before their offsets can be "
                         "modified. This can be done for the specified connector by issuing a "
                         "'PUT' request to the '/connectors/s-split/stop' endpoint")
        # The body is checked first, in any state (a side-effect-free probe of 3.6).
        code, body, _ = self.call("PATCH", "/connectors/s-split/offsets", {})
        self.assertEqual((code, body["message"]),
                         (400, "Partitions / offsets need to be provided for an alter offsets "
                               "request"))
        self.assertEqual(self.call("PUT", "/connectors/s-split/stop")[0], 204)
        # 3.5: stop and GET offsets exist, the writes do not.
        _, config, _ = self.call("POST", "/_emulator/config", {"profile": "3.5"})
        self.assertEqual(config["version"], "3.5.2")
        not_allowed = (405, {"error_code": 405, "message": "HTTP 405 Method Not Allowed"})
        self.assertEqual(self.call("PATCH", "/connectors/s-split/offsets",
                                   {"offsets": [entry]})[:2], not_allowed)
        self.assertEqual(self.call("DELETE", "/connectors/s-split/offsets")[:2], not_allowed)
        self.assertEqual(self.call("GET", "/connectors/s-split/offsets")[0], 200)
        self.assertEqual(self.call("PUT", "/connectors/s-split/stop")[0], 204)
        # 3.4: neither.
        self.call("POST", "/_emulator/config", {"profile": "3.4"})
        not_found = (404, {"error_code": 404, "message": "HTTP 404 Not Found"})
        self.assertEqual(self.call("GET", "/connectors/s-split/offsets")[:2], not_found)
        self.assertEqual(self.call("PUT", "/connectors/s-split/stop")[:2], not_found)
        self.assertEqual(self.call("DELETE", "/connectors/s-split/offsets")[:2], not_found)
        self.call("POST", "/_emulator/config", {"profile": "3.6"})
        code, body, _ = self.call("DELETE", "/connectors/s-split/offsets")
        self.assertEqual((code, body["message"]),
                         (200, "The offsets for this connector have been reset successfully"))

    def test_emulated_sink_upserts_from_its_committed_offset(self):
        sink = {"conninfo": "host=127.0.0.1 dbname=x", "table": "public.items", "key": ["id"]}
        self.add_sink("s-apply", sink=sink, config={"topics": "apply.rows"})
        self.append("apply.rows", [{"key": {"id": 1}, "value": {"id": 1, "name": "it's"}},
                                   {"key": {"id": 2}, "value": {"id": 2, "name": None}},
                                   {"key": {"id": 1}, "value": None}])
        self.wait_for(lambda: self.kafka_offset("s-apply") == 3)
        sql = self.sql()
        self.assertIn('INSERT INTO "public"."items" ("id", "name") VALUES (1, \'it\'\'s\') '
                      'ON CONFLICT ("id") DO UPDATE SET "name" = EXCLUDED."name";', sql)
        self.assertIn('VALUES (2, NULL)', sql)
        self.assertIn('DELETE FROM "public"."items" WHERE "id" = 1;', sql)
        with open(os.path.join(self.bin.name, "args.log")) as f:
            self.assertIn("host=127.0.0.1 dbname=x", f.read())
        self.assertEqual(self.offsets("s-apply"),
                         [{"partition": {"kafka_topic": "apply.rows", "kafka_partition": 0},
                           "offset": {"kafka_offset": 3}}])

        # Stopped: nothing is applied; PATCH back to 1 and resume: records 1 and 2 again.
        self.assertEqual(self.call("PUT", "/connectors/s-apply/stop")[0], 204)
        os.unlink(os.path.join(self.bin.name, "sql.log"))
        self.append("apply.rows", [{"key": {"id": 3}, "value": {"id": 3, "name": "c"}}])
        time.sleep(0.3)
        self.assertEqual(self.sql(), "")
        entry = {"partition": {"kafka_topic": "apply.rows", "kafka_partition": 0},
                 "offset": {"kafka_offset": 1}}
        self.assertEqual(self.call("PATCH", "/connectors/s-apply/offsets",
                                   {"offsets": [entry]})[0], 200)
        self.assertEqual(self.call("PUT", "/connectors/s-apply/resume")[0], 202)
        self.wait_for(lambda: self.kafka_offset("s-apply") == 4)
        sql = self.sql()
        self.assertNotIn("'it''s'", sql)  # record 0 is before the committed offset
        self.assertIn("VALUES (2, NULL)", sql)
        self.assertIn("VALUES (3, 'c')", sql)

    def test_insert_mode_sink_and_psql_failure_fail_the_task(self):
        sink = {"conninfo": "dbname=y", "table": "t"}
        self.add_sink("s-insert", sink=sink, config={"topics": "insert.rows",
                                                     "insert.mode": "insert"})
        self.append("insert.rows", [{"key": {"id": 5}, "value": {"id": 5}}])
        self.wait_for(lambda: self.kafka_offset("s-insert") == 1)
        self.assertIn('INSERT INTO "t" ("id") VALUES (5);', self.sql())
        self.assertNotIn("ON CONFLICT", self.sql())
        open(os.path.join(self.bin.name, "FAIL"), "w").close()
        self.append("insert.rows", [{"key": {"id": 6}, "value": {"id": 6}}])

        def failed():
            body = self.call("GET", "/connectors/s-insert/status")[1]
            return body["tasks"] and body["tasks"][0]["state"] == "FAILED"
        self.wait_for(failed)
        body = self.call("GET", "/connectors/s-insert/status")[1]
        self.assertIn("connection to server failed", body["tasks"][0]["trace"])
        self.assertEqual(self.kafka_offset("s-insert"), 1)  # the failed batch is not committed

    def test_pause_keeps_position_uncommitted_stop_commits_at_once(self):
        sink = {"conninfo": "dbname=z", "table": "t", "flush_interval_s": 60}
        self.add_sink("s-flush", sink=sink, config={"topics": "flush.rows"})
        self.append("flush.rows", [{"key": {"id": i}, "value": {"id": i}} for i in range(3)])
        self.wait_for(lambda: self.sql().count("INSERT") == 3)
        self.assertEqual(self.call("PUT", "/connectors/s-flush/pause")[0], 202)
        time.sleep(0.2)
        self.assertIsNone(self.kafka_offset("s-flush"))  # applied, not yet flushed
        self.assertEqual(self.call("PUT", "/connectors/s-flush/stop")[0], 204)
        self.assertEqual(self.kafka_offset("s-flush"), 3)  # the final commit of a stop

    def test_reset_source_offsets_snapshot_afresh_after_resume(self):
        code, out, _ = self.call("POST", "/_emulator/connectors", {"name": "src-re"})
        self.assertEqual(code, 201, out)
        self.assertEqual(self.call("PUT", "/connectors/src-re/stop")[0], 204)
        self.assertEqual(self.call("DELETE", "/connectors/src-re/offsets")[0], 200)
        self.assertEqual(self.offsets("src-re"), [])
        self.assertEqual(self.call("PUT", "/connectors/src-re/resume")[0], 202)
        self.wait_for(lambda: bool(self.offsets("src-re")))
        self.assertTrue(self.offsets("src-re")[0]["offset"]["snapshot_completed"])

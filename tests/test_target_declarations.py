"""A target's declarations drive the shared sender: method, path, token placement, success statuses,
ids, 404s and whether a request may be sent twice. Real HTTP on loopback, a recording server."""

from __future__ import annotations

import http.server
import json
import threading

import pandas as pd
import pytest

from uploader.outcome import Request
from uploader.pacing import RetryPolicy
from uploader.secret import Secret
from uploader.sender import Sender, SendPolicy
from uploader.targets.base import CALL_ENDED, Target

TOKEN = "tok-3e9f"


class Recorder:
    """Records each request; answers by ``mode``: a status and body, or "drop" (read it, then close)."""

    def __init__(self, status=202, body=b'{"call_in_progress": {"transaction_id": "C1"}}'):
        self.seen: list[dict] = []
        self.status, self.body, self.mode = status, body, "answer"
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorder.seen.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "body": body,
                        "authorization": self.headers.get("Authorization"),
                    }
                )
                if recorder.mode == "drop":  # applied, then the answer is lost
                    self.close_connection = True
                    self.connection.close()
                    return
                self.send_response(recorder.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(recorder.body)))
                self.end_headers()
                self.wfile.write(recorder.body)

            do_GET = do_POST = do_PUT = _any

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def recorder():
    server = Recorder()
    yield server
    server.stop()


class LiveCall(Target):
    """Like the Calls In Progress API: PUT, ids in the query, token in the query, 202 = updated."""

    name = "live_call"
    title = "a live-call API"
    method = "PUT"
    path = "calls_in_progress.json"
    token_in = "query"
    success = {200: "updated", 202: "updated"}
    not_found = CALL_ENDED
    record_key = "call_in_progress"
    id_columns = ("call_transaction_id",)

    def keys(self, rows):
        return rows["transaction_id"]

    def payloads(self, rows):
        return [
            {"call_in_progress": {"custom_data": [{"name": "Disposition", "value": v}]}} for v in rows["disposition"]
        ]

    def paths(self, rows):
        return [f"{self.path}?transaction_id={t}" for t in rows["transaction_id"]]


class Hangup(LiveCall):
    """Not idempotent (as a phone call's creation is not): never sent twice unasked."""

    name = "hangup"
    method = "POST"
    token_in = "header"
    idempotent = False


def send(target, server, rows, **policy):
    requests = target.prepare(pd.DataFrame(rows, index=range(2, 2 + len(rows["transaction_id"]))))
    sender = Sender(target, server.base_url, Secret(TOKEN), SendPolicy(retry=RetryPolicy(backoff_base=0.01, **policy)))
    return requests, list(sender.send_all([[r] for r in requests]))


def test_method_path_query_and_token_come_from_the_target(recorder):
    requests, outcomes = send(LiveCall(), recorder, {"transaction_id": ["T1"], "disposition": ["SALE"]})
    assert requests == [
        Request(
            2,
            "T1",
            {"call_in_progress": {"custom_data": [{"name": "Disposition", "value": "SALE"}]}},
            "PUT",
            "calls_in_progress.json?transaction_id=T1",
        )
    ]
    seen = recorder.seen[0]
    assert seen["method"] == "PUT"
    assert seen["path"] == f"/api/v1/calls_in_progress.json?transaction_id=T1&oauth_token={TOKEN}"
    assert TOKEN.encode() not in seen["body"] and seen["authorization"] is None
    [outcome] = outcomes
    # 202 is this target's success, and its answer's id goes where the target names it.
    assert (outcome.status, outcome.http_status, outcome.call_transaction_id) == ("updated", 202, "C1")


def test_a_success_status_must_still_prove_itself(recorder):
    recorder.body = b"<html>accepted</html>"
    _, [outcome] = send(LiveCall(), recorder, {"transaction_id": ["T1"], "disposition": ["SALE"]}, max_attempts=1)
    assert (outcome.status, outcome.error_class, outcome.failure_kind) == ("failed", "InvalidAnswer", "retryable")
    assert "call_in_progress record" in outcome.error


def test_the_token_in_a_header_and_a_final_404(recorder):
    recorder.status, recorder.body = 404, b'{"errors": {"class": "RecordNotFound", "invalid_data": "ended"}}'
    _, [outcome] = send(Hangup(), recorder, {"transaction_id": ["T9"], "disposition": [""]})
    seen = recorder.seen[0]
    assert seen["authorization"] == f"Bearer {TOKEN}" and TOKEN not in seen["path"]
    assert json.loads(seen["body"]) == {"call_in_progress": {"custom_data": [{"name": "Disposition", "value": ""}]}}
    # The call has ended: it never comes back, so this is not a "try again later" not-found.
    assert (outcome.error_class, outcome.failure_kind) == ("CallEnded", "call-ended")
    assert outcome.error == "ended"


def test_a_lost_answer_is_sent_again_only_where_that_is_safe(recorder):
    recorder.mode = "drop"
    _, [outcome] = send(LiveCall(), recorder, {"transaction_id": ["T1"], "disposition": ["A"]}, max_attempts=3)
    assert outcome.failure_kind == "retryable" and len(recorder.seen) == 3  # idempotent: tried again

    recorder.seen.clear()
    _, [outcome] = send(Hangup(), recorder, {"transaction_id": ["T2"], "disposition": ["A"]}, max_attempts=3)
    assert outcome.status == "unknown" and len(recorder.seen) == 1  # may have been applied: never twice
    assert outcome.failure_kind == "unknown" and "retry --include-unknown" in outcome.error
    assert TOKEN not in outcome.error

    recorder.seen.clear()
    recorder.mode, recorder.status, recorder.body = "answer", 400, b'{"errorCode": "bad"}'
    _, [outcome] = send(Hangup(), recorder, {"transaction_id": ["T3"], "disposition": ["A"]}, max_attempts=3)
    assert outcome.status == "failed" and len(recorder.seen) == 1  # a refusal says it was not applied


def test_the_readmes_command_reference_is_generated_from_the_commands_and_current():
    from pathlib import Path

    from uploader.cli import command_reference

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert command_reference() in readme, "run `make readme`"
    for option in ("[--mask-pii]", "[--ca-bundle FILE]", "[--write-every SECONDS]", "[--map 'HEADER=FIELD']"):
        assert option in command_reference()


def test_the_readme_lists_every_registered_target():
    # The README's table of APIs is generated from the registry (`make readme`); it cannot drift.
    from pathlib import Path

    from uploader.targets import TARGETS, markdown

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert markdown() in readme, "run `make readme`"
    for name in TARGETS:
        assert f"| `{name}` |" in markdown()

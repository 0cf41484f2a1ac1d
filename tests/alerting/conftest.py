"""Real local receivers for the alert sinks: an HTTP server that records webhook posts
and an SMTP server (aiosmtpd) that keeps the mails it receives."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    """A local port nobody listens on (connections to it are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class WebhookReceiver:
    url: str
    posts: list[dict] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answers to give, then 200

    def events(self) -> list[dict]:
        return [p["json"] for p in self.posts]


class _RecordingHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        receiver: WebhookReceiver = self.server.receiver
        body = self.rfile.read(int(self.headers["Content-Length"]))
        receiver.posts.append(
            {
                "path": self.path,
                "content_type": self.headers["Content-Type"],
                "json": json.loads(body),
            }
        )
        status = receiver.statuses.pop(0) if receiver.statuses else 200
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingHandler)
    server.receiver = WebhookReceiver(url=f"http://127.0.0.1:{server.server_port}/hooks/alerts")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.receiver
    server.shutdown()
    server.server_close()


class _MailboxHandler:
    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(
            email.message_from_bytes(
                envelope.original_content or envelope.content, policy=email.policy.default
            )
        )
        return "250 Message accepted for delivery"


@dataclass
class SmtpReceiver:
    host: str
    port: int
    handler: _MailboxHandler

    @property
    def messages(self) -> list[email.message.EmailMessage]:
        return self.handler.messages


@pytest.fixture
def smtp():
    handler = _MailboxHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield SmtpReceiver("127.0.0.1", controller.port, handler)
    controller.stop()


def body_text(message: email.message.EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


@pytest.fixture
def receivers_env(monkeypatch, webhook, smtp):
    """Points the base alerting.yml at the local receivers through the environment,
    as a user's .env would."""
    monkeypatch.setenv("ALERT_WEBHOOK_URL", webhook.url)
    monkeypatch.setenv("ALERT_SMTP_HOST", smtp.host)
    monkeypatch.setenv("ALERT_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("ALERT_SMTP_SECURITY", "none")
    monkeypatch.setenv("ALERT_EMAIL_FROM", "fraud-detection@example.test")
    monkeypatch.setenv("ALERT_EMAIL_TO", "ops@example.test,ml@example.test")
    return webhook, smtp

"""The mail sinks for real: a maildir on disk, and SMTP to a tiny server on loopback."""

from __future__ import annotations

import asyncio
import smtplib
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from notifications.adapters.sinks import MaildirSink, SmtpSink, message_id
from notifications.domain.model import Contact, EventType, Notification
from tests.integration.notifications.smtp_server import smtp_server

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
WAIT_S = 10.0


def welcome(event_id: str = "signup-1") -> Notification:
    return Notification.create(
        event_id=event_id,
        event_type=EventType.USER_SIGNED_UP,
        contact=Contact("alice", "alice@example.com", "Alice"),
        subject="Welcome to Agora",
        body="Hello Alice,\n\nyour account is ready. Grüße!\n",
        now=NOON,
    )


def files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


async def test_the_maildir_gets_one_message_per_notification_however_often_sent(
    tmp_path: Path,
) -> None:
    sink = MaildirSink(tmp_path / "mail", "Shop <shop@example.com>")
    notification = welcome()
    await sink.send(notification)
    await sink.send(notification)
    assert files(tmp_path / "mail" / "new") == [notification.id]
    assert files(tmp_path / "mail" / "tmp") == []
    message = message_from_bytes(sink.path(notification).read_bytes(), policy=policy.default)
    assert message["Message-ID"] == f"<{notification.id}@notifications.agora>"
    assert message["To"] == "alice@example.com"
    assert message["From"] == "Shop <shop@example.com>"
    assert message["Subject"] == "Welcome to Agora"
    assert message["X-Agora-Notification"] == notification.name
    body = message.get_body()
    assert body is not None
    assert "Grüße!" in body.get_content()


async def test_a_message_a_reader_already_moved_to_cur_is_not_written_again(
    tmp_path: Path,
) -> None:
    sink = MaildirSink(tmp_path)
    notification = welcome()
    await sink.send(notification)
    sink.path(notification).rename(tmp_path / "cur" / f"{notification.id}:2,S")
    await sink.send(notification)
    assert files(tmp_path / "new") == []
    await sink.send(welcome("signup-2"))
    assert len(files(tmp_path / "new")) == 1


async def test_smtp_delivers_exactly_one_message_with_the_notification_message_id() -> None:
    notification = welcome()
    async with smtp_server() as server:
        sink = SmtpSink("127.0.0.1", server.port, "Shop <shop@example.com>", timeout=5.0)
        await sink.send(notification)
        await asyncio.wait_for(server.arrived.wait(), WAIT_S)
    assert len(server.messages) == 1
    received = server.messages[0]
    assert received.recipients == ["<alice@example.com>"]
    assert received.sender == "<shop@example.com>"
    message = received.parsed()
    assert message["Message-ID"] == message_id(notification)
    assert message["Subject"] == "Welcome to Agora"


async def test_an_smtp_refusal_fails_the_attempt() -> None:
    async with smtp_server(refuse=True) as server:
        sink = SmtpSink("127.0.0.1", server.port, timeout=5.0)
        with pytest.raises(smtplib.SMTPSenderRefused):
            await sink.send(welcome())
    assert server.messages == []

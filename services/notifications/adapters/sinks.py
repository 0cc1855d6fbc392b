"""The mail sinks: a local maildir (the default) and an SMTP server.

Both send the same RFC 5322 message for a notification (:func:`email_message`). Its
Message-ID is derived from the notification id, so a message delivered twice (after a
crash between the sink's acceptance and the recorded ``SENT``) is recognisably one.
The maildir goes further and keeps one file per notification id, so delivering twice
writes one message.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import smtplib
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from notifications.domain.model import Notification
from notifications.domain.ports import MailSink

#: The right-hand side of every Message-ID.
MESSAGE_ID_DOMAIN = "notifications.agora"
DEFAULT_SENDER = "Agora <no-reply@agora.example>"


def message_id(notification: Notification) -> str:
    return f"<{notification.id}@{MESSAGE_ID_DOMAIN}>"


def email_message(notification: Notification, sender: str) -> EmailMessage:
    """The notification as a plain-text RFC 5322 message."""
    message = EmailMessage()
    message["Message-ID"] = message_id(notification)
    message["Date"] = format_datetime(notification.create_time)
    message["From"] = sender
    message["To"] = notification.recipient_address
    message["Subject"] = notification.subject
    message["X-Agora-Notification"] = notification.name
    message["X-Agora-Event-Type"] = notification.event_type.value
    message.set_content(notification.body)
    return message


class MaildirSink(MailSink):
    """Writes each message into a maildir: to ``tmp/`` first, then renamed into ``new/``.

    The file name is the notification id, so delivering a notification again finds its
    message (in ``new/``, or in ``cur/`` where a reader moved it) and writes nothing.
    """

    def __init__(self, root: Path, sender: str = DEFAULT_SENDER) -> None:
        self.root = root
        self._sender = sender

    async def send(self, notification: Notification) -> None:
        await asyncio.to_thread(self._write, notification)

    def path(self, notification: Notification) -> Path:
        """Where the message of ``notification`` is, once delivered and not yet read."""
        return self.root / "new" / notification.id

    def _delivered(self, notification: Notification) -> bool:
        name = notification.id
        if (self.root / "new" / name).exists() or (self.root / "cur" / name).exists():
            return True
        # A reader that saw the message moved it to cur/ with its flags appended.
        return any((self.root / "cur").glob(f"{name}:*"))

    def _write(self, notification: Notification) -> None:
        for folder in ("tmp", "new", "cur"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        if self._delivered(notification):
            return
        data = email_message(notification, self._sender).as_bytes()
        tmp = self.root / "tmp" / f"{notification.id}.{os.getpid()}"
        try:
            with tmp.open("wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, self.path(notification))
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        _fsync_directory(self.root / "new")


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class SmtpSink(MailSink):
    """Hands each message to an SMTP server (stdlib ``smtplib`` in a worker thread).

    Each delivery opens its own connection, bounded by ``timeout`` seconds for the
    connection and for every command; any refusal or network error fails the attempt.
    """

    def __init__(
        self, host: str, port: int, sender: str = DEFAULT_SENDER, timeout: float = 10.0
    ) -> None:
        self.host = host
        self.port = port
        self._sender = sender
        self._timeout = timeout

    async def send(self, notification: Notification) -> None:
        message = email_message(notification, self._sender)
        # The thread's own timeout bounds each blocking call; this bounds the whole.
        async with asyncio.timeout(self._timeout * 3):
            await asyncio.to_thread(self._send, message)

    def _send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self._timeout) as smtp:
            smtp.send_message(message)

"""A tiny SMTP server on loopback for tests: it keeps every message it accepts.

Just enough of RFC 5321 for ``smtplib``: a greeting, EHLO/HELO, MAIL, RCPT, DATA (with
dot-unstuffing), RSET, NOOP and QUIT. ``refuse`` makes it answer MAIL with a permanent
failure, as a server that rejects the sender would::

    async with smtp_server() as server:
        ...  # send to 127.0.0.1:server.port
        assert len(server.messages) == 1
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes

    def parsed(self) -> EmailMessage:
        message = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        return message


@dataclass
class SmtpServer:
    refuse: bool = False
    port: int = 0
    messages: list[Received] = field(default_factory=list)
    #: Signalled each time a message is accepted.
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def reply(line: str) -> None:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        sender = ""
        recipients: list[str] = []
        try:
            await reply("220 test.invalid ESMTP ready")
            while line := await reader.readline():
                command = line.decode(errors="replace").strip()
                verb = command.split(" ", 1)[0].upper()
                if verb == "EHLO":
                    await reply("250-test.invalid")
                    await reply("250 8BITMIME")
                elif verb in ("HELO", "NOOP"):
                    await reply("250 OK")
                elif verb == "MAIL":
                    if self.refuse:
                        await reply("554 5.7.1 sender refused")
                        continue
                    sender, recipients = command[10:].strip(), []
                    await reply("250 OK")
                elif verb == "RCPT":
                    recipients.append(command[8:].strip())
                    await reply("250 OK")
                elif verb == "DATA":
                    await reply("354 end with <CRLF>.<CRLF>")
                    lines = []
                    while (data := await reader.readline()) not in (b".\r\n", b""):
                        lines.append(data[1:] if data.startswith(b"..") else data)
                    self.messages.append(Received(sender, recipients, b"".join(lines)))
                    self.arrived.set()
                    await reply("250 OK queued")
                elif verb == "RSET":
                    sender, recipients = "", []
                    await reply("250 OK")
                elif verb == "QUIT":
                    await reply("221 bye")
                    break
                else:
                    await reply("502 command not implemented")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def smtp_server(*, refuse: bool = False) -> AsyncIterator[SmtpServer]:
    server = SmtpServer(refuse=refuse)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()
        await listener.wait_closed()

"""The dead-letter queue: list, replay or delete the events consumers gave up on.

::

    python -m runtime.deadletters [--nats-url URL] list [--consumer NAME]
    python -m runtime.deadletters [--nats-url URL] replay (--all | SEQ ...) [--consumer NAME]
    python -m runtime.deadletters [--nats-url URL] delete SEQ ...

A consumer that cannot handle an event stores it in ``AGORA_DEAD_LETTERS`` (see
:mod:`runtime.consumer`) with its payload, its headers and why. ``list`` prints one line
per dead letter, tab-separated: its sequence in that stream, the consumer, the event's
type and id, how many deliveries failed, the reason and when it was dead-lettered.

``replay`` publishes each one again to its original subject, in the stream that holds
that subject, with its original headers but a new ``Nats-Msg-Id`` (so the broker's
duplicate window does not drop it), then deletes the dead letter. The event id stays:
every consumer of that stream receives the event again, and those that already handled
it drop it through their inbox. ``delete`` drops dead letters without replaying them.

Exit status: 0 done; 1 the broker is unavailable or refused an operation; 2 a usage
error, such as a sequence that is not a dead letter (then nothing is changed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg
from nats.js.errors import APIError, NotFoundError

from runtime.broker import (
    DEAD_LETTER_STREAM,
    DEAD_LETTER_SUBJECTS,
    DEFAULT_NATS_URL,
    Broker,
    BrokerUnavailable,
    nats_url,
)
from runtime.consumer import CONSUMER_HEADER, DELIVERIES_HEADER, REASON_HEADER, SUBJECT_HEADER
from runtime.outbox import EVENT_ID_HEADER, EVENT_TYPE_HEADER, MSG_ID_HEADER

OK, UNAVAILABLE, USAGE = 0, 1, 2
#: What a dead letter carries on top of the event's own headers; dropped on replay.
DEAD_LETTER_HEADERS = frozenset({REASON_HEADER, CONSUMER_HEADER, SUBJECT_HEADER, DELIVERIES_HEADER})
#: JetStream's publish expectations (``Nats-Expected-Stream``...): those of the publish
#: that stored the dead letter, not of the replay.
EXPECTATION_PREFIX = "nats-expected-"
#: A durable consumer's name is one subject token.
CONSUMER_NAME = re.compile(r"[A-Za-z0-9_-]+")


class Refused(Exception):
    """The broker answered, but would not do what was asked."""


@dataclass(frozen=True)
class DeadLetter:
    """One message of the dead-letter stream."""

    seq: int
    consumer: str
    #: The subject the event was published on, which it is replayed to.
    subject: str
    event_type: str
    event_id: str
    deliveries: str
    reason: str
    time: datetime | None
    data: bytes
    headers: dict[str, str]

    @classmethod
    def from_message(cls, message: RawStreamMsg) -> DeadLetter:
        headers = dict(message.headers or {})
        stored_subject = message.subject or ""
        return cls(
            seq=message.seq or 0,
            consumer=headers.get(CONSUMER_HEADER)
            or stored_subject.removeprefix("agora.deadletters."),
            subject=headers.get(SUBJECT_HEADER, ""),
            event_type=headers.get(EVENT_TYPE_HEADER, ""),
            event_id=headers.get(EVENT_ID_HEADER, ""),
            deliveries=headers.get(DELIVERIES_HEADER, ""),
            reason=headers.get(REASON_HEADER, ""),
            time=message.time,
            data=message.data or b"",
            headers=headers,
        )

    def line(self) -> str:
        """The dead letter as ``list`` prints it: tab-separated, ``-`` for what is missing."""
        time = self.time.astimezone(UTC).isoformat(timespec="seconds") if self.time else ""
        fields = (
            str(self.seq),
            self.consumer,
            self.event_type,
            self.event_id,
            self.deliveries,
            self.reason,
            time.replace("+00:00", "Z"),
        )
        return "\t".join(" ".join(field.split()) or "-" for field in fields)

    def replay_headers(self) -> dict[str, str]:
        """The event's own headers, with a ``Nats-Msg-Id`` of this replay."""
        headers = {
            key: value
            for key, value in self.headers.items()
            if key not in DEAD_LETTER_HEADERS and not key.lower().startswith(EXPECTATION_PREFIX)
        }
        headers[MSG_ID_HEADER] = f"{self.event_id or 'unidentified'}:replay:{self.seq}"
        return headers


async def dead_letters(
    jetstream: JetStreamContext, consumer: str | None = None
) -> list[DeadLetter]:
    """The dead letters, oldest first; only ``consumer``'s if given."""
    try:
        state = (await jetstream.stream_info(DEAD_LETTER_STREAM)).state
    except NotFoundError:  # no consumer ever declared it: nothing was dead-lettered
        return []
    subject = f"agora.deadletters.{consumer}" if consumer else DEAD_LETTER_SUBJECTS
    letters: list[DeadLetter] = []
    seq = max(state.first_seq, 1)
    while seq <= state.last_seq:
        try:
            message = await jetstream.get_msg(DEAD_LETTER_STREAM, seq, subject=subject, next=True)
        except NotFoundError:  # none left at or after seq
            break
        letter = DeadLetter.from_message(message)
        letters.append(letter)
        seq = letter.seq + 1
    return letters


async def dead_letter(jetstream: JetStreamContext, seq: int) -> DeadLetter | None:
    """The dead letter with sequence ``seq``; None if there is none."""
    try:
        return DeadLetter.from_message(await jetstream.get_msg(DEAD_LETTER_STREAM, seq))
    except NotFoundError:
        return None


async def replay(jetstream: JetStreamContext, letter: DeadLetter) -> str:
    """Publishes ``letter`` again where it came from, then deletes it; returns the stream.

    Raises:
        Refused: if no stream holds its subject, or the broker rejects the publish.
    """
    if not letter.subject:
        raise Refused(f"dead letter {letter.seq} has no {SUBJECT_HEADER} header")
    try:
        stream = await jetstream.find_stream_name_by_subject(letter.subject)
    except NotFoundError:
        raise Refused(f"no stream holds {letter.subject}") from None
    try:
        await jetstream.publish(
            letter.subject, letter.data, stream=stream, headers=letter.replay_headers()
        )
    except APIError as error:
        raise Refused(f"{stream} rejected dead letter {letter.seq}: {error}") from error
    await delete(jetstream, letter.seq)
    return stream


async def delete(jetstream: JetStreamContext, seq: int) -> None:
    with contextlib.suppress(NotFoundError):  # already gone: what was asked is done
        await jetstream.delete_msg(DEAD_LETTER_STREAM, seq)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m runtime.deadletters",
        description="List, replay or delete the events consumers gave up on.",
    )
    parser.add_argument(
        "--nats-url", help=f"the broker (default: $NATS_URL, else {DEFAULT_NATS_URL})"
    )
    parser.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for each broker answer"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser("list", help="print one line per dead letter")
    listing.add_argument("--consumer", type=_consumer_name, help="only this consumer's")

    replaying = commands.add_parser("replay", help="publish dead letters again, then delete them")
    replaying.add_argument("seqs", nargs="*", type=_sequence, metavar="SEQ")
    replaying.add_argument("--all", action="store_true", help="every dead letter (of --consumer)")
    replaying.add_argument("--consumer", type=_consumer_name, help="only this consumer's")

    deleting = commands.add_parser("delete", help="delete dead letters without replaying them")
    deleting.add_argument("seqs", nargs="+", type=_sequence, metavar="SEQ")
    return parser


def _sequence(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a sequence number: {text!r}")
    return value


def _consumer_name(text: str) -> str:
    if not CONSUMER_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(f"not a consumer name: {text!r}")
    return text


class UsageError(Exception):
    """The arguments name something that is not there; nothing was changed."""


async def _run(args: argparse.Namespace) -> int:
    broker = Broker(args.nats_url, "deadletters", timeout=args.timeout)
    try:
        jetstream = await broker.jetstream()
        if args.command == "list":
            letters = await dead_letters(jetstream, args.consumer)
            for letter in letters:
                print(letter.line())
            print(f"{len(letters)} dead letter(s)", file=sys.stderr)
            return OK
        letters = await _selected(jetstream, args)
        for letter in letters:
            if args.command == "replay":
                stream = await replay(jetstream, letter)
                print(f"replayed {letter.seq} ({letter.event_type} {letter.event_id}) to {stream}")
            else:
                await delete(jetstream, letter.seq)
                print(f"deleted {letter.seq} ({letter.event_type} {letter.event_id})")
        if not letters:
            print("no dead letters", file=sys.stderr)
        return OK
    finally:
        await broker.close()


async def _selected(jetstream: JetStreamContext, args: argparse.Namespace) -> list[DeadLetter]:
    """The dead letters ``replay`` or ``delete`` acts on; all of them exist and match."""
    consumer: str | None = getattr(args, "consumer", None)
    if getattr(args, "all", False):
        return await dead_letters(jetstream, consumer)
    letters: list[DeadLetter] = []
    for seq in dict.fromkeys(args.seqs):
        letter = await dead_letter(jetstream, seq)
        if letter is None:
            raise UsageError(f"no dead letter with sequence {seq}")
        if consumer and letter.consumer != consumer:
            raise UsageError(f"dead letter {seq} is {letter.consumer}'s, not {consumer}'s")
        letters.append(letter)
    return letters


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)  # exits with 2 on a usage error
    if args.command == "replay" and bool(args.all) == bool(args.seqs):
        parser.error("replay takes either --all or sequence numbers")
    args.nats_url = args.nats_url or nats_url()
    # The broker connection's own warnings (a disconnect on close) are noise here.
    logging.basicConfig(level=logging.ERROR, format="%(name)s: %(message)s")
    try:
        return asyncio.run(_run(args))
    except UsageError as error:
        print(f"deadletters: {error}", file=sys.stderr)
        return USAGE
    except BrokerUnavailable as error:
        print(f"deadletters: the broker is unavailable: {error}", file=sys.stderr)
        return UNAVAILABLE
    except Refused as error:
        print(f"deadletters: {error}", file=sys.stderr)
        return UNAVAILABLE
    except (nats.errors.Error, TimeoutError, OSError) as error:
        print(
            f"deadletters: the broker at {args.nats_url} did not answer: "
            f"{type(error).__name__}: {error}",
            file=sys.stderr,
        )
        return UNAVAILABLE


if __name__ == "__main__":
    sys.exit(main())

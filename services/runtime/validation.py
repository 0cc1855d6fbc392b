"""The contract's validation rules (protovalidate's ``buf.validate`` options), checked per call.

A contract states what a valid request looks like next to its fields::

    string name = 1 [
      (buf.validate.field).required = true,
      (buf.validate.field).cel = {
        id: "product_name"
        message: "must have the form products/{product} with a valid id"
        expression: "this.matches('^products/[a-z][a-z0-9-]{0,62}$')"
      }
    ];

:class:`runtime.interceptors.RuntimeInterceptor` calls :func:`check` on every decoded
request before its handler runs, so a request that breaks a rule never reaches the
service: it ends INVALID_ARGUMENT (reason ``INVALID_ARGUMENT``) with one ``BadRequest``
field violation per broken rule, in the shape services use for their own checks
(``line_items[1].quantity``, ``labels["gift"]``; a message-level rule reports the field
``""``). :func:`compile_rules` compiles the rules of a service's requests at start-up, so
a broken rule stops the service before it listens instead of failing calls.

One validator serves the whole process: it compiles each message type's rules once and
caches them. Messages whose type (and every type it reaches) carries no rule are not
handed to it at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import cast

import protovalidate
from buf.validate import validate_pb2
from google.protobuf import descriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from runtime.config import ConfigError
from runtime.errors import FieldViolation, InvalidArgument

_validator = protovalidate.Validator()
#: Message full name -> whether the type, or a type it reaches, carries rules.
_has_rules: dict[str, bool] = {}


class ValidationRulesError(ConfigError):
    """A contract served by this process has validation rules that do not compile."""


def check(message: Message) -> None:
    """Raises InvalidArgument listing every rule of the contract that ``message`` breaks.

    A value a rule cannot even evaluate (a duration beyond what CEL can represent, say)
    is the caller's mistake too: INVALID_ARGUMENT naming the request, never INTERNAL.
    """
    try:
        found = violations(message)
    except protovalidate.EvaluationError as error:
        found = [FieldViolation("", f"cannot be checked against the contract's rules: {error}")]
    if found:
        raise InvalidArgument.for_fields(found)


def violations(message: Message) -> list[FieldViolation]:
    """The rules ``message`` breaks, as field violations; none if its type has no rules.

    Raises:
        protovalidate.CompilationError: if a rule of the type does not compile (see
            :func:`compile_rules` to find out at start-up).
        protovalidate.EvaluationError: if a rule fails while being evaluated.
    """
    # The stubs type DESCRIPTOR as either descriptor class; upb's has the same interface.
    if not has_rules(cast(descriptor.Descriptor, message.DESCRIPTOR)):
        return []
    return [
        field_violation(validate_pb2.Violation.FromString(broken.proto.to_binary()))
        for broken in _validator.collect_violations(message)
    ]


def compile_rules(services: Iterable[descriptor.ServiceDescriptor]) -> None:
    """Compiles the rules of every request type of ``services``.

    Raises:
        ValidationRulesError: naming each request type whose rules do not compile.
    """
    problems: list[str] = []
    for request_type in {method.input_type for service in services for method in service.methods}:
        if not has_rules(request_type):
            continue
        try:
            _validator.collect_violations(GetMessageClass(request_type)())
        except protovalidate.CompilationError as error:
            problems.append(f"{request_type.full_name}: {error}")
    if problems:
        raise ValidationRulesError(
            "the contract's validation rules do not compile: " + "; ".join(sorted(problems))
        )


def has_rules(message_type: descriptor.Descriptor) -> bool:
    """Whether ``message_type`` or a message type it reaches carries ``buf.validate`` rules."""
    known = _has_rules.get(message_type.full_name)
    if known is None:
        known = any(_own_rules(reached) for reached in _reachable(message_type))
        _has_rules[message_type.full_name] = known
    return known


def field_violation(violation: validate_pb2.Violation) -> FieldViolation:
    """One broken rule as a ``BadRequest`` field violation.

    The field is the path from the request (``items[0].name``, ``labels["gift"]``), or
    ``""`` for a rule of the message as a whole; the description is the rule's message
    (protovalidate's says "value is required", reported as "is required"), or its id if
    it has none.
    """
    description = violation.message or f"breaks the rule {violation.rule_id!r}"
    description = description.removeprefix("value ")
    return FieldViolation(field_path(violation.field), description)


def field_path(path: validate_pb2.FieldPath) -> str:
    """``a.b[2].c["key"]``: field names joined by dots, each with its list index or map key."""
    parts: list[str] = []
    for element in path.elements:
        part = element.field_name
        subscript = element.WhichOneof("subscript")
        if subscript == "index":
            part += f"[{element.index}]"
        elif subscript == "string_key":
            part += f"[{json.dumps(element.string_key, ensure_ascii=False)}]"
        elif subscript == "bool_key":
            part += f"[{'true' if element.bool_key else 'false'}]"
        elif subscript in ("int_key", "uint_key"):
            part += f"[{getattr(element, subscript)}]"
        parts.append(part)
    return ".".join(parts)


def _reachable(message_type: descriptor.Descriptor) -> list[descriptor.Descriptor]:
    """``message_type`` and every message type its fields lead to, each once."""
    seen = {message_type.full_name: message_type}
    pending = [message_type]
    while pending:
        for field in pending.pop().fields:
            nested = field.message_type
            if nested is not None and nested.full_name not in seen:
                seen[nested.full_name] = nested
                pending.append(nested)
    return list(seen.values())


def _own_rules(message_type: descriptor.Descriptor) -> bool:
    if message_type.GetOptions().HasExtension(validate_pb2.message):
        return True
    if any(oneof.GetOptions().HasExtension(validate_pb2.oneof) for oneof in message_type.oneofs):
        return True
    return any(field.GetOptions().HasExtension(validate_pb2.field) for field in message_type.fields)

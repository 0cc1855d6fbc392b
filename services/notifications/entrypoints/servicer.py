"""The thin gRPC adapter of notifications: convert, call one use case, convert back.

No status codes here: domain and conversion errors are mapped by the runtime interceptor.
Every method tells its use case whose notifications the caller may see
(:func:`runtime.access.restricted_to`: the caller the runtime authenticated).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from agora.notifications.v1 import notification_service_pb2 as pb
from agora.notifications.v1 import notification_service_pb2_grpc
from notifications.domain import usecases
from notifications.domain.ports import UnitOfWork
from notifications.entrypoints import convert
from runtime.access import restricted_to

Context = grpc.aio.ServicerContext[Any, Any]


class NotificationServicer(notification_service_pb2_grpc.NotificationServiceServicer):
    """Serves ``agora.notifications.v1.NotificationService``."""

    def __init__(self, uow: Callable[[], UnitOfWork]) -> None:
        self._uow = uow

    async def ListNotifications(
        self, request: pb.ListNotificationsRequest, context: Context
    ) -> pb.ListNotificationsResponse:
        query = convert.notification_query(request)
        page = await usecases.list_notifications(self._uow(), query, restricted_to=restricted_to())
        return pb.ListNotificationsResponse(
            notifications=[convert.notification_to_proto(n) for n in page.items],
            next_page_token=convert.next_page_token(page.next_after, query),
        )

    async def GetNotification(
        self, request: pb.GetNotificationRequest, context: Context
    ) -> pb.GetNotificationResponse:
        notification_id = convert.parse_notification_name(request.name)
        notification = await usecases.get_notification(
            self._uow(), notification_id, restricted_to=restricted_to()
        )
        return pb.GetNotificationResponse(notification=convert.notification_to_proto(notification))

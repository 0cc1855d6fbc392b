"""A client of notifications: the messages sent for users' sign-ups, orders and refunds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agora.notifications.v1 import notification_pb2, notification_service_pb2_grpc
from agora.notifications.v1 import notification_service_pb2 as pb
from agora_sdk.base import ServiceClient
from agora_sdk.paging import AsyncPager

if TYPE_CHECKING:
    import grpc

    from agora.notifications.v1.notification_service_pb2_grpc import (
        NotificationServiceAsyncStub,
    )


class NotificationsClient(ServiceClient["NotificationServiceAsyncStub"]):
    """Calls ``agora.notifications.v1.NotificationService``; see :class:`ServiceClient`.

    ``get_notification`` returns the ``Notification``; ``list_notifications`` returns an
    :class:`AsyncPager` over notifications, newest first, optionally for one recipient or
    one event type.
    """

    service = "notifications"
    service_descriptor = pb.DESCRIPTOR.services_by_name["NotificationService"]

    def _new_stub(self, channel: grpc.aio.Channel) -> NotificationServiceAsyncStub:
        return notification_service_pb2_grpc.NotificationServiceStub(channel)

    async def get_notification(
        self, request: pb.GetNotificationRequest, *, timeout: float | None = None
    ) -> notification_pb2.Notification:
        return (await self._call(self._stub.GetNotification, request, timeout)).notification

    def list_notifications(
        self, request: pb.ListNotificationsRequest, *, timeout: float | None = None
    ) -> AsyncPager[notification_pb2.Notification]:
        return self._list(self._stub.ListNotifications, request, lambda r: r.notifications, timeout)

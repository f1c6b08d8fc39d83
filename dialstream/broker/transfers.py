"""Transfers bots ask for, sent to the workers as ``transfer_call`` tasks on the events queue.

A bot process has a Redis client (its fleet registration) but no Celery worker code: it
pushes the task's message itself, built by :func:`dialstream.broker.messages.task_message`
(no I/O) and sent in one ``LPUSH``, as the ingress publishes leg events. The workers then
decide (``dialstream.domain.transfer``). Bots ask through ``bot.api.Bot.transfer``, and every
key a callee presses is sent too: whether it is the campaign's transfer key is the workers' call.

Example::

    TransferRequests(client).request_transfer(leg_sid, TransferRequest.create(mode="warm", summary="..."))
"""

from __future__ import annotations

import redis

from dialstream.broker.celery_app import EVENTS_QUEUE, TRANSFER_CALL, create_app
from dialstream.broker.messages import task_argsrepr, task_message
from dialstream.domain.transfer import TransferRequest
from dialstream.settings import Settings

__all__ = ["TransferRequests"]


class TransferRequests:
    """Publishes transfer requests over a synchronous Redis client on the broker's server."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._app = create_app(Settings())  # builds messages only: it never connects

    def request_transfer(self, leg_sid: str, request: TransferRequest) -> None:
        args = [leg_sid, request.to_dict()]
        message = task_message(self._app, TRANSFER_CALL, args, queue=EVENTS_QUEUE, argsrepr=task_argsrepr(TRANSFER_CALL, args))
        self.redis.lpush(EVENTS_QUEUE, message)

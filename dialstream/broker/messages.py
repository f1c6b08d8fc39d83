"""Task messages as dialstream publishes them.

- :func:`task_message` is the message kombu's Redis transport pushes for
  ``app.send_task(name, args, queue=queue)``, built without I/O, so that the ingress can
  push it from a Lua script in the same atomic step as its de-duplication
  (``dialstream/state/ingress_accept.lua``). The headers and body are Celery's own
  (``app.amqp.as_task_v2``); the envelope is kombu's (``tests/dialstream/broker/test_messages.py``
  compares the two).
- :func:`task_argsrepr` is what Flower shows as a task's arguments: Celery shows ``argsrepr``
  in task events, which Flower displays and keeps, so every publisher passes this masked
  summary as ``argsrepr=``.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from typing import Any

from celery import Celery
from kombu.utils.json import dumps

from dialstream.broker.celery_app import DIAL_CONTACT, HANDLE_LEG_EVENT, SEND_ACTION, TRANSFER_CALL
from dialstream.domain.campaign import LegTag
from dialstream.domain.report import mask_phone

__all__ = ["task_message", "task_argsrepr"]


def task_message(app: Celery, name: str, args: Sequence[Any], *, queue: str, argsrepr: str, priority: int = 0) -> str:
    """The JSON to ``LPUSH`` onto ``queue``'s list of ``priority`` (``celery_app.queue_key``) to
    send task ``name`` with ``args``."""
    task_id = str(uuid.uuid4())
    # reply_to and ignore_result as send_task gives them (None: the task's own setting).
    headers, properties, body, _ = app.amqp.as_task_v2(
        task_id, name, list(args), argsrepr=argsrepr, reply_to=app.thread_oid, ignore_result=None
    )
    properties = {
        **properties,
        "delivery_mode": 2,
        "delivery_info": {"exchange": "", "routing_key": queue},
        "priority": priority,
        "body_encoding": "base64",
        "delivery_tag": str(uuid.uuid4()),
    }
    return dumps(
        {
            "body": base64.b64encode(dumps(body).encode()).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": properties,
        }
    )


def task_argsrepr(task_name: str, args: Sequence[Any]) -> str:
    """What Flower shows as a task's arguments: the leg, campaign and contact, no phone number.

    ``dialstream.handle_leg_event`` carries Exotel's whole event (with the callee's number in
    its leg snapshot), so its arguments are summarised rather than shown.
    """
    try:
        if task_name == HANDLE_LEG_EVENT:
            event, leg = args[0], args[0].get("data") or {}
            tag = LegTag.decode(str(event.get("custom_param") or leg.get("custom_param") or ""))
            where = f"campaign={tag.campaign_id} contact={tag.contact_id} attempt={tag.attempt}" if tag else "untagged"
            to = f" to={mask_phone(str(leg['contact_uri']))}" if leg.get("contact_uri") else ""
            return f"{event.get('event_name')} leg={event.get('leg_sid') or leg.get('leg_sid')} {where}{to}"
        if task_name == SEND_ACTION:
            leg_sid, action = args[0], args[1]
            return f"{action.get('kind')} leg={leg_sid} action={action.get('action_id')}"
        if task_name == TRANSFER_CALL:
            leg_sid, request = args[0], args[1]
            asked = f"key={request['key']}" if request.get("key") else f"mode={request.get('mode') or 'campaign'}"
            return f"transfer leg={leg_sid} {asked}"
        if task_name == DIAL_CONTACT:
            attempt = args[2] if len(args) > 2 else 1
            return f"dial campaign={args[0]} contact={args[1]} attempt={attempt}"
    except (AttributeError, IndexError, KeyError, TypeError):
        pass  # not the shape we publish: show nothing rather than something unmasked
    return "(arguments hidden)"

"""``dialstream webhook ...``: webhook endpoints and dead letters, in the stack's Redis.

    dialstream webhook add URL [--campaign ID] [--events call.completed,...]   prints the secret once
    dialstream webhook list                                                  endpoints (no secrets)
    dialstream webhook remove ENDPOINT_ID
    dialstream webhook dead                                                  dead-lettered deliveries
    dialstream webhook replay [DELIVERY_ID...]                               all of them without ids
"""

from __future__ import annotations

import argparse
from typing import Any

import redis
from rich.console import Console

from dialstream.domain.webhooks import EVENT_TYPES
from dialstream.state.webhooks import Webhooks

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("webhook", help="webhook endpoints, dead letters and their replay")
    commands = parser.add_subparsers(dest="webhook_command", required=True)
    add = commands.add_parser("add", help="a new endpoint (the account's, or one campaign's); prints its secret once")
    add.add_argument("url")
    add.add_argument("--campaign", default="", help="one campaign's endpoint (default: every campaign's)")
    add.add_argument("--events", default="", help=f"comma-separated, any of {', '.join(EVENT_TYPES)} (default: all)")
    commands.add_parser("list", help="every endpoint")
    commands.add_parser("remove", help="remove an endpoint").add_argument("endpoint_id")
    commands.add_parser("dead", help="deliveries that failed every attempt")
    commands.add_parser("replay", help="send dead deliveries again").add_argument("delivery_ids", nargs="*")
    return parser


def run(args: argparse.Namespace, client: redis.Redis, console: Console) -> int:
    webhooks = Webhooks(client)
    command = args.webhook_command
    if command == "add":
        events = [e.strip() for e in args.events.split(",") if e.strip()]
        endpoint = webhooks.add_endpoint(args.url, campaign_id=args.campaign, events=events)
        console.print(f"endpoint {endpoint.id} for {endpoint.url}; its signing secret, shown this once:", highlight=False)
        console.print(endpoint.secret, highlight=False, soft_wrap=True)
    elif command == "list":
        for e in webhooks.endpoints():
            console.print(f"{e.id}  {e.url}  {e.campaign_id or '(every campaign)'}  {','.join(e.events)}", highlight=False, soft_wrap=True)
    elif command == "remove":
        webhooks.remove_endpoint(args.endpoint_id)
        console.print(f"endpoint {args.endpoint_id} removed", highlight=False)
    elif command == "dead":
        for d in webhooks.dead():
            url = d.endpoint.url if d.endpoint else "(removed endpoint)"
            console.print(f"{d.id}  {d.event_type}  {url}  {d.attempts} attempts, last: {d.last_error}", highlight=False, soft_wrap=True)
    else:
        replayed = webhooks.replay(args.delivery_ids or None)
        console.print(f"{replayed} delivery(ies) due again", highlight=False)
    return 0

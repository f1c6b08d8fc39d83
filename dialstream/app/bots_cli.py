"""``dialstream bots``: register, list and remove external bot fleets (a team's pipecat servers, a vendor).

Built-in bots register themselves with heartbeats; a fleet we did not write is registered
here once, by the bare URL Exotel should connect to (behind its own balancer), with its
capacity (concurrent streams) and the media formats it accepts (default: 16-bit PCM at
8 kHz, what pipecat's and Exotel's sample bots expect). Workers then pick it like any
other bot and ask Exotel for a format it accepts. Credentials never go in the URL: the
workers add DIALSTREAM_BOT_AUTH_USER/_PASSWORD when they send ``start_stream``.

Examples::

    dialstream bots add wss://pipecat.example.com/ws --capacity 200 --formats pcm16:8000,pcm16:16000
    dialstream bots list
    dialstream bots remove wss://pipecat.example.com/ws
"""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console

from dialstream.exotel.agentstream import EXTERNAL_BOT_FORMATS, parse_format
from dialstream.settings import Settings
from dialstream.state import fleet
from dialstream.state.client import connect_settings

__all__ = ["add_parser", "run", "parse_formats"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``bots`` to the CLI's subparsers (``argparse._SubParsersAction``)."""
    parser = subparsers.add_parser("bots", help="register, list and remove external bot fleets", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="bots_command", required=True)
    add = commands.add_parser("add", help="register (or update) an external bot fleet by its URL")
    add.add_argument("url", help="ws:// or wss:// URL Exotel connects to, without credentials")
    add.add_argument("--capacity", type=int, required=True, help="concurrent streams the fleet takes")
    add.add_argument(
        "--formats",
        default=",".join(EXTERNAL_BOT_FORMATS),
        help="accepted formats, comma-separated: ENCODING[:RATE] (pcm16, mulaw) or content types "
        "(default: %(default)s)",
    )
    commands.add_parser("list", help="every registered bot: URL, capacity, load, formats")
    remove = commands.add_parser("remove", help="stop sending streams to a bot fleet")
    remove.add_argument("url")
    return parser


def parse_formats(text: str) -> tuple[str, ...]:
    """``pcm16:8000,audio/x-mulaw;rate=8000`` -> content types in the Legs spelling, in order, once each.

    Raises:
        ValueError: an empty list, or a format AgentStream does not carry.
    """
    formats = [parse_format(part).to_content_type() for part in text.split(",") if part.strip()]
    if not formats:
        raise ValueError("no format given")
    return tuple(dict.fromkeys(formats))


def run(args: argparse.Namespace, settings: Settings, console: Console | None = None) -> int:
    """Run a parsed ``bots`` command; returns the exit status (2: bad input, nothing changed)."""
    console = console or Console()
    if not settings.redis_url:
        console.print("[red]dialstream bots needs REDIS_URL: the Redis your workers use[/]")
        return 2
    command = args.bots_command
    if command == "add":
        problem = _url_problem(args.url) or ("--capacity must be at least 1" if args.capacity < 1 else "")
        try:
            formats = parse_formats(args.formats)
        except ValueError as exc:
            problem = problem or f"--formats: {exc}"
        if problem:
            console.print(f"[red]{problem}[/]")
            return 2
    client = connect_settings(settings)
    try:
        if command == "add":
            fleet.register_external(client, args.url, capacity=args.capacity, formats=formats)
            console.print(f"registered {args.url}: capacity {args.capacity}, formats {', '.join(formats)}")
        elif command == "remove":
            if not fleet.deregister(client, args.url):
                console.print(f"[red]no bot registered as {args.url}[/]")
                return 1
            console.print(f"removed {args.url}")
        else:
            _list(fleet.live_bots(client), console)
        return 0
    finally:
        client.close()


def _url_problem(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        return f"{url!r}: expected a ws:// or wss:// URL"
    if parts.username is not None:
        return "the URL must not hold user:pass@ (it would be stored in Redis); set DIALSTREAM_BOT_AUTH_USER/_PASSWORD"
    return ""


def _list(bots: list[fleet.BotRecord], console: Console) -> None:
    # One line per bot, never wrapped: URLs and format lists are long, and scripts read this.
    if not bots:
        console.print("no bot registered")
    for bot in sorted(bots, key=lambda b: b.url):
        kind = "external" if bot.static else "heartbeat"
        load = "-" if bot.static else str(bot.load)
        formats = ",".join(bot.formats) or "any"
        console.print(f"{bot.url}  {kind}  capacity {bot.capacity}  load {load}  formats {formats}", soft_wrap=True, markup=False)

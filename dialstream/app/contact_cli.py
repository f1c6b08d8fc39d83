"""``dialstream contact erase NUMBER``: the right to erasure, from the shell.

Removes every trace of a number from every campaign (contacts and their variables, queued
dials, call records, results, rejected-row samples); do-not-call lists keep it so it stays
blocked (see ``dialstream.engine.erasure``). Talks to Redis like ``dialstream campaign``;
mistakes are one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.console import Console

from dialstream.engine.campaigns import CampaignEngine
from dialstream.settings import Settings
from dialstream.state.client import connect_settings

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``contact`` and its subcommands to the ``dialstream`` parser's subparsers."""
    parser = subparsers.add_parser("contact", help="what dialstream holds about one phone number")
    commands = parser.add_subparsers(dest="contact_command", required=True)
    erase = commands.add_parser("erase", help="erase every trace of a number from every campaign (it stays on DNC lists)")
    erase.add_argument("number", help="the phone number, in any format (national numbers: DIALSTREAM_DEFAULT_REGION)")
    return parser


def run(args: argparse.Namespace, settings: Settings, console: Console | None = None) -> int:
    """Run a parsed ``contact`` command (``settings.redis_url`` found by ``dialstream.app.cli``); returns the exit status."""
    console = console or Console()
    errors = Console(stderr=True, file=console.file if console.file is not sys.stdout else None)
    if not settings.redis_url:
        errors.print("dialstream contact: no stack found: run dialstream up here, or set REDIS_URL", highlight=False, soft_wrap=True)
        return 2
    client = connect_settings(settings)
    try:
        report = CampaignEngine(client, settings.account_sid, settings.engine).erase(args.number)
    except ValueError as exc:
        errors.print(f"dialstream contact: {exc}", highlight=False, soft_wrap=True)
        return 2
    finally:
        client.close()
    where = ", ".join(report.campaigns) or "no campaign"
    dnc = "; kept on the do-not-call list so it stays blocked" if report.on_dnc else ""
    console.print(
        f"{report.number} erased: {report.contacts} contact(s) in {where}, {report.legs} call record(s), "
        f"{report.rejected_rows} rejected row(s), {report.messages} webhook message(s){dnc}",
        highlight=False, soft_wrap=True,
    )  # fmt: skip
    return 0

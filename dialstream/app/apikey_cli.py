"""``dialstream apikey create|list|revoke``: the HTTP API's keys, kept in the stack's Redis.

    dialstream apikey create [--scope read|write] [--name NAME]   prints the key once
    dialstream apikey list                                       ids, scopes, names, revoked or not
    dialstream apikey revoke ID                                  at once, for every API process
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from typing import Any

import redis
from rich.console import Console
from rich.table import Table

from dialstream.state.api_keys import SCOPES, ApiKeys

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("apikey", help="create, list and revoke the HTTP API's keys")
    commands = parser.add_subparsers(dest="apikey_command", required=True)
    create = commands.add_parser("create", help="a new key, printed once (only its hash is kept)")
    create.add_argument("--scope", choices=SCOPES, default="read", help="read: every GET; write: everything (default %(default)s)")
    create.add_argument("--name", default="", help="what the key is for, for people")
    commands.add_parser("list", help="every key (never the keys themselves)")
    commands.add_parser("revoke", help="revoke a key at once").add_argument("key_id")
    return parser


def run(args: argparse.Namespace, client: redis.Redis, console: Console) -> int:
    keys = ApiKeys(client)
    if args.apikey_command == "create":
        key, token = keys.create(args.scope, name=args.name)
        console.print(f"API key {key.id} ({key.scope}) created; it is shown this once:", highlight=False)
        console.print(token, highlight=False, soft_wrap=True)
        return 0
    if args.apikey_command == "revoke":
        key = keys.revoke(args.key_id)
        console.print(f"API key {key.id} revoked", highlight=False)
        return 0
    table = Table("id", "scope", "name", "created", "revoked")
    for key in keys.all():
        table.add_row(key.id, key.scope, key.name, _when(key.created_at), _when(key.revoked_at) if key.revoked_at else "")
    console.print(table)
    return 0


def _when(moment: float | None) -> str:
    return datetime.fromtimestamp(moment or 0, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")

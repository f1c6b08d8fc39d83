"""``dialstream campaign ...``: submit, steer, watch and report campaigns from the shell.

    dialstream campaign submit FILE [--name N] [--id ID] [--flow F] [--greeting TEXT|URL]
                               [--bot-url URL] [--max-concurrent N] [--window W] [--retries R]
                               [--variables a,b,c] [--phone-column C] [--region R] [--paused]
                               [--rejects PATH] and one flag per other campaign setting:
                               calls (--ring-timeout, --time-limit, --exophones, --record),
                               the bot stream (--stream-start-timeout, --stream-attempts,
                               --content-type, --stream-direction, --hold-message,
                               --fallback-message), answering machines (--amd, --amd-action,
                               --voicemail-message), hand-off to a human (--agents,
                               --transfer-mode, --agent-ring-timeout, --transfer-fallback,
                               --transfer-key, --whisper-message)
    dialstream campaign status ID [--once] [--json]     live progress on a terminal
    dialstream campaign list
    dialstream campaign pause|resume|cancel ID
    dialstream campaign purge ID                        delete every trace of a finished campaign
    dialstream campaign report ID [--csv PATH] [--json PATH]   CSV on stdout without either
    dialstream campaign dnc add|remove NUMBER... [--campaign ID]
    dialstream campaign dnc load FILE [--campaign ID]

ID is a campaign's id, its name, or the start of its id. Every command talks to the Redis
the workers use: ``REDIS_URL``, else the stack a ``dialstream up`` runs in this directory
(``dialstream.app.run_state``), else the data an earlier ``up`` left in ``DIALSTREAM_DATA_DIR``
(``dialstream.app.embedded_redis.redis_for_cli``). With ``--api URL`` (or ``DIALSTREAM_API_URL``) and
``DIALSTREAM_API_KEY`` it drives a remote stack through its HTTP API instead
(``dialstream.app.remote``). The account's limits come from the ``DIALSTREAM_*`` variables of
:class:`~dialstream.settings.EngineConfig`. Mistakes (a missing file, an unknown campaign, a
bad number) are one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import redis
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from dialstream.app.remote import RemoteEngine
from dialstream.domain import spreadsheet
from dialstream.domain.campaign import CampaignConfig, Flow
from dialstream.domain.contacts import RejectedRow
from dialstream.domain.redial import parse_redials
from dialstream.domain.windows import SAFE_HOURS
from dialstream.engine.campaigns import CampaignEngine, CampaignStatus, new_campaign_id, write_report_csv
from dialstream.errors import ConfigurationError
from dialstream.settings import Settings
from dialstream.state.client import connect_settings

__all__ = ["add_parser", "run", "parse_retries"]

REFRESH = 0.5  # seconds between redraws of a live status
_SHOWN_REJECTS = 20  # rejected rows printed by submit; --rejects writes them all


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``campaign`` and its subcommands to the ``dialstream`` parser's subparsers."""
    parser = subparsers.add_parser("campaign", help="submit, control, watch and report campaigns")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--api", default=None, metavar="URL", help="drive the stack behind this HTTP API (key: DIALSTREAM_API_KEY)")
    commands = _Commands(parser.add_subparsers(dest="campaign_command", required=True), common)

    submit = commands.add_parser("submit", help="submit a CSV or JSON-lines batch as a new campaign")
    submit.add_argument("file", type=Path, help="contacts: a phone column, every other column a per-row variable")
    submit.add_argument("--name", default="", help="a name for people (default: the file's name)")
    submit.add_argument("--id", default="", help="campaign id (default: from the name, made unique)")
    submit.add_argument("--flow", choices=[f.value for f in Flow], default=Flow.GREETING_SAY.value)
    submit.add_argument("--greeting", default="", help="greeting_say: the text (default 'Hello!'); greeting_play: the audio URL")
    submit.add_argument("--bot-url", default="", help="bot WebSocket URL (default: a live bot of the fleet)")
    submit.add_argument("--max-concurrent", type=int, default=0, help="live calls of this campaign at once (0: no campaign cap)")
    submit.add_argument(
        "--window", default=SAFE_HOURS,
        help="calling window in the callee's local time, e.g. 'mon-sat 09:00-20:00'; 'any' for any time (default: %(default)s, the TRAI/TCPA hours)",
    )  # fmt: skip
    submit.add_argument(
        "--retries", default="default", type=parse_retries,
        help="redials per outcome: 'busy=3/5m,no_answer=2/30m,failed=none' (dials in all / delay), "
        "'default' (busy 3/5m, no_answer 3/30m, failed 2/10m, machine 2/1h) or 'none'",
    )  # fmt: skip
    submit.add_argument("--variables", default="", help="variables sent to the bot on its stream URL, in order (default: the first that fit)")
    submit.add_argument("--phone-column", default=None, help="the phone column's header (default: phone, number, mobile...)")
    submit.add_argument("--format", choices=["csv", "jsonl"], default=None, help="default: from the file's suffix")
    submit.add_argument("--region", default="", help="region of numbers without a country code (default: DIALSTREAM_DEFAULT_REGION)")
    submit.add_argument("--paused", action="store_true", help="load the campaign but do not start dialing")
    submit.add_argument("--rejects", type=Path, help="also write every rejected row here (CSV)")
    _add_call_settings(submit)

    status = commands.add_parser("status", help="a campaign's progress (live on a terminal)")
    status.add_argument("campaign_id")
    status.add_argument("--once", action="store_true", help="print the status once, even on a terminal")
    status.add_argument("--json", action="store_true", help="print the status once as JSON")

    commands.add_parser("list", help="every campaign and where it is")
    for name, help_text in (
        ("pause", "stop new dials (calls in progress finish)"),
        ("resume", "dial again"),
        ("cancel", "stop for good: waiting contacts are recorded canceled, calls in progress finish"),
        ("purge", "delete every trace of a done or canceled campaign: contacts, results, rejects, legs"),
    ):
        commands.add_parser(name, help=help_text).add_argument("campaign_id")

    report = commands.add_parser("report", help="one row per contact: attempts, final outcome, timings, error")
    report.add_argument("campaign_id")
    report.add_argument("--csv", type=Path, help="write the rows as CSV here")
    report.add_argument("--json", type=Path, help="write the status and the rows as JSON here")

    dnc = commands.add_parser("dnc", help="the do-not-call list (checked at upload and before every dial)")
    dnc.add_argument("dnc_command", choices=["add", "remove", "load", "count"])
    dnc.add_argument("values", nargs="*", help="numbers (add, remove) or one file, a number per line (load)")
    dnc.add_argument("--campaign", default="", help="one campaign's list instead of the account's")
    return parser


class _Commands:
    """The subcommands' adder, giving each the common options (``--api``)."""

    def __init__(self, subparsers: Any, common: argparse.ArgumentParser) -> None:
        self.subparsers, self.common = subparsers, common

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return self.subparsers.add_parser(name, parents=[self.common], **kwargs)


def _add_call_settings(submit: argparse.ArgumentParser) -> None:
    """One flag per CampaignConfig setting of the calls themselves; defaults are the config's."""
    d = CampaignConfig("defaults")
    calls = submit.add_argument_group("calls")
    calls.add_argument("--ring-timeout", type=int, default=d.ring_timeout, help="seconds to let a number ring (default: %(default)s)")
    calls.add_argument("--time-limit", type=int, default=d.time_limit, help="longest call in seconds, at most 14400 (default: %(default)s)")
    calls.add_argument("--exophones", type=_numbers, default=(), help="caller IDs of this campaign, comma-separated (default: the account's pool)")
    calls.add_argument("--record", action=argparse.BooleanOptionalAction, default=d.record, help="ask Exotel to record the calls")
    stream = submit.add_argument_group("bot stream")
    stream.add_argument("--stream-start-timeout", type=float, default=d.stream_start_timeout, help="seconds to wait for a bot's stream before trying another (default: %(default)s)")
    stream.add_argument("--stream-attempts", type=int, default=d.max_stream_attempts, help="bots tried per call before the fallback message (default: %(default)s)")
    stream.add_argument("--content-type", default=d.stream_content_type, help="the stream's audio (default: %(default)s)")
    stream.add_argument("--stream-direction", choices=["bidirectional", "unidirectional"], default=d.stream_direction)
    stream.add_argument("--hold-message", default=d.hold_message, help="said while a call waits (a bot, an agent) (default: %(default)r)")
    stream.add_argument("--fallback-message", default=d.fallback_message, help="said before hanging up when no bot or agent could take the call")
    amd = submit.add_argument_group("answering machines")
    amd.add_argument("--amd", choices=["off", "on", "async"], default="off",
                     help="answering-machine detection: off, on, or async (humans get the greeting and bot at once) (default: off)")
    amd.add_argument("--amd-action", choices=["hangup", "voicemail"], default=None, help="on a machine (default: voicemail with --voicemail-message, else hangup)")
    amd.add_argument("--voicemail-message", default="", help="left on a machine after the beep (needs --amd on or async)")
    transfer = submit.add_argument_group("hand-off to a human")
    transfer.add_argument("--agents", type=_numbers, default=(), help="agent numbers for transfers, comma-separated, taken round-robin")
    transfer.add_argument("--transfer-mode", choices=["cold", "warm"], default=d.transfer_mode, help="warm: the agent hears a whisper first (default: %(default)s)")
    transfer.add_argument("--agent-ring-timeout", type=int, default=d.agent_ring_timeout, help="seconds to let an agent ring (default: %(default)s)")
    transfer.add_argument("--transfer-fallback", choices=["bot", "message"], default=d.transfer_fallback, help="when no agent answers: back to the bot, or the fallback message (default: %(default)s)")
    transfer.add_argument("--transfer-key", default="", help="a DTMF key that asks for an agent at any time")
    transfer.add_argument("--whisper-message", default="", help="warm transfers: said to the agent first (default: the bot's summary)")  # fmt: skip


def _numbers(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _call_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The CampaignConfig fields the call-settings flags give."""
    if args.voicemail_message and args.amd == "off":
        raise ConfigurationError("--voicemail-message needs --amd on or --amd async")
    return {
        "ring_timeout": args.ring_timeout,
        "time_limit": args.time_limit,
        "exophones": args.exophones,
        "record": args.record,
        "stream_start_timeout": args.stream_start_timeout,
        "max_stream_attempts": args.stream_attempts,
        "stream_content_type": args.content_type,
        "stream_direction": args.stream_direction,
        "hold_message": args.hold_message,
        "fallback_message": args.fallback_message,
        "amd_enable": args.amd != "off",
        "async_amd": args.amd == "async",
        "amd_action": args.amd_action or ("voicemail" if args.voicemail_message else "hangup"),
        "voicemail_message": args.voicemail_message,
        "agents": args.agents,
        "transfer_mode": args.transfer_mode,
        "agent_ring_timeout": args.agent_ring_timeout,
        "transfer_fallback": args.transfer_fallback,
        "transfer_key": args.transfer_key,
        "whisper_message": args.whisper_message,
    }


def run(args: argparse.Namespace, settings: Settings, console: Console | None = None) -> int:
    """Run a parsed ``campaign`` command; returns the exit status."""
    console = console or Console()
    errors = Console(stderr=True, file=console.file if console.file is not sys.stdout else None)
    api_url = args.api or settings.api_url
    if not (api_url or settings.redis_url):
        errors.print("dialstream campaign: no stack found: run dialstream up here, or set REDIS_URL (or --api URL)", highlight=False, soft_wrap=True)
        return 2
    client = None if api_url else connect_settings(settings)
    engine: CampaignEngine | RemoteEngine | None = None
    try:
        engine = RemoteEngine(api_url, settings.api_client_key) if api_url else CampaignEngine(client, settings.account_sid, settings.engine)
        command = args.campaign_command
        if getattr(args, "campaign_id", None):
            args.campaign_id = engine.resolve(args.campaign_id)
        if command == "submit":
            return _submit(engine, args, console)
        if command == "dnc":
            return _dnc(engine, args, console)
        if command == "list":
            return _list(engine, console)
        if command == "status":
            return _status(engine, args, console)
        if command == "report":
            return _report(engine, args, console)
        if command == "purge":
            purged = engine.purge(args.campaign_id)
            console.print(f"campaign {args.campaign_id} purged: {purged.keys} key(s) deleted ({purged.legs} call record(s))")
            return 0
        if command == "cancel":
            canceled = engine.cancel(args.campaign_id)
            console.print(f"campaign {args.campaign_id} canceled: {canceled} contact(s) recorded canceled; calls in progress finish")
            return 0
        state = engine.pause(args.campaign_id) if command == "pause" else engine.resume(args.campaign_id)
        console.print(f"campaign {args.campaign_id} is {state.value}")
        return 0
    except KeyError as exc:
        errors.print(f"dialstream campaign: {exc.args[0]}", highlight=False, soft_wrap=True)
        return 1
    except (ValueError, ConfigurationError) as exc:
        errors.print(f"dialstream campaign: {exc}", highlight=False, soft_wrap=True)
        return 2
    except OSError as exc:  # a file that is not there or not readable
        errors.print(f"dialstream campaign: cannot read {exc.filename}: {exc.strerror}" if exc.filename else f"dialstream campaign: {exc}", highlight=False, soft_wrap=True)
        return 2
    except redis.RedisError as exc:
        errors.print(f"dialstream campaign: the stack's Redis does not answer: {exc}", highlight=False, soft_wrap=True)
        return 2
    finally:
        if client is not None:
            client.close()
        if isinstance(engine, RemoteEngine):
            engine.close()


def parse_retries(text: str) -> dict[str, Any] | None:
    """``--retries``: :func:`dialstream.domain.redial.parse_redials`, an argparse type."""
    try:
        return parse_redials(text)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _submit(engine: CampaignEngine, args: argparse.Namespace, console: Console) -> int:
    name = args.name or args.file.stem
    campaign_id = args.id or new_campaign_id(name)
    flow = Flow(args.flow)
    config = CampaignConfig(
        campaign_id=campaign_id,
        name=name,
        flow=flow,
        greeting_text=(args.greeting or "Hello!") if flow is Flow.GREETING_SAY else "Hello!",
        greeting_url=args.greeting if flow is Flow.GREETING_PLAY else "",
        bot_url=args.bot_url,
        max_concurrent=args.max_concurrent,
        window=args.window,
        retries=args.retries,
        stream_variables=tuple(v.strip() for v in args.variables.split(",") if v.strip()),
        **_call_settings(args),
    )
    rejects_file = args.rejects.open("w", newline="", encoding="utf-8") if args.rejects else None
    rejects = spreadsheet.writer(rejects_file) if rejects_file else None
    shown = 0

    def rejected(row: RejectedRow) -> None:
        nonlocal shown
        if shown < _SHOWN_REJECTS:
            console.print(f"[yellow]line {row.line_no}[/] rejected ({row.code.value}): {row.reason}", highlight=False)
        shown += 1
        if rejects is not None:
            rejects.writerow([row.line_no, row.code.value, row.reason, row.raw])

    try:
        if rejects is not None:
            rejects.writerow(["line", "code", "reason", "row"])
        options: dict[str, Any] = {"phone_column": args.phone_column, "fmt": args.format, "paused": args.paused, "on_rejected": rejected}
        if args.region:
            options["region"] = args.region
        report = engine.submit_file(config, args.file, **options)
    finally:
        if rejects_file is not None:
            rejects_file.close()
    if shown > _SHOWN_REJECTS:
        where = f"all in {args.rejects}" if args.rejects else "the report keeps the first DIALSTREAM_REJECTS_KEPT, --rejects FILE writes all"
        console.print(f"... and {shown - _SHOWN_REJECTS} more rejected row(s): {where}")
    codes = ", ".join(f"{code} {n}" for code, n in sorted(report.rejected_by_code.items())) or "none"
    console.print(
        f"campaign [bold]{campaign_id}[/] {report.state.value}: {report.accepted} contact(s) accepted, "
        f"{report.rejected} rejected ({codes}); {report.rows_per_s:,.0f} rows/s"
    )
    return 0


def _status(engine: CampaignEngine, args: argparse.Namespace, console: Console) -> int:
    status = engine.status(args.campaign_id)
    if args.json:
        console.print_json(json.dumps(status.to_dict()))
        return 0
    if args.once or not console.is_terminal or status.finished:
        console.print(render_status(status))
        return 0
    with Live(render_status(status), console=console, refresh_per_second=4) as live:
        try:
            while not status.finished:
                time.sleep(REFRESH)
                status = engine.status(args.campaign_id)
                live.update(render_status(status))
        except KeyboardInterrupt:
            pass  # watching stops; the campaign does not
    return 0


def render_status(status: CampaignStatus) -> Group:
    """What ``status`` shows: a progress bar, counts per state, calls in flight, rate, budget."""
    share = f"{status.done}/{status.total}" + (f" ({status.done / status.total:.0%})" if status.total else "")
    head = Text.assemble((f"campaign {status.campaign_id}", "bold"), f" {status.name} ".rstrip() + " ", (status.state.value, "cyan"))
    bar = Table.grid(padding=(0, 1))
    bar.add_row(ProgressBar(total=max(status.total, 1), completed=status.done, width=50), Text(share))
    counts = (
        f"pending {status.pending} (due now {status.due_now}) · dialing {status.dialing} · in flight {status.in_flight} · "
        f"done {status.done} · rejected {status.rejected}"
    )
    outcomes = ", ".join(f"{name} {n}" for name, n in sorted(status.outcomes.items())) or "-"
    rate = (
        f"{status.dials} dial(s), {status.dials_last_minute:g} in the last minute · "
        f"API {status.api_used}/{status.api_limit} in the window · 429s {status.throttled}"
    )
    waiting = [Text(f"waiting: {reason}", style="yellow") for reason in status.waiting_for]
    if status.dispositions:
        waiting.insert(0, Text("dispositions: " + ", ".join(f"{code} {n}" for code, n in sorted(status.dispositions.items()))))
    if status.windows_closed:
        closed = ", ".join(f"{zone} until {opens}" for zone, opens in status.windows_closed.items())
        waiting.append(Text(f"waiting for the calling window {status.window}: {closed}", style="yellow"))
    return Group(head, bar, Text(counts), Text(f"outcomes: {outcomes}"), Text(rate), *waiting)


def _list(engine: CampaignEngine | RemoteEngine, console: Console) -> int:
    """One line per campaign, ids whole whatever the terminal's width (they are what commands take)."""
    rows = [("campaign", "name", "state", "done", "total", "pending", "in flight")]
    rows += [(s.campaign_id, s.name, s.state.value, str(s.done), str(s.total), str(s.pending), str(s.in_flight)) for s in engine.statuses()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        console.print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip(), highlight=False, soft_wrap=True)
    return 0


def _report(engine: CampaignEngine, args: argparse.Namespace, console: Console) -> int:
    status = engine.status(args.campaign_id)
    rows = list(engine.report(args.campaign_id))
    if args.json:
        args.json.write_text(json.dumps({"campaign": status.to_dict(), "contacts": rows}, indent=1))
    if args.csv:
        with args.csv.open("w", newline="", encoding="utf-8") as handle:
            write_report_csv(rows, handle)
    if not (args.csv or args.json):
        write_report_csv(rows, sys.stdout)
    else:
        console.print(f"{len(rows)} row(s) written: " + ", ".join(str(p) for p in (args.csv, args.json) if p))
    return 0


def _dnc(engine: CampaignEngine, args: argparse.Namespace, console: Console) -> int:
    campaign = args.campaign or None
    where = f"campaign {campaign}'s" if campaign else "the account's"
    if args.dnc_command == "count":
        console.print(f"{engine.dnc.count(campaign)} number(s) on {where} DNC list")
    elif args.dnc_command == "load":
        if len(args.values) != 1:
            raise ValueError("dnc load takes one file")
        loaded = engine.dnc.load(args.values[0], campaign)
        for line_no, text, reason in loaded.skipped:
            console.print(f"[yellow]line {line_no}[/] skipped: {reason}: {text}", highlight=False)
        console.print(f"{loaded.added} new number(s) on {where} DNC list ({loaded.read} read)")
    elif args.dnc_command == "add":
        console.print(f"{engine.dnc.add(args.values, campaign)} new number(s) on {where} DNC list")
    else:
        console.print(f"{engine.dnc.remove(args.values, campaign)} number(s) taken off {where} DNC list")
    return 0

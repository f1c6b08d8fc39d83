"""``dialstream demo``: the whole path for a small campaign, on nothing but this machine.

Starts an embedded Valkey (unless ``REDIS_URL``), the Exotel sandbox, the gRPC ingress,
one Celery worker per queue and a bot; runs a campaign of simulated contacts; prints one
line per call and a summary; stops everything it started. Exits 1 if any call broke an
invariant (see ``dialstream.domain.report``).
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import sim
from dialstream.app.embedded_redis import EmbeddedRedis
from dialstream.app.stack import StackConfig, start_stack
from dialstream.app.supervisor import ProcessFailed, Supervisor
from dialstream.domain.campaign import CampaignConfig, Contact, Flow
from dialstream.domain.report import CampaignReport, build_report, mask_phone
from dialstream.domain.windows import ANY_TIME
from dialstream.engine.submit import submit_contacts
from dialstream.settings import Settings
from dialstream.state.call_outcomes import CallOutcomes
from dialstream.state.client import connect_settings
from dialstream.state.store import Store

__all__ = ["DemoOptions", "run_demo", "demo_contacts", "fetch_timelines", "wait_for_campaign", "streamless_calls"]


@dataclass(frozen=True)
class DemoOptions:
    contacts: int = 20
    flow: Flow = Flow.GREETING_SAY
    greeting: str = "Hello!"
    timeout: float = 150.0
    json_out: Path | None = None
    scenario: Path | None = None
    seed: int = 7


def demo_contacts(count: int) -> list[Contact]:
    """Simulated Indian mobile numbers, valid E.164."""
    return [Contact(f"c{i:04d}", f"+9198{i:08d}", {"name": f"Customer {i}"}) for i in range(1, count + 1)]


def default_scenario() -> Path | None:
    path = Path(sim.__file__).with_name("scenarios") / "demo.yaml"
    return path if path.is_file() else None


def run_demo(options: DemoOptions, settings: Settings, console: Console | None = None) -> int:
    console = console or Console()
    started = time.monotonic()
    with ExitStack() as cleanup:
        if not settings.redis_url:
            server = cleanup.enter_context(EmbeddedRedis())
            settings = settings.replace(redis_url=server.url)
            console.print(f"[dim]embedded Valkey at {server.url}[/]")
        log_dir = Path(tempfile.mkdtemp(prefix="dialstream-demo-"))
        supervisor = cleanup.enter_context(Supervisor(log_dir))
        with console.status("starting sandbox, ingress, workers and bot..."):
            try:
                stack = start_stack(supervisor, settings, StackConfig(scenario=options.scenario or default_scenario(), seed=options.seed))
            except ProcessFailed as exc:
                console.print(f"[red]a component failed to start:[/] {exc}")
                return 2
        console.print(
            f"[dim]sandbox {stack.sandbox_url} · ingress grpc://127.0.0.1:{stack.ingress_port} · "
            f"bot {', '.join(stack.bot_urls)} · logs {log_dir}[/]"
        )
        client = connect_settings(stack.settings)
        cleanup.callback(client.close)
        store = Store(client)
        campaign = CampaignConfig(
            campaign_id=f"demo-{uuid.uuid4().hex[:8]}", name="demo", flow=options.flow, greeting_text=options.greeting,
            greeting_url="https://example.com/greeting.wav" if options.flow is Flow.GREETING_PLAY else "",
            window=ANY_TIME,  # the sandbox's callees take calls at any hour
        )  # fmt: skip
        contacts = demo_contacts(options.contacts)
        submit_contacts(store, campaign, contacts)
        done = wait_for_campaign(store, campaign.campaign_id, len(contacts), options.timeout, console, supervisor)
        results = store.results(campaign.campaign_id)
        told = CallOutcomes(client).of_legs(r.get("leg_sid", "") for r in results.values())
        report = build_report(
            campaign.campaign_id,
            campaign.flow.value,
            [c.contact_id for c in contacts],
            results,
            fetch_timelines(stack.sandbox_url),
            {sid: t["disposition"] for sid, t in told.items() if t["disposition"]},
        )
        print_report(report, console)
        if options.json_out:
            options.json_out.write_text(json.dumps(report.to_dict(), indent=2))
            console.print(f"[dim]report written to {options.json_out}[/]")
        if not done:
            console.print(f"[red]timed out after {options.timeout:.0f}s waiting for every call to end[/]")
        streamless = streamless_calls(report)
        if streamless:
            console.print(f"[red]{streamless}[/]")
    console.print(f"[dim]all processes stopped; {time.monotonic() - started:.1f}s in all[/]")
    return 0 if done and report.ok and not streamless else 1


def streamless_calls(report: CampaignReport) -> str:
    """One line if answered calls ended without a bot stream (empty if none did), naming
    the first reason: a bot the sandbox cannot reach, or one that refuses its credentials."""
    rows = [row for row in report.rows if row.outcome == "answered_no_stream"]
    if not rows:
        return ""
    answered = sum(1 for row in report.rows if row.outcome.startswith("answered"))
    why = "; ".join(rows[0].errors) or rows[0].reason or "no reason recorded"
    return (
        f"{len(rows)} of {answered} answered calls got no bot stream (first: {why}); "
        "check the bot URLs and DIALSTREAM_BOT_AUTH_USER/_PASSWORD"
    )


def wait_for_campaign(
    store: Store, campaign_id: str, total: int, timeout: float, console: Console, supervisor: Supervisor | None = None
) -> bool:
    """Show progress until every contact has a final record; False on timeout."""
    deadline = time.monotonic() + timeout
    columns = (TextColumn("calls"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task("calls", total=total)
        while True:
            done, _ = store.progress(campaign_id)
            progress.update(bar, completed=done)
            if done >= total:
                return True
            if time.monotonic() > deadline:
                return False
            if supervisor is not None:
                supervisor.check_alive()
            time.sleep(0.1)


def fetch_timelines(sandbox_url: str) -> dict[str, dict[str, Any]]:
    """The sandbox's per-leg timelines, keyed by leg_sid (empty without a sandbox)."""
    if not sandbox_url:
        return {}
    response = httpx.get(f"{sandbox_url}/sim/v1/calls", timeout=10)
    response.raise_for_status()
    body = response.json()
    calls = body.get("calls", []) if isinstance(body, dict) else body
    return {call["leg_sid"]: call for call in calls}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def print_report(report: CampaignReport, console: Console) -> None:
    table = Table(title=f"campaign {report.campaign_id} ({report.flow})")
    for column in ("number", "outcome", "answered→stream_started ms", "answered→first audio ms", "streams", "note"):
        table.add_column(column, justify="right" if "ms" in column or column == "streams" else "left")
    for row in report.rows:
        note = "; ".join(row.problems) or row.reason or "; ".join(row.errors)
        style = "red" if row.problems else None
        table.add_row(
            mask_phone(row.phone), row.outcome, _ms(row.answered_to_stream_ms), _ms(row.answered_to_first_audio_ms),
            "-" if row.streams is None else str(row.streams), note, style=style,
        )  # fmt: skip
    console.print(table)
    outcomes = ", ".join(f"{name} {count}" for name, count in sorted(report.outcomes.items()))
    console.print(f"[bold]summary[/]: {len(report.rows)} calls: {outcomes}")
    if report.dispositions:
        console.print("  dispositions: " + ", ".join(f"{code} {n}" for code, n in sorted(report.dispositions.items())))
    for name, label in (
        ("answered_to_stream_ms", "answered→stream_started"),
        ("answered_to_first_audio_ms", "answered→first audio"),
        ("dead_air_ms", "dead air"),
    ):
        stats = report.figures.get(name, {})
        if stats.get("count"):
            console.print(f"  {label}: p50 {_ms(stats['p50'])} ms, p95 {_ms(stats['p95'])} ms, max {_ms(stats['max'])} ms")
    if report.ok:
        console.print("[green]every answered call got exactly one bot stream; no greeting left playing[/]")
    else:
        console.print(f"[red]{len(report.problems)} problem(s):[/]")
        for problem in report.problems:
            console.print(f"  [red]- {problem}[/]")

"""Every Redis key dialstream uses, named in one place.

All keys start with one prefix (``ds``), so one pattern finds, evicts or ACLs them all.
Modules that keep a concept in Redis build its keys here and nowhere else; a ``prefix``
argument keeps a test's or a second deployment's keys apart in one Redis.

Key layout::

    ds:event:{event_sid}                  ingress de-duplication marker (TTL)
    ds:leg:{leg_sid}                      hash {version, doc}: the LegRecord as JSON; {stream_vars}:
                                          the contact variables for the bot's stream URL
    ds:leg:{leg_sid}:events               set of event_sids applied to the leg
    ds:leg:{leg_sid}:sent                 set of action ids of the outbox already handed to Celery
    ds:leg:{leg_sid}:bots                 set of bot URLs already tried for the leg's stream
    ds:leg:{leg_sid}:disposition          the disposition its bot set, JSON (state.call_outcomes)
    ds:leg:{leg_sid}:callback             the callback its callee asked for, JSON (state.call_outcomes)
    ds:action:{leg_sid}:{action_id}       claim of one leg action by one Celery task id
    ds:campaigns                          set of campaign ids
    ds:campaigns:running                  set of the campaigns the dial pollers serve
    ds:campaign:{id}                      hash {config, state, total, created_at, {state}_at,
                                          last_error, last_error_at (the latest failed dial)}
    ds:campaign:{id}:contacts             hash contact_id -> Contact JSON
    ds:campaign:{id}:due|leased|leases    the campaign's dial queue (state.dial_queue)
    ds:campaign:{id}:legs                 hash contact_id -> leg_sid of its latest call
    ds:campaign:{id}:results              hash contact_id -> latest call record JSON
    ds:campaign:{id}:done                 set of contact_ids with a final record
    ds:campaign:{id}:counts               hash: dials, outcome:{outcome}, rejected, rejected:{code},
                                          disposition:{code} (calls whose last disposition it is)
    ds:campaign:{id}:rejected             hash line number -> rejected row JSON
    ds:campaign:{id}:zones                hash time zone -> contacts called in it (their windows)
    ds:campaign:{id}:dials:{minute}       dials placed in one minute (TTL): the dial rate
    ds:campaign:{id}:agent_turn           counter: whose turn it is among the agents (transfers)
    ds:pacing:{account}:grants|awaiting|throttled    the Legs API budget (state.pacing)
    ds:slots:{account}:calls|streams|holders         concurrency slots (state.slots)
    ds:slots:{account}:campaign:{id}                 one campaign's call slots
    ds:dnc:{account}[:campaign:{id}]      do-not-call numbers, account-wide or per campaign
    ds:timers                             leg, event and slot timers (state.timers)
    ds:dialer:leader                      lock held by the one dial poller that serves campaigns
    ds:bots, ds:bot:{url}                 the bot fleet (state.fleet)
    ds:apikeys, ds:apikeys:sha256         the HTTP API's keys, by id and by the hash of the token (state.api_keys)
    ds:wh:endpoint:{id}, ds:wh:endpoints[:account|:campaign:{id}]   webhook endpoints (state.webhooks)
    ds:wh:msg:{msg_id}, ds:wh:delivery:{msg_id}.{endpoint}         webhook messages and deliveries
    ds:wh:due, ds:wh:dead                 deliveries to (re)send, by when; dead-lettered ones
    ds:exophone:{number}:calls:{day}      calls from one exophone on one day (state.caller_ids)
    ds:secret:{name}                      a secret the deployment's processes share (state.secrets)
"""

from __future__ import annotations

__all__ = [
    "PREFIX",
    "event",
    "leg",
    "LEG_PARTS",
    "action",
    "campaigns",
    "running_campaigns",
    "campaign",
    "agent_turn",
    "pacing",
    "slots",
    "dnc",
    "timers",
    "dialer_leader",
    "bots",
    "bot",
    "secret",
    "api_keys",
    "webhook",
    "exophone_calls",
]

PREFIX = "ds"
# A leg's keys besides its hash (see the layout): what erasing a leg deletes with it.
LEG_PARTS = ("events", "sent", "bots", "disposition", "callback")


# Legs and their events


def event(event_sid: str, prefix: str = PREFIX) -> str:
    return f"{prefix}:event:{event_sid}"


def leg(leg_sid: str, part: str = "", prefix: str = PREFIX) -> str:
    """The leg's hash, or with ``part`` (one of :data:`LEG_PARTS`) one of its sets and documents."""
    return f"{prefix}:leg:{leg_sid}" + (f":{part}" if part else "")


def action(leg_sid: str, action_id: str, prefix: str = PREFIX) -> str:
    return f"{prefix}:action:{leg_sid}:{action_id}"


# Campaigns


def campaigns(prefix: str = PREFIX) -> str:
    return f"{prefix}:campaigns"


def running_campaigns(prefix: str = PREFIX) -> str:
    return f"{prefix}:campaigns:running"


def campaign(campaign_id: str, part: str = "", prefix: str = PREFIX) -> str:
    """The campaign's hash, or with ``part`` one of its keys (``contacts``, ``due``, ``dials:{minute}`` ...)."""
    return f"{prefix}:campaign:{campaign_id}" + (f":{part}" if part else "")


def agent_turn(campaign_id: str, prefix: str = PREFIX) -> str:
    """The campaign's transfers so far: taken modulo its agents, the next one's turn."""
    return campaign(campaign_id, "agent_turn", prefix)


# The account's shared limits


def pacing(account: str, part: str, prefix: str = PREFIX) -> str:
    """``part``: grants | awaiting | throttled."""
    return f"{prefix}:pacing:{account}:{part}"


def slots(account: str, part: str, prefix: str = PREFIX) -> str:
    """``part``: calls | streams | holders | ``campaign:`` (the prefix of the per-campaign sets)."""
    return f"{prefix}:slots:{account}:{part}"


def dnc(account: str, campaign_id: str | None = None, prefix: str = PREFIX) -> str:
    return f"{prefix}:dnc:{account}" + (f":campaign:{campaign_id}" if campaign_id else "")


# Timers, leadership, the bot fleet


def timers(prefix: str = PREFIX) -> str:
    return f"{prefix}:timers"


def dialer_leader(prefix: str = PREFIX) -> str:
    return f"{prefix}:dialer:leader"


def dials_held(prefix: str = PREFIX) -> str:
    """How many leg events wait while the dial poller holds every new dial back (short-lived)."""
    return f"{prefix}:dialer:held"


def bots(prefix: str = PREFIX) -> str:
    return f"{prefix}:bots"


def bot(url: str, prefix: str = PREFIX) -> str:
    return f"{prefix}:bot:{url}"


def secret(name: str, prefix: str = PREFIX) -> str:
    return f"{prefix}:secret:{name}"


# The HTTP API's keys and the webhooks


def api_keys(part: str = "", prefix: str = PREFIX) -> str:
    """The keys by id, or with ``part`` ``sha256`` the index by the token's hash."""
    return f"{prefix}:apikeys" + (f":{part}" if part else "")


def webhook(part: str, prefix: str = PREFIX) -> str:
    """``part``: ``endpoint:{id}``, ``endpoints``, ``endpoints:account``, ``endpoints:campaign:{id}``,
    ``msg:{msg_id}``, ``delivery:{id}``, ``due``, ``dead``."""
    return f"{prefix}:wh:{part}"


# Caller IDs


def exophone_calls(exophone: str, day: str, prefix: str = PREFIX) -> str:
    """Calls placed from ``exophone`` on ``day`` (YYYY-MM-DD at the exophone's home)."""
    return f"{prefix}:exophone:{exophone}:calls:{day}"

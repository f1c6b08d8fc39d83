"""AgentStream bots: the WebSocket server Exotel streams calls to, and the bot API.

Modules:

* :mod:`bot.api` - :class:`Bot`, :class:`Session`, :class:`CallInfo`: what a bot author writes against.
* :mod:`bot.tts` - the :class:`TTS` adapter interface and the offline built-in.
* :mod:`bot.bots`, :mod:`bot.scripted` - the built-in ``echo``, ``greeter`` and ``scripted`` bots.
* :mod:`bot.server` - :class:`~bot.server.BotServer`: lifecycle, admission, idle sweep.
* :mod:`bot.stream` - one connection's receive loop and sending; :mod:`bot.session` - the
  bot's :class:`Session` of it; :mod:`bot.clock` - the process's one pacing timer;
  :mod:`bot.auth` - Basic auth on the upgrade; :mod:`bot.registration` - fleet heartbeats.
* :mod:`bot.playout` - real-time pacing and chunking of outbound audio (no I/O).
* :mod:`dialstream.state.fleet` - registration in Redis and ``select_bot`` for the Celery workers.
* :mod:`bot.config`, :mod:`bot.metrics` (errors live in :mod:`dialstream.errors`).

This package's ``__init__`` imports only the bot API, so that ``import dialstream.state.fleet`` in a
Celery worker does not pull in websockets.
"""

from __future__ import annotations

from bot.api import Bot, CallInfo, Session
from bot.tts import TTS

__all__ = ["Bot", "CallInfo", "Session", "TTS"]

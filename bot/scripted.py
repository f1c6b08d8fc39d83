"""The ``scripted`` bot: a call flow written in YAML.

A script is a set of named steps. Entering a step plays its prompt (a file or text for
the TTS adapter); then the caller's input decides the next step:

.. code-block:: yaml

    start: welcome
    vad: {threshold: 500, speech_ms: 200, silence_ms: 700}   # optional
    no_input_ms: 8000                                         # optional
    steps:
      welcome:
        play: welcome.wav          # relative to the script's folder; or  say: "text"
        dtmf: {"1": sales, "2": support}
        speech: thanks             # the caller spoke a turn
        no_input: goodbye          # nothing for no_input_ms after the prompt was heard
      sales:   {play: sales.wav, next: goodbye, disposition: interested}   # next: once the prompt was heard
      later:                                       # a callback the callee chose from the menu
        say: "We will call you back in an hour."
        disposition: {code: callback_requested, channel: menu}
        callback_after: 3600                       # seconds from now
        hangup: true
      goodbye: {play: goodbye.wav, hangup: true}   # hang up once the prompt was heard
      agent: {say: "Connecting you to a colleague.", transfer: warm}   # once heard: to an agent

Entering a step with ``disposition`` (a code, or a mapping of ``code`` and data) sets the call's
disposition (:meth:`~bot.api.Bot.set_disposition`): the menu choice or the kind of answer
becomes the call's outcome in the report. ``callback_after`` asks for a callback that many
seconds later (:meth:`~bot.api.Bot.schedule_callback`). ``transfer`` (``cold``, ``warm``, or
``true`` for the campaign's mode) hands the call to a human agent once the step's prompt was
heard (:meth:`~bot.api.Bot.transfer`).

Caller speech (energy-based, :mod:`bot.vad`) or a key press while a prompt plays
interrupts it (barge-in: ``clear``), unless the step says ``barge_in: false``. A key that
is not in ``dtmf`` replays the step.

:meth:`ScriptedBot.from_file` turns a script into a :class:`~bot.api.Bot` subclass;
:meth:`ScriptedBot.demo` loads the one shipped in ``bot/prompts/demo.yaml``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from bot.api import Bot, CallInfo
from bot.vad import DEFAULT_VAD, SPEECH_ENDED, SPEECH_STARTED, VadSettings, VoiceActivity
from dialstream.domain.call_outcome import Disposition
from dialstream.errors import ConfigurationError
from dialstream.exotel.audio import duration

__all__ = ["Step", "Script", "ScriptedBot", "DEMO_SCRIPT"]

DEMO_SCRIPT = Path(__file__).with_name("prompts") / "demo.yaml"


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a script; ``play`` is an absolute path once loaded."""

    name: str
    say: str = ""
    play: str = ""
    dtmf: Mapping[str, str] = field(default_factory=dict)
    speech: str = ""
    next: str = ""
    no_input: str = ""
    hangup: bool = False
    barge_in: bool = True
    disposition: str = ""
    disposition_data: Mapping[str, Any] = field(default_factory=dict)
    callback_after: float = 0.0
    transfer: str = ""  # "" none, "campaign": the campaign's mode, or "cold" / "warm"


@dataclass(frozen=True, slots=True)
class Script:
    start: str
    steps: Mapping[str, Step]
    vad: VadSettings = DEFAULT_VAD
    no_input_ms: int = 8000

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Script:
        """Read and validate a YAML script.

        Raises:
            ConfigurationError: the file is not a valid script (the message says where).
        """
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigurationError(f"{path}: {exc}") from None
        return cls.from_dict(raw, base=path.parent, source=str(path))

    @classmethod
    def from_dict(cls, raw: Any, *, base: Path, source: str = "script") -> Script:
        if not isinstance(raw, dict) or not isinstance(raw.get("steps"), dict) or not raw["steps"]:
            raise ConfigurationError(f"{source}: expected a mapping with a non-empty 'steps' mapping")
        steps = {str(name): _step(str(name), body, base, source) for name, body in raw["steps"].items()}
        start = str(raw.get("start", next(iter(steps))))
        for step in steps.values():
            targets = [*step.dtmf.values(), step.speech, step.next, step.no_input]
            for target in filter(None, targets):
                if target not in steps:
                    raise ConfigurationError(f"{source}: step {step.name!r} refers to unknown step {target!r}")
        if start not in steps:
            raise ConfigurationError(f"{source}: start step {start!r} is not defined")
        try:
            vad = VadSettings(**raw.get("vad", {}))
            no_input_ms = int(raw.get("no_input_ms", 8000))
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"{source}: {exc}") from None
        return cls(start=start, steps=steps, vad=vad, no_input_ms=no_input_ms)


def _step(name: str, body: Any, base: Path, source: str) -> Step:
    known = {"say", "play", "dtmf", "speech", "next", "no_input", "hangup", "barge_in", "disposition", "callback_after", "transfer"}
    if not isinstance(body, dict) or set(body) - known:
        raise ConfigurationError(f"{source}: step {name!r} must be a mapping of {sorted(known)}")
    if body.get("say") and body.get("play"):
        raise ConfigurationError(f"{source}: step {name!r} has both 'say' and 'play'")
    play = ""
    if body.get("play"):
        play = str((base / str(body["play"])).resolve())
        if not Path(play).is_file():
            raise ConfigurationError(f"{source}: step {name!r}: {play} does not exist")
    dtmf = body.get("dtmf", {})
    if not isinstance(dtmf, dict):
        raise ConfigurationError(f"{source}: step {name!r}: 'dtmf' must map digits to steps")
    code, data = _disposition(name, body.get("disposition"), source)
    try:
        callback_after = float(body.get("callback_after", 0))
    except (TypeError, ValueError):
        callback_after = -1.0
    if callback_after < 0:
        raise ConfigurationError(f"{source}: step {name!r}: 'callback_after' must be seconds >= 0")
    transfer = {None: "", False: "", True: "campaign", "cold": "cold", "warm": "warm"}.get(body.get("transfer"), "?")
    if transfer == "?" or (transfer and body.get("hangup")):
        raise ConfigurationError(f"{source}: step {name!r}: 'transfer' must be cold, warm or true, in a step that does not hang up")
    return Step(
        name=name,
        say=str(body.get("say", "")),
        play=play,
        dtmf={str(digit): str(target) for digit, target in dtmf.items()},
        speech=str(body.get("speech", "")),
        next=str(body.get("next", "")),
        no_input=str(body.get("no_input", "")),
        hangup=bool(body.get("hangup", False)),
        barge_in=bool(body.get("barge_in", True)),
        disposition=code,
        disposition_data=data,
        callback_after=callback_after,
        transfer=transfer,
    )


def _disposition(step: str, raw: Any, source: str) -> tuple[str, dict[str, Any]]:
    """(code, data) of a step's ``disposition``: a code, or a mapping with ``code``; checked now."""
    if not raw:
        return "", {}
    data = dict(raw) if isinstance(raw, dict) else {"code": raw}
    code = str(data.pop("code", ""))
    try:
        Disposition.create(code, data, now=0)
    except ValueError as exc:
        raise ConfigurationError(f"{source}: step {step!r}: {exc}") from None
    return code, data


class ScriptedBot(Bot):
    """Runs :attr:`script`; build a subclass with :meth:`from_file`."""

    script: ClassVar[Script]

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> type[ScriptedBot]:
        """A bot class for the script at ``path``; its ``say`` texts become prepared prompts."""
        script = Script.load(path)
        prompts = tuple(step.say for step in script.steps.values() if step.say)
        return type(f"ScriptedBot[{Path(path).stem}]", (cls,), {"script": script, "prompts": prompts})

    @classmethod
    def demo(cls) -> type[ScriptedBot]:
        return cls.from_file(DEMO_SCRIPT)

    def on_start(self, call: CallInfo) -> None:
        self.vad = VoiceActivity(self.script.vad)
        self.path: list[str] = []  # steps entered, in order (for logs and tests)
        self._enter(self.script.start)

    def on_audio(self, pcm: bytes) -> None:
        for event in self.vad.feed(pcm):
            if event == SPEECH_STARTED:
                self._interrupt()
            elif event == SPEECH_ENDED and self.step.speech:
                self._enter(self.step.speech)
                return
        # The caller's own audio is the clock: no wall time, no timers to cancel.
        if self._prompt_heard and not self.vad.speaking:
            self._quiet_ms += duration(pcm) * 1000
            if self.step.no_input and self._quiet_ms >= self.script.no_input_ms:
                self._enter(self.step.no_input)

    def on_dtmf(self, digit: str) -> None:
        if not self.step.dtmf:
            return
        self._interrupt()
        self._enter(self.step.dtmf.get(digit, self.step.name))

    def on_mark(self, name: str) -> None:
        if name == self._prompt_mark:
            self._prompt_done()

    def _enter(self, name: str) -> None:
        self.step = self.script.steps[name]
        self.path.append(name)
        if self.step.disposition:
            self.set_disposition(self.step.disposition, **self.step.disposition_data)
        if self.step.callback_after:
            self.schedule_callback(time.time() + self.step.callback_after)
        self._prompt_heard = False
        self._quiet_ms = 0.0
        mark = f"step-{len(self.path)}-{name}"
        if self.step.play:
            self._prompt_mark = self.session.play(self.step.play, mark=mark)
        elif self.step.say:
            self._prompt_mark = self.session.say(self.step.say, mark=mark)
        else:
            self._prompt_mark = None
        if self.step.hangup:
            self.session.hangup()
        elif self._prompt_mark is None:
            self._prompt_done()

    def _prompt_done(self) -> None:
        self._prompt_heard = True
        if self.step.transfer:
            self.transfer(mode=None if self.step.transfer == "campaign" else self.step.transfer)
        elif self.step.next and not self.step.hangup:
            self._enter(self.step.next)

    def _interrupt(self) -> None:
        if self.step.barge_in and not self._prompt_heard and self.session.speaking:
            self.session.clear()
            self._prompt_done()

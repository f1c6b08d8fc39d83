"""Prompt audio shipped with the bot: small 8 kHz 16-bit mono WAV files.

They are generated, not recorded: :data:`PROMPTS` maps each file to the sentence it
stands for, spoken by the offline :class:`~bot.tts.EspeakTTS` (espeak-ng's ``en-us`` voice).
Regenerate after editing a sentence with ``python -m bot.prompts``. ``demo.yaml`` is the
script ``python -m bot --bot scripted`` runs by default.
"""

from __future__ import annotations

from pathlib import Path

from bot.audiofile import write_wav
from bot.tts import EspeakTTS

__all__ = ["PROMPTS", "PROMPTS_DIR", "generate"]

PROMPTS_DIR = Path(__file__).parent

PROMPTS = {
    "welcome.wav": "Welcome to dialstream. Press one for sales, two for support, three to be called back later, or tell us what you need.",
    "sales.wav": "Connecting you to sales.",
    "support.wav": "Connecting you to support.",
    "thanks.wav": "Thank you, we noted that.",
    "callback.wav": "We will call you back in an hour.",
    "goodbye.wav": "Goodbye!",
}


def generate(directory: Path = PROMPTS_DIR) -> list[Path]:
    """Render every prompt into ``directory``; return the files written."""
    tts = EspeakTTS()
    written = []
    for name, text in PROMPTS.items():
        path = directory / name
        write_wav(path, tts.render(text))
        written.append(path)
    return written

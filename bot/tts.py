"""Text-to-speech adapters.

A bot says text through a :class:`TTS`: one ``async synthesize(text) -> PCM`` method
returning internal PCM (16-bit, 8 kHz, mono; :data:`dialstream.exotel.audio.INTERNAL_FORMAT`).
Write one adapter per vendor; the server wraps whatever it is given in a
:class:`CachedTTS`, so prompts known in advance are synthesised once per process,
before the first call arrives.

:class:`EspeakTTS` is the built-in speech: espeak-ng, whose library and voice data ship
inside the ``espeakng-loader`` wheel, called through ``ctypes``. It is offline (nothing is
downloaded, at install or at run time) and fast (a sentence in a few milliseconds), and a
listener understands it; the bot server uses it unless given another adapter.

Example::

    class MyVendorTTS(TTS):
        voice = "my-vendor:anna"

        async def synthesize(self, text: str) -> bytes:
            audio = await my_client.speak(text, rate=8000)
            return audio.pcm16
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterable
from functools import cache

import espeakng_loader

from dialstream.errors import ConfigurationError
from dialstream.exotel.audio import INTERNAL_RATE, resample

__all__ = ["TTS", "EspeakTTS", "CachedTTS"]


class TTS(ABC):
    """A text-to-speech adapter.

    ``voice`` names the voice and its settings: it is part of every cache key, so two
    adapters (or two voices of one vendor) never share cached audio.
    """

    voice: str = ""

    @abstractmethod
    async def synthesize(self, text: str) -> bytes:
        """Speech for ``text`` as internal PCM (16-bit little-endian, 8 kHz, mono)."""


# espeak-ng's C API (speak_lib.h): the few calls and constants a synchronous synthesis needs.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _PITCH = 1, 3  # espeak_PARAMETER
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class _Espeak:
    """The process's one espeak-ng engine. Its state is global in the C library, so every
    synthesis holds :attr:`lock`; the callback appends to the buffer of the one running."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        self.rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
        if self.rate <= 0:
            raise ConfigurationError("espeak-ng did not initialise (espeakng-loader's library or data is broken)")
        self._chunks: list[bytes] = []
        self._callback = _SYNTH_CALLBACK(self._collect)  # kept: the library holds a pointer to it
        self.lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, samples: ctypes._Pointer[ctypes.c_short], count: int, _events: int | None) -> int:
        if samples and count > 0:
            self._chunks.append(ctypes.string_at(samples, count * 2))
        return 0  # go on

    def synthesize(self, text: str, voice: str, words_per_minute: int, pitch: int) -> bytes:
        """16-bit mono PCM at :attr:`rate`."""
        data = text.encode("utf-8") + b"\0"
        with self.lock:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ConfigurationError(f"espeak-ng has no voice {voice!r}")
            self.lib.espeak_SetParameter(_RATE, words_per_minute, 0)
            self.lib.espeak_SetParameter(_PITCH, pitch, 0)
            self._chunks = []
            self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            return b"".join(self._chunks)


@cache
def _espeak() -> _Espeak:
    return _Espeak()


class EspeakTTS(TTS):
    """espeak-ng speech, resampled to 8 kHz.

    ``voice`` is an espeak-ng voice name (``en-us``, ``en`` (British), ``hi``, ``ta``...: the ``lang`` folder of its data);
    ``words_per_minute`` 80-450 and ``pitch`` 0-99 are espeak-ng's own settings. A voice
    unknown to espeak-ng raises ConfigurationError at construction, not at the first call.
    """

    def __init__(self, voice: str = "en-us", *, words_per_minute: int = 160, pitch: int = 50) -> None:
        if not 80 <= words_per_minute <= 450 or not 0 <= pitch <= 99:
            raise ConfigurationError(f"espeak-ng speed {words_per_minute} wpm must be 80-450 and pitch {pitch} 0-99")
        self.name, self.words_per_minute, self.pitch = voice, words_per_minute, pitch
        self.voice = f"espeak-ng:{voice}:{words_per_minute}wpm:p{pitch}"
        _espeak().synthesize("", voice, words_per_minute, pitch)  # loads the library and checks the voice now

    async def synthesize(self, text: str) -> bytes:
        # A thread: a long text takes tens of milliseconds, which would stall every other stream.
        return await asyncio.to_thread(self.render, text)

    def render(self, text: str) -> bytes:
        """The same audio :meth:`synthesize` returns, synchronously (for prompt files)."""
        if not text.strip():
            return b""  # espeak-ng would return a breath of silence
        engine = _espeak()
        pcm = engine.synthesize(text, self.name, self.words_per_minute, self.pitch)
        return resample(pcm, engine.rate, INTERNAL_RATE)


class CachedTTS(TTS):
    """Remembers the last ``max_entries`` texts another adapter synthesised, by voice and text.

    :meth:`get` answers synchronously from the cache, which is how a prepared prompt
    leaves within milliseconds of ``start`` instead of waiting for a synthesis.
    """

    def __init__(self, inner: TTS, *, max_entries: int = 256) -> None:
        self.inner = inner
        self.max_entries = max_entries
        self._cache: OrderedDict[tuple[str, str], bytes] = OrderedDict()

    @property
    def voice(self) -> str:  # type: ignore[override]
        return self.inner.voice

    def get(self, text: str) -> bytes | None:
        key = (self.inner.voice, text)
        audio = self._cache.get(key)
        if audio is not None:
            self._cache.move_to_end(key)
        return audio

    async def synthesize(self, text: str) -> bytes:
        audio = self.get(text)
        if audio is None:
            audio = await self.inner.synthesize(text)
            self._cache[(self.inner.voice, text)] = audio
            if len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return audio

    async def prepare(self, texts: Iterable[str]) -> None:
        """Synthesise ``texts`` now so that later calls find them cached."""
        for text in texts:
            await self.synthesize(text)

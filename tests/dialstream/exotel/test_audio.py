"""Audio conversion: mu-law, resampling, the internal format and the generators."""

from __future__ import annotations

import math

import pytest

from dialstream.exotel.agentstream import MediaFormat
from dialstream.exotel.audio import (
    INTERNAL_FORMAT,
    INTERNAL_RATE,
    Transcoder,
    duration,
    energy,
    mulaw_decode,
    mulaw_encode,
    resample,
    silence,
    tone,
)

FORMATS = [MediaFormat.mulaw(8000), MediaFormat.pcm16(8000), MediaFormat.pcm16(16000), MediaFormat.pcm16(24000)]


def test_internal_format_is_8khz_pcm16():
    """Bot logic sees 16-bit PCM at 8 kHz."""
    assert (INTERNAL_FORMAT.sample_rate, INTERNAL_FORMAT.sample_width, INTERNAL_RATE) == (8000, 2, 8000)


def test_mulaw_round_trip_is_close():
    """mu-law encoding keeps a tone within the codec's quantisation error."""
    pcm = tone(INTERNAL_FORMAT, 440, 100)
    back = mulaw_decode(mulaw_encode(pcm))
    assert len(back) == len(pcm)
    assert abs(energy(back) - energy(pcm)) < energy(pcm) * 0.05


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.to_content_type())
def test_silence_length_and_value(fmt):
    """silence() gives the right byte count and decodes to zero energy."""
    data = silence(fmt, 100)
    assert len(data) == fmt.bytes_for(0.1)
    assert energy(Transcoder(fmt).decode(data)) == 0


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.to_content_type())
def test_tone_decodes_to_internal_duration_and_energy(fmt):
    """A tone in any format decodes to about the same duration of audible internal PCM."""
    data = tone(fmt, 440, 200, amplitude=0.5)
    assert len(data) == fmt.bytes_for(0.2)
    pcm = Transcoder(fmt).decode(data)
    assert duration(pcm) == pytest.approx(0.2, abs=0.002)
    # A sine of amplitude A has RMS A/sqrt(2); fades at the edges cost a little.
    assert energy(pcm) == pytest.approx(0.5 * 32767 / math.sqrt(2), rel=0.1)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.to_content_type())
def test_transcoder_round_trip_keeps_length(fmt):
    """Decoding then encoding chunk by chunk gives back about as many bytes as came in."""
    codec = Transcoder(fmt)
    chunks = [tone(fmt, 300, 100) for _ in range(10)]
    out = b"".join(codec.encode(codec.decode(chunk)) for chunk in chunks)
    assert abs(len(out) - sum(map(len, chunks))) <= 4 * fmt.sample_width


def test_encode_clip_matches_format():
    """encode_clip converts a whole internal clip to the stream's rate and encoding."""
    clip = tone(INTERNAL_FORMAT, 440, 500)
    assert len(Transcoder(MediaFormat.mulaw(8000)).encode_clip(clip)) == 4000
    assert abs(len(Transcoder(MediaFormat.pcm16(16000)).encode_clip(clip)) - 16000) <= 4


def test_pcm_decode_drops_odd_byte():
    """A PCM16 payload with an odd length loses its incomplete last sample."""
    assert len(Transcoder(MediaFormat.pcm16(8000)).decode(b"\x00" * 321)) == 320


def test_resample_identity_and_ratio():
    """resample returns the input when rates match and scales length by the ratio otherwise."""
    pcm = tone(INTERNAL_FORMAT, 440, 100)
    assert resample(pcm, 8000, 8000) is pcm
    assert abs(len(resample(pcm, 8000, 16000)) - 2 * len(pcm)) <= 4


def test_energy_of_empty_is_zero():
    """energy of no audio is zero."""
    assert energy(b"") == 0

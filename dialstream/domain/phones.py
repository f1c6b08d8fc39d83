"""Phone numbers and the time zones they are called in (pure).

Numbers are normalised to E.164 with ``phonenumbers`` (region ``DEFAULT_REGION`` for numbers
written without a country code); a number's zone is the first ``phonenumbers`` lists for it,
and a contact's ``timezone`` variable, when present, overrides it for calling windows.
"""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as phone_timezone

from dialstream.domain.campaign import Contact
from dialstream.errors import ConfigurationError

__all__ = ["DEFAULT_REGION", "DEFAULT_TIMEZONE", "TIMEZONE_COLUMN", "normalize_number", "as_e164", "parse_error_message", "timezone_for", "zone_of", "contact_timezone", "zone_exists", "check_zone"]


DEFAULT_TIMEZONE = "Asia/Kolkata"  # the zone of DEFAULT_REGION, used when a number tells none


DEFAULT_REGION = "IN"


TIMEZONE_COLUMN = "timezone"


def parse_error_message(exc: phonenumbers.NumberParseException) -> str:
    return str(getattr(exc, "_msg", "") or exc)


def as_e164(number: phonenumbers.PhoneNumber) -> str:
    # format_number(E164) costs as much as parsing; this is what it computes for E.164.
    return f"+{number.country_code}{phonenumbers.national_significant_number(number)}"


def normalize_number(text: str, region: str = DEFAULT_REGION, *, strict: bool = True) -> str:
    """``text`` as E.164; raises ValueError when unparseable, or (``strict``) not a valid number."""
    try:
        number = phonenumbers.parse(text.strip(), region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"unparseable number {text!r}: {parse_error_message(exc)}") from None
    if strict and not phonenumbers.is_valid_number(number):
        raise ValueError(f"{text!r} is not a valid number")
    return as_e164(number)


def timezone_for(e164: str, *, default: str = DEFAULT_TIMEZONE, region: str = DEFAULT_REGION) -> str:
    """The IANA zone of a phone number (the first phonenumbers lists), else ``default``.

    Numbers of one country but several zones (US toll-free, Australian mobiles) get the
    first zone listed, a guess: give such rows a ``timezone`` column.
    """
    try:
        number = phonenumbers.parse(e164, region)
    except phonenumbers.NumberParseException:
        return default
    return zone_of(number, default)


def zone_of(number: phonenumbers.PhoneNumber, default: str) -> str:
    zones = phone_timezone.time_zones_for_number(number)
    if not zones or zones[0] == phone_timezone.UNKNOWN_TIMEZONE:
        return default
    return zones[0]


def contact_timezone(contact: Contact, *, default: str = DEFAULT_TIMEZONE, column: str = TIMEZONE_COLUMN) -> str:
    """The zone for a stored contact's calling window: its ``timezone`` variable, else its number's."""
    zone = contact.variables.get(column, "").strip()
    if zone and zone_exists(zone):
        return zone
    return timezone_for(contact.phone, default=default)


@lru_cache(maxsize=1024)
def zone_exists(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError; "../x" a ValueError
        return False
    return True


def check_zone(name: str) -> None:
    if not zone_exists(name):
        raise ConfigurationError(f"unknown time zone {name!r}")

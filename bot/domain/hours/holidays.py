"""Public holidays as days off: a country/subdivision code ("US", "DE-BY", "GB-SCT") -> the dates it takes off.

The dates come from the maintained `holidays` package (a pure data library: no I/O, no clock), observed dates
included (a holiday that falls on a weekend and is moved to Monday makes Monday a day off). Only the public
category counts: optional and bank-only holidays are not days off for everyone.

Speed: each (code, year) is computed once per process (`_year`, cached); a `HolidayCalendar` keeps the
ordinals of the years it has been asked about, so the engine's per-day question is one range check and one set
lookup.
"""

from __future__ import annotations

import difflib
import threading
import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import holidays as holidays_data
from holidays import registry as holidays_registry

from bot.domain.errors import HoursError

__all__ = ["HolidayCalendar", "calendar", "describe_code", "resolve_code"]

_EXAMPLE = "e.g. US, US-CA, DE-BY, GB-SCT, IT or IN-KA"
_FAR_YEARS = 5  # a query further than this from the loaded years starts a new range instead of filling the gap


@lru_cache(maxsize=1)
def _supported() -> dict[str, tuple[str, ...]]:
    """Two-letter country codes -> their subdivision codes."""
    listed = holidays_data.list_supported_countries(include_aliases=False)
    return {code: tuple(subdivs) for code, subdivs in listed.items()}


@lru_cache(maxsize=1)
def _alpha3() -> dict[str, str]:
    """Three-letter codes ("USA", "DEU") -> the two-letter one Offhours stores."""
    return {entry[2]: entry[1] for entry in holidays_registry.COUNTRIES.values() if len(entry) > 2}


def _fold(text: str) -> str:
    """Lower case, accents and separators dropped: "Baden-Württemberg" -> "badenwurttemberg"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c)).lower()


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    """Folded country names ("unitedstates", "germany") -> their code, for suggestions."""
    names: dict[str, str] = {}
    for module, (class_name, code, *_rest) in holidays_registry.COUNTRIES.items():
        if code in _supported():
            names[_fold(module)] = code
            names[_fold(class_name)] = code
    return names


@lru_cache(maxsize=512)
def _subdivision_aliases(country: str) -> dict[str, str]:
    """Folded subdivision names ("bayern") -> subdivision code ("BY"), where the package knows them."""
    aliases = getattr(holidays_data.country_holidays(country), "subdivisions_aliases", None) or {}
    return {_fold(name): code for name, code in aliases.items()}


def _suggestion(text: str) -> str | None:
    """The code someone probably meant, or None."""
    cleaned = text.strip()
    folded = _fold(cleaned)
    if folded in _country_names():
        return _country_names()[folded]
    country, _, subdiv = cleaned.replace("_", "-").replace(" ", "-").partition("-")
    country = country.upper()
    if country in _supported() and subdiv:
        by_name = _subdivision_aliases(country).get(_fold(subdiv))
        if by_name:
            return f"{country}-{by_name}"
        close = difflib.get_close_matches(subdiv.upper(), _supported()[country], n=1, cutoff=0.5)
        return f"{country}-{close[0]}" if close else country
    every = [*_supported(), *_country_names()]
    close = difflib.get_close_matches(folded if len(folded) > 3 else country, every, n=1, cutoff=0.75)
    if not close:
        return None
    return close[0] if close[0] in _supported() else _country_names()[close[0]]


@lru_cache(maxsize=1024)
def resolve_code(text: str) -> str:
    """The canonical code for `text` ("us-ca" -> "US-CA"); HoursError with a suggestion when it is not known."""
    if not isinstance(text, str) or not text.strip():
        raise HoursError(f"Give a country code, optionally with a region — {_EXAMPLE}")
    cleaned = text.strip().upper().replace("_", "-").strip("-")
    country, dash, subdiv = cleaned.partition("-")
    country = _alpha3().get(country, country)
    supported = _supported()
    if country in supported and (not dash or subdiv in supported[country]):
        return f"{country}-{subdiv}" if dash else country
    suggestion = _suggestion(text)
    hint = f" — did you mean {suggestion}?" if suggestion and suggestion != cleaned else "."
    if country in supported and dash:
        regions = ", ".join(s for s in supported[country][:12] if s.isupper())
        problem = f"{country} has no region {subdiv!r} for holidays{hint} Regions of {country}: {regions} and more."
    else:
        problem = f"{text.strip()!r} is not a country code Offhours knows holidays for{hint}"
    raise HoursError(f"{problem} Use an ISO 3166 code, {_EXAMPLE}")


def describe_code(code: str) -> str:
    """A name for people: "US-CA" -> "United States (CA)"."""
    country, _, subdiv = code.partition("-")
    name = next((v[0] for v in holidays_registry.COUNTRIES.values() if v[1] == country), country)
    spaced = "".join(" " + c if c.isupper() and i else c for i, c in enumerate(name))
    return f"{spaced} ({subdiv})" if subdiv else spaced


@lru_cache(maxsize=4096)
def _year(code: str, year: int) -> tuple[tuple[date, str], ...]:
    """The public holidays of one year, sorted, observed dates included."""
    country, _, subdiv = code.partition("-")
    days = holidays_data.country_holidays(country, subdiv=subdiv or None, years=year, observed=True)
    return tuple(sorted(days.items()))


@dataclass(frozen=True, slots=True)
class _Loaded:
    first_year: int
    last_year: int
    low: int  # ordinal of Jan 1 of first_year
    high: int  # ordinal of Dec 31 of last_year
    ordinals: frozenset[int]


class HolidayCalendar:
    """The holidays of one code, loaded year by year as the engine asks about days; shared and thread-safe."""

    def __init__(self, code: str) -> None:
        self.code = code
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()

    def is_holiday(self, ordinal: int) -> bool:
        loaded = self._loaded
        if loaded is None or not loaded.low <= ordinal <= loaded.high:
            loaded = self._load(ordinal)
        return ordinal in loaded.ordinals

    def between(self, first: date, last: date) -> list[tuple[date, str]]:
        """(date, name) of every holiday from `first` to `last`, inclusive, in order."""
        return [
            (day, name)
            for year in range(first.year, last.year + 1)
            for day, name in _year(self.code, year)
            if first <= day <= last
        ]

    def upcoming(self, today: date, count: int = 3) -> list[tuple[date, str]]:
        """The next `count` holidays from `today` on (today included), looking at most three years ahead."""
        found: list[tuple[date, str]] = []
        for year in range(today.year, today.year + 3):
            found += [(day, name) for day, name in _year(self.code, year) if day >= today]
            if len(found) >= count:
                break
        return found[:count]

    def _load(self, ordinal: int) -> _Loaded:
        year = date.fromordinal(ordinal).year
        with self._lock:
            loaded = self._loaded
            if loaded is not None and loaded.low <= ordinal <= loaded.high:
                return loaded
            if loaded is None or not loaded.first_year - _FAR_YEARS <= year <= loaded.last_year + _FAR_YEARS:
                first, last = year, year
            else:
                first, last = min(year, loaded.first_year), max(year, loaded.last_year)
            ordinals = frozenset(day.toordinal() for y in range(first, last + 1) for day, _ in _year(self.code, y))
            loaded = _Loaded(first, last, date(first, 1, 1).toordinal(), date(last, 12, 31).toordinal(), ordinals)
            self._loaded = loaded  # one assignment: a reader sees the old or the new range, never half of one
            return loaded


@lru_cache(maxsize=1024)
def calendar(code: str) -> HolidayCalendar:
    """The one shared calendar for a canonical code (see resolve_code)."""
    return HolidayCalendar(resolve_code(code))

"""Out-of-office return dates: the first day the sender is back, read from the auto-reply's text."""
from __future__ import annotations

import datetime as dt
import re
import unicodedata

from messaging.inbound.reply_text import strip_quoted

_MONTHS: dict[str, int] = {}
for _num, _names in enumerate(
    (
        "january jan januar jänner janvier enero ene",
        "february feb februar février fevrier febrero",
        "march mar märz maerz marz mars marzo",
        "april apr avril abril abr",
        "may mai mayo",
        "june jun juni juin junio",
        "july jul juli juillet julio",
        "august aug août aout agosto ago",
        "september sep sept septembre septiembre set",
        "october oct oktober okt octobre octubre",
        "november nov novembre noviembre",
        "december dec dezember dez décembre decembre diciembre dic",
    ),
    start=1,
):
    for _name in _names.split():
        _MONTHS.setdefault(_name, _num)

_WEEKDAYS: dict[str, int] = {}
for _num, _names in enumerate(
    (
        "monday montag lundi lunes",
        "tuesday dienstag mardi martes",
        "wednesday mittwoch mercredi miércoles miercoles",
        "thursday donnerstag jeudi jueves",
        "friday freitag vendredi viernes",
        "saturday samstag samedi sábado sabado",
        "sunday sonntag dimanche domingo",
    )
):
    for _name in _names.split():
        _WEEKDAYS[_name] = _num

_MONTH_RX = "|".join(sorted((re.escape(m) for m in _MONTHS), key=len, reverse=True))
_WEEKDAY_RX = "|".join(sorted((re.escape(w) for w in _WEEKDAYS), key=len, reverse=True))

# One date, in the formats people write in auto-replies. Named groups tell the parser which one matched.
_DATE = re.compile(
    r"(?P<iso>(?P<iy>\d{4})-(?P<im>\d{1,2})-(?P<id>\d{1,2}))"
    r"|(?P<dot>(?P<dd>\d{1,2})\.\s?(?P<dm>\d{1,2})\.(?:\s?(?P<dy>\d{4}|\d{2})\b)?)"
    r"|(?P<slash>(?P<sa>\d{1,2})/(?P<sb>\d{1,2})(?:/(?P<sy>\d{4}|\d{2}))?\b)"
    rf"|(?P<dmy>(?P<xd>\d{{1,2}})(?:st|nd|rd|th|\.|er|º)?\s+(?:of\s+|de\s+)?(?P<xm>{_MONTH_RX})\.?"
    r"(?:,?\s+(?:de\s+)?(?P<xy>\d{4}))?)\b"
    rf"|(?P<mdy>(?P<ym>{_MONTH_RX})\.?\s+(?P<yd>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(?P<yy>\d{{4}}))?)"
    rf"|(?P<wd>\b(?P<wname>{_WEEKDAY_RX})\b)",
    re.IGNORECASE,
)

# Words that introduce the day the person is back, and whether the date they introduce is the first
# day back ("back on X") or the last day away ("until X": back the day after).
_RETURN_CUE = re.compile(
    r"(?P<back>\bback (?:in the office |in office |at my desk )?(?:on |by |from )?"
    r"|\breturn(?:ing)? (?:to the office |to work )?(?:on |by )?|\bwill return (?:on )?"
    r"|\bin the office (?:again )?(?:on|from) |\bavailable again (?:on|from) "
    r"|\bzurück (?:am |ab )?|\bwieder (?:im büro |erreichbar |da |zurück )?(?:am |ab )?|\bab dem |\bab (?=\d)"
    r"|\bde retour (?:le |à partir du )?|\bretour (?:prévu )?le |\bà partir du "
    r"|\bregreso (?:el )?|\bvuelvo (?:el )?|\bregresaré (?:el )?|\bestaré de vuelta (?:el )?|\ba partir del )"
    r"|(?P<until>\buntil |\btill |\bthrough |\bthru |\bbis (?:zum |einschließlich |einschl\.? )?|\bbis "
    r"|\bjusqu'au |\bhasta el |\bhasta )",
    re.IGNORECASE,
)


def _resolve_year(month: int, day: int, year: int | None, today: dt.date) -> dt.date | None:
    try:
        if year is not None:
            if year < 100:
                year += 2000
            return dt.date(year, month, day)
        candidate = dt.date(today.year, month, day)
    except ValueError:
        return None
    # No year given: the next occurrence. A date a little in the past (the auto-reply was written
    # before today) is kept; one months ago means next year.
    if candidate < today - dt.timedelta(days=14):
        try:
            candidate = dt.date(today.year + 1, month, day)
        except ValueError:
            return None
    return candidate


def _parse_date_match(match: re.Match[str], today: dt.date, prefer_day_first: bool) -> dt.date | None:
    g = match.groupdict()
    if g["iso"]:
        return _resolve_year(int(g["im"]), int(g["id"]), int(g["iy"]), today)
    if g["dot"]:
        return _resolve_year(int(g["dm"]), int(g["dd"]), int(g["dy"]) if g["dy"] else None, today)
    if g["slash"]:
        a, b = int(g["sa"]), int(g["sb"])
        year = int(g["sy"]) if g["sy"] else None
        if a > 12:
            day, month = a, b
        elif b > 12:
            month, day = a, b
        elif prefer_day_first:
            day, month = a, b
        else:
            month, day = a, b
        return _resolve_year(month, day, year, today)
    if g["dmy"]:
        return _resolve_year(_MONTHS[g["xm"].lower()], int(g["xd"]), int(g["xy"]) if g["xy"] else None, today)
    if g["mdy"]:
        return _resolve_year(_MONTHS[g["ym"].lower()], int(g["yd"]), int(g["yy"]) if g["yy"] else None, today)
    if g["wd"]:
        weekday = _WEEKDAYS[g["wname"].lower()]
        ahead = (weekday - today.weekday()) % 7 or 7
        return today + dt.timedelta(days=ahead)
    return None


# A return date further ahead than this is not believed (a typo, a misread year, a template gone wrong): the
# reply then has no return date. The campaign engine and the events API apply the same bound
# (campaigns.engine.MAX_RETURN_DATE_AHEAD).
MAX_RETURN_DAYS_AHEAD = 180


def plausible_return_date(value: dt.date | None, *, today: dt.date) -> dt.date | None:
    """`value` when it is a return date worth acting on (from `today` to 180 days after it), else None."""
    if value is None:
        return None
    try:
        latest = today + dt.timedelta(days=MAX_RETURN_DAYS_AHEAD)
    except OverflowError:
        latest = dt.date.max
    return value if today <= value <= latest else None


def _parse_date_safely(match: re.Match[str], today: dt.date, prefer_day_first: bool) -> dt.date | None:
    try:
        return _parse_date_match(match, today, prefer_day_first)
    except OverflowError:  # date arithmetic at the ends of the calendar (year 1 or 9999)
        return None


def extract_return_date(text: str, *, today: dt.date) -> dt.date | None:
    """The first day the sender is back, from an out-of-office text, or None.

    Looks for a return cue ("back on", "returning", "zurück am", "until", "bis", "de retour le",
    "hasta el") followed within a few words by a date; "until X" means back on X + 1 day. Without a cue,
    the latest date in the text that is not in the past is taken (OOO notes usually name the span
    "from A to B", and B is the one that matters). A date in the past or more than 180 days after `today`
    is not a return date (`plausible_return_date`).
    """
    body = strip_quoted(text)
    flat = re.sub(r"\s+", " ", unicodedata.normalize("NFC", body))
    # English writes 12/14 month-first; German, French and Spanish write day-first.
    prefer_day_first = bool(re.search(r"\b(?:bin|ich|je|suis|estoy|de retour|zurück|hasta)\b", flat, re.I))
    for cue in _RETURN_CUE.finditer(flat):
        window = flat[cue.end(): cue.end() + 40]
        # Allow a weekday before the date ("back on Monday, 14 December"): try the first real date first.
        matches = [m for m in _DATE.finditer(window)]
        dated = [m for m in matches if not m.group("wd")]
        chosen = dated[0] if dated else (matches[0] if matches and matches[0].start() < 3 else None)
        if chosen is None:
            continue
        # The date must start close to the cue (skip "until I get back on 3/4 of the tasks" style noise).
        if chosen.start() > 25:
            continue
        parsed = _parse_date_safely(chosen, today, prefer_day_first)
        if parsed is not None and cue.group("until"):
            parsed = parsed + dt.timedelta(days=1) if parsed < dt.date.max else None
        parsed = plausible_return_date(parsed, today=today)
        if parsed is None:
            continue
        return parsed
    candidates = []
    for match in _DATE.finditer(flat):
        if match.group("wd"):
            continue
        parsed = plausible_return_date(_parse_date_safely(match, today, prefer_day_first), today=today)
        if parsed is not None:
            candidates.append(parsed)
    return max(candidates) if candidates else None

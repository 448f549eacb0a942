"""Out-of-office return dates: the first day the sender is back, read from the auto-reply's text."""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
import unicodedata

from messaging.inbound.reply_text import strip_quoted

_MONTHS: dict[str, int] = {}
for _num, _names in enumerate(
    (
        "january jan januar jänner janvier enero ene gennaio januari janeiro",
        "february feb februar février fevrier febrero febbraio februari fevereiro",
        "march mar märz maerz marz mars marzo maart março marco",
        "april apr avril abril abr aprile",
        "may mai mayo maggio mei maio",
        "june jun juni juin junio giugno junho",
        "july jul juli juillet julio luglio julho",
        "august aug août aout agosto ago augustus",
        "september sep sept septembre septiembre set settembre setembro",
        "october oct oktober okt octobre octubre ottobre outubro",
        "november nov novembre noviembre novembro",
        "december dec dezember dez décembre decembre diciembre dic dicembre dezembro",
    ),
    start=1,
):
    for _name in _names.split():
        _MONTHS.setdefault(_name, _num)

_WEEKDAYS: dict[str, int] = {}
for _num, _names in enumerate(
    (
        "monday montag lundi lunes lunedì lunedi maandag segunda",
        "tuesday dienstag mardi martes martedì martedi dinsdag terça",
        "wednesday mittwoch mercredi miércoles miercoles mercoledì mercoledi woensdag quarta",
        "thursday donnerstag jeudi jueves giovedì giovedi donderdag quinta",
        "friday freitag vendredi viernes venerdì venerdi vrijdag sexta",
        "saturday samstag samedi sábado sabado zaterdag",
        "sunday sonntag dimanche domingo domenica zondag",
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
    r"|\bregreso (?:el )?|\bvuelvo (?:el )?|\bregresaré (?:el )?|\bestaré de vuelta (?:el )?|\ba partir del "
    r"|\brientrerò (?:in ufficio )?(?:il )?|\brientro (?:previsto )?(?:il )?|\bdi nuovo in ufficio (?:il |dal )?"
    r"|\bweer aanwezig (?:op |vanaf )?|\bterug (?:op |vanaf )?|\bretorno (?:ao escritório )?(?:em |no dia |a )?"
    r"|\bvolto (?:em |no dia )?|\bestarei de volta (?:em |no dia )?)"
    r"|(?P<until>\buntil |\btill |\bthrough |\bthru |\bbis (?:zum |einschließlich |einschl\.? )?|\bbis "
    r"|\bjusqu'au |\bjusqu'à |\bhasta el |\bhasta |\bfino al |\bfino a |\bsino al |\btot en met |\bt/m |\btot "
    r"|\baté (?:o dia |dia )?)",
    re.IGNORECASE,
)


_MAX_CHARS = 8 * 1024  # an out-of-office says when it ends in its first lines
_EUROPEAN_SIGNAL = re.compile(
    r"\b(?:bin|ich|je|suis|estoy|sono|ik|estou|de retour|zurück|hasta)\b|\.co\.uk\b|\+44\b|\.(?:de|fr|es|it|nl|pt)\b",
    re.IGNORECASE)
# "July 10-31", "10-31 July", "vom 3. bis 14. August", "du 10 au 21 août", "del 10 al 31 de julio",
# "de 1 a 15 de setembro", "dal 3 al 14 agosto": back the day after the end (dateparser misreads ranges).
_RANGE = re.compile(
    rf"(?P<m1>{_MONTH_RX})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?\s*(?:-|–|to|through|until)\s*(?P<d1>\d{{1,2}})\b(?:,?\s+(?P<y1>\d{{4}}))?"
    r"|\b\d{1,2}\.?\s*(?:-|–|bis|au|al|a|tot|t/m|to)\s*(?P<d2>\d{1,2})(?:st|nd|rd|th|\.|er|º)?\s+(?:de\s+)?"
    rf"(?P<m2>{_MONTH_RX})\b\.?(?:,?\s+(?:de\s+)?(?P<y2>\d{{4}}))?",
    re.IGNORECASE,
)


def _range_end(flat: str, today: dt.date) -> dt.date | None:
    match = _RANGE.search(flat)
    if match is None:
        return None
    month_name = match.group("m1") or match.group("m2")
    day = int(match.group("d1") or match.group("d2"))
    year = match.group("y1") or match.group("y2")
    end = _resolve_year(_MONTHS[month_name.lower()], day, int(year) if year else None, today)
    if end is None or end >= dt.date.max:
        return None
    return plausible_return_date(end + dt.timedelta(days=1), today=today)


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
# What the parser believes: a date without a year is its next occurrence, up to a year ahead ("jusqu'au
# 5 janvier" read in March is next January, not dropped). Whether a pause that long is honoured is the
# engine's policy (MAX_RETURN_DATE_AHEAD there), not the parser's.
MAX_PARSED_DAYS_AHEAD = 366


def plausible_return_date(value: dt.date | None, *, today: dt.date) -> dt.date | None:
    """`value` when it is a believable return date (from `today` to a year after it), else None."""
    if value is None:
        return None
    try:
        latest = today + dt.timedelta(days=MAX_PARSED_DAYS_AHEAD)
    except OverflowError:
        latest = dt.date.max
    return value if today <= value <= latest else None


def _parse_date_safely(match: re.Match[str], today: dt.date, prefer_day_first: bool) -> dt.date | None:
    try:
        return _parse_date_match(match, today, prefer_day_first)
    except OverflowError:  # date arithmetic at the ends of the calendar (year 1 or 9999)
        return None


_DATEPARSER_LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pt")


@functools.cache
def _dateparser():  # noqa: ANN202 - the dateparser module
    """dateparser, imported and with its language data loaded (0.3 s import, ~0.85 s first parse). Imported here,
    not at the top, so web processes never pay for it; workers load it at start (messaging.inbound.warm_up)."""
    import dateparser  # noqa: PLC0415 - see above

    dateparser.parse("tomorrow", languages=list(_DATEPARSER_LANGUAGES))
    return dateparser


def warm_up() -> None:
    """Load dateparser and its language data now rather than on the first out-of-office that needs it."""
    _dateparser()


def _dateparser_date(window: str, *, today: dt.date, language: str, day_first: bool) -> dt.date | None:
    """dateparser on a short fragment we cut out ourselves (never the whole body: it is slow on long text),
    for what our own table does not spell ("back tomorrow", "zurück übermorgen", "de retour demain")."""
    fragment = " ".join(window.split()[:3]).strip(" ,.;:!")
    if not fragment:
        return None
    base = dt.datetime.combine(today, dt.time(12, 0))
    languages = [language[:2]] if language[:2] in _DATEPARSER_LANGUAGES else list(_DATEPARSER_LANGUAGES)
    try:
        found = _dateparser().parse(fragment, languages=languages, settings={
            "RELATIVE_BASE": base, "PREFER_DATES_FROM": "future", "DATE_ORDER": "DMY" if day_first else "MDY",
            "STRICT_PARSING": False, "REQUIRE_PARTS": ["day"],
        })
    except (ValueError, OverflowError, TypeError):
        return None
    return found.date() if found is not None and found.date() != today else None


@dataclasses.dataclass(frozen=True)
class ReturnDate:
    """A return date read from a text, and why an operator should check it ("" when nothing is odd)."""

    date: dt.date | None
    review_reason: str = ""


# What may stand between a weekday and its date: "Monday, March 16", "Monday the 16th", "lundi le 16".
_WEEKDAY_GAP = re.compile(r"[\s,.]*(?:(?:the|den|le|el|il|op|o dia)\s+)?", re.IGNORECASE)
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _nearest_weekday(value: dt.date, weekday: int) -> dt.date:
    """The day with `weekday` nearest to `value` (3 days either side at most; 7 is odd, so never a tie)."""
    ahead = (weekday - value.weekday()) % 7
    try:
        return value + dt.timedelta(days=ahead) if ahead <= 3 else value - dt.timedelta(days=7 - ahead)
    except OverflowError:
        return value


def _checked_against_weekday(text: str, dated: re.Match[str], parsed: dt.date | None) -> ReturnDate:
    """A weekday written just before the date ("until Monday, March 17") that the date contradicts (March 17
    is a Tuesday): one of the two is a typo and we cannot tell which. The later of the date and the weekday
    nearest to it is kept, so no follow-up goes before the person is back, and the reply is flagged."""
    before = text[:dated.start()]
    weekday_match = None
    for found in _DATE.finditer(before[-30:]):
        weekday_match = found if found.group("wd") else None
    if parsed is None or weekday_match is None:
        return ReturnDate(parsed)
    if _WEEKDAY_GAP.fullmatch(before[-30:][weekday_match.end():]) is None:
        return ReturnDate(parsed)
    weekday = _WEEKDAYS[weekday_match.group("wname").lower()]
    if parsed.weekday() == weekday:
        return ReturnDate(parsed)
    chosen = max(parsed, _nearest_weekday(parsed, weekday))
    reason = (f"weekday contradicts date: {weekday_match.group('wname')} {dated.group(0)!r} is a "
              f"{_WEEKDAY_NAMES[parsed.weekday()]}; kept the later of the two, {chosen.isoformat()}")
    return ReturnDate(chosen, reason[:300])


def _cue_window_date(window: str, *, today: dt.date, prefer_day_first: bool) -> ReturnDate | None:
    # Allow a weekday before the date ("back on Monday, 14 December"): checked against the date it names.
    matches = list(_DATE.finditer(window))
    dated = [m for m in matches if not m.group("wd")]
    chosen = dated[0] if dated else (matches[0] if matches and matches[0].start() < 3 else None)
    # The date must start close to the cue (skip "until I get back on 3/4 of the tasks" style noise).
    if chosen is None or chosen.start() > 25:
        return None
    parsed = _parse_date_safely(chosen, today, prefer_day_first)
    return _checked_against_weekday(window, chosen, parsed) if dated else ReturnDate(parsed)


def _day_after(value: dt.date | None) -> dt.date | None:
    return value + dt.timedelta(days=1) if value is not None and value < dt.date.max else None


def _cued_date(flat: str, *, today: dt.date, prefer_day_first: bool, language: str) -> ReturnDate | None:
    for cue in _RETURN_CUE.finditer(flat):
        window = flat[cue.end(): cue.end() + 40]
        read = _cue_window_date(window, today=today, prefer_day_first=prefer_day_first) or ReturnDate(None)
        if read.date is None and not _DATE.search(window[:25]):
            read = ReturnDate(_dateparser_date(window, today=today, language=language, day_first=prefer_day_first))
        parsed = _day_after(read.date) if cue.group("until") else read.date
        parsed = plausible_return_date(parsed, today=today)
        if parsed is not None:
            return ReturnDate(parsed, read.review_reason)
    return None


def _latest_date(flat: str, *, today: dt.date, prefer_day_first: bool) -> ReturnDate | None:
    candidates = []
    for match in _DATE.finditer(flat):
        if match.group("wd"):
            continue
        read = _checked_against_weekday(flat, match, _parse_date_safely(match, today, prefer_day_first))
        parsed = plausible_return_date(read.date, today=today)
        if parsed is not None:
            candidates.append(ReturnDate(parsed, read.review_reason))
    return max(candidates, key=lambda r: r.date) if candidates else None


def extract_return_date(text: str, *, today: dt.date, language: str = "") -> dt.date | None:
    """The first day the sender is back, from an out-of-office text, or None (see `read_return_date`)."""
    return read_return_date(text, today=today, language=language).date


def read_return_date(text: str, *, today: dt.date, language: str = "") -> ReturnDate:
    """The first day the sender is back, from an out-of-office text (date None when there is none).

    A range ("July 10-31", "vom 3. bis 14. August") gives the day after its end. Else a return cue ("back
    on", "returning", "zurück am", "until", "bis", "de retour le", "hasta el", "fino al", "tot en met",
    "até") followed within a few words by a date; "until X" means back on X + 1 day; a cue our table
    cannot date goes to dateparser. Without a cue, the latest date in the text that is not in the past.
    A date in the past or more than a year after `today` is not a return date (`plausible_return_date`).
    Numeric dates are day-first unless the sender writes (American) English.
    A weekday written before the date that the date contradicts ("until Monday, March 17", a Tuesday) gives
    the later of the date and the nearest such weekday, with a `review_reason` for the operator.
    """
    body = strip_quoted((text or "")[:_MAX_CHARS])
    flat = re.sub(r"\s+", " ", unicodedata.normalize("NFC", body))
    prefer_day_first = (language not in ("", "en")) or bool(_EUROPEAN_SIGNAL.search(flat))
    ranged = _range_end(flat, today)
    if ranged is not None:
        return ReturnDate(ranged)
    cued = _cued_date(flat, today=today, prefer_day_first=prefer_day_first, language=language)
    if cued is not None:
        return cued
    return _latest_date(flat, today=today, prefer_day_first=prefer_day_first) or ReturnDate(None)

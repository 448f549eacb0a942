"""Stop requests in every language we read, found before and independently of any auto-reply logic.

Every language's rules run on every message (a one-word "Afmelden" cannot be told apart by language
detection), on the new text, on the HTML converted to text, and on the subject. Patterns run on
lower-cased, whitespace-collapsed text and have no nested quantifiers (linear on hostile input).
"""
from __future__ import annotations

import re
import unicodedata


def _rx(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


STOP_PHRASES = _rx(
    # English
    r"\bunsubscribe\b", r"\bremove me\b", r"\bremove (?:my|this) (?:e-?mail|address|name|contact)",
    r"\btake me off\b", r"\btake (?:my|this) (?:e-?mail|address|name) off\b",
    r"\bstop (?:e-?mailing|contacting|sending|writing|messaging|spamming|reaching out)\b",
    r"\b(?:do not|don't|dont|never) (?:e-?mail|contact|write to|message|spam) (?:me|us)\b",
    r"\b(?:do not|don't|dont) reach out (?:to (?:me|us) )?again\b",
    r"\bno (?:more|further) (?:e-?mails|emails|messages|contact)\b", r"\bopt (?:me )?out\b",
    r"\bleave me alone\b", r"\bcease (?:all )?(?:contact|communication)", r"^stop[.!]*$",
    r"\bplease stop\b", r"\bspam(?:ming)? me\b", r"\boff your (?:mailing )?list\b",
    r"\bdon't want (?:these|your|any more|more) (?:e-?mails|emails|messages)\b",
    # German
    r"\babmelden\b", r"\bmelden sie mich\b.{0,40}\bab\b", r"\baustragen\b", r"\btragen sie mich\b.{0,40}\baus\b",
    r"\bnicht (?:mehr|weiter) (?:kontaktieren|anschreiben|anrufen|schreiben|mailen|belästigen|senden)\b",
    r"\bkontaktieren sie mich (?:bitte )?nicht\b", r"\bschreiben sie mir (?:bitte )?nicht mehr\b",
    r"\b(?:möchte|will|wünsche) (?:von ihnen )?keine (?:weiteren )?(?:e-?mails|mails|nachrichten|werbung)\b",
    r"\bkeine (?:weiteren )?(?:e-?mails|mails|nachrichten|werbung|kontaktaufnahmen?) mehr\b",
    r"\baus (?:ihrem|dem|ihrer|der) (?:verteiler|liste|e-?mail-?liste|datenbank)\b",
    r"\b(?:entfernen|löschen|streichen|nehmen) sie (?:mich|meine)\b", r"\bunterlassen sie\b",
    # French
    r"\bdésabonn", r"\bdesabonn", r"\bdésinscri", r"\bdesinscri",
    r"\bne (?:plus|pas) me (?:contacter|écrire|recontacter|solliciter)\b", r"\bne plus (?:me )?contacter\b",
    r"\bretirez[- ]moi\b", r"\bsupprimez[- ]moi\b", r"\barrêtez de m'(?:écrire|envoyer|contacter)",
    r"\bme retirer de\b", r"\bne (?:souhaite|veux) plus recevoir\b",
    # Spanish
    r"\bdar(?:me)? de baja\b", r"\bden(?:me)? de baja\b", r"\bdéjenme de\b",
    r"\bno me (?:vuelva[ns]? a )?(?:contacte[ns]?|escriba[ns]?|envíe[ns]?)\b",
    r"\bdej(?:en|e) de (?:escribir|enviar|contactar)", r"\belimín(?:e|en)me\b", r"\beliminarme de\b",
    r"\bb[óo]rr(?:e|en)me\b", r"\belimine mi (?:dirección|correo|e-?mail)\b", r"^baja[.!]*$",
    # Italian
    r"\bcancellatemi\b", r"\bcancellami\b", r"\bcancellarmi\b", r"\brimuovetemi\b", r"\brimuovermi\b",
    r"\brimuovete il mio (?:indirizzo|contatto|nome)\b", r"\bnon (?:mi )?(?:contattatemi|scrivetemi)\b",
    r"\bnon voglio (?:più )?ricevere\b", r"\bdisiscriv",
    # Dutch
    r"\bafmelden\b", r"\bmeld (?:mij|me) (?:dan |alstublieft |aub )?af\b", r"\buitschrijven\b",
    r"\bhaal (?:mij|me) (?:alstublieft |aub )?(?:van|uit)\b", r"\bniet (?:meer )?(?:mailen|contacteren|benaderen)\b",
    r"\bwil (?:die |deze |geen )?(?:niet )?(?:meer )?ontvangen\b", r"\bverwijder (?:mij|me|mijn)\b",
    # Portuguese
    r"\bme remova\b", r"\bremova-me\b", r"\bretire (?:o )?meu (?:e-?mail|endereço|contato|nome)\b",
    r"\bcancelar (?:a )?(?:minha )?inscrição\b", r"\bdescadastr", r"\bnão me (?:enviem|envie|mandem|contatem)\b",
    r"\bnão (?:quero|desejo) (?:mais )?receber\b",
    # Nordic, Polish (the corpus has them; cheap to read)
    r"\bavregistrera\b", r"\bavmeld\b", r"\bafmeld\b", r"\bvill inte få fler\b", r"\bproszę usunąć\b",
    r"\bwypisz\b", r"\bnie pisać\b",
)

# A subject that is nothing but a stop word ("UNSUBSCRIBE", "Baja", "Cancellami", "STOP").
_STOP_SUBJECT = re.compile(
    r"^(?:stop|unsubscribe|remove me|abmelden|austragen|désabonnement|désinscription|stop pub|baja|darme de baja"
    r"|cancellami|cancellazione|afmelden|uitschrijven|descadastrar|cancelar inscrição|remover)[.!]*$"
    r"|(?:^|[-:–] )remove me[.!]*$",
    re.IGNORECASE,
)
_SUBJECT_PREFIX = re.compile(r"^\s*(?:(?:re|aw|wg|fw|fwd|tr|rv|antw|r|res|sv|vs|odp)\s*:\s*)+", re.IGNORECASE)


def flatten(text: str) -> str:
    """Lower-cased, NFC, straight quotes, whitespace collapsed: what every pattern here runs on."""
    text = unicodedata.normalize("NFC", text or "").lower()
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u00a0", " ")
    return " ".join(text.split())


def subject_without_prefix(subject: str) -> str:
    return _SUBJECT_PREFIX.sub("", subject or "").strip()


def stop_requested(*, subject: str, texts: list[str]) -> bool:
    """Whether any part (the subject, the new text, the HTML's text) asks us to stop mailing."""
    subj = flatten(subject_without_prefix(subject))
    if subj and (_STOP_SUBJECT.search(subj) or STOP_PHRASES.search(subj)):
        return True
    return any(STOP_PHRASES.search(flatten(text)) for text in texts if text)

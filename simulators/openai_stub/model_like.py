"""A responder that answers the plan prompt the way a model does: its own plan, written from the prompt.

The demo responder (responders.py) answers with the built-in planner's plan, so an AI path tested with it
only ever sees output that is valid by construction. This one writes its own plan from the prompt's INPUT
block (its own node ids, timings, subjects and copy in the contact's language, optional keys sent as null
the way strict structured outputs send them) and, at a chosen rate, makes the mistakes models make:

- `invalid_json`: the answer is cut off mid-document;
- `missing_node`: a transition points at a node the plan does not have;
- `placeholder`: the intro greets "{{first_name}}";
- `wrong_language`: an English plan for a contact of another language;
- `refusal`: the model refuses (the API's `refusal` field).

Everything is a function of (seed, request): the same request gets the same answer whatever the order or
the concurrency of the calls, so tests are deterministic. A repair request (one that carries the model's
earlier answer) is answered with a clean plan, unless `repair_fault_rate` makes it repeat its fault.
Other prompts (lead analysis, reply classification) go to `others` (the demo responder by default).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from typing import Any

from outreach.ai.offline import NoOfflineAnswer, offline_responders, prompt_name_of
from simulators.openai_stub.responders import demo_responder
from simulators.openai_stub.server import Responder, StubResponse, chat_json, chat_text, error

FAULTS = ("invalid_json", "missing_node", "placeholder", "wrong_language", "refusal")
REFUSAL = "I'm sorry, but I can't help with writing this outreach."

# A model's few habits per language: greeting, opener, ask, follow-up, break-up, sign-off.
_COPY: dict[str, dict[str, str]] = {
    "en": {"hi": "Hi {name},", "none": "Hello,", "open": "I noticed {company} and had an idea about {topic}.",
           "ask": "Would you be open to a short call next week?", "follow": "Circling back on my note about {company}.",
           "value": "Many teams start with one small workflow and measure the difference.",
           "bye": "I won't keep writing; if the timing is better later, just reply.", "sign": "Best,",
           "subject": "Idea for {company}", "re": "Re: "},
    "de": {"hi": "Hallo {name},", "none": "Guten Tag,",
           "open": "mir ist {company} aufgefallen, und ich hätte eine Idee.",
           "ask": "Hätten Sie nächste Woche Zeit für ein kurzes Gespräch?",
           "follow": "ich komme noch einmal auf meine Nachricht zu {company} zurück.",
           "value": "Viele Teams beginnen mit einem kleinen Ablauf und messen den Unterschied.",
           "bye": "ich schreibe Ihnen nicht weiter; wenn es später passt, antworten Sie einfach.",
           "sign": "Viele Grüße",
           "subject": "Idee für {company}", "re": "AW: "},
    "fr": {"hi": "Bonjour {name},", "none": "Bonjour,", "open": "J'ai remarqué {company} et j'ai une idée pour vous.",
           "ask": "Seriez-vous disponible pour un court échange la semaine prochaine ?",
           "follow": "Je reviens vers vous au sujet de {company}.",
           "value": "Beaucoup d'équipes commencent par un petit processus et mesurent la différence.",
           "bye": "Je ne vous relancerai plus ; si le moment est meilleur plus tard, répondez simplement.",
           "sign": "Cordialement,", "subject": "Une idée pour {company}", "re": "RE : "},
    "es": {"hi": "Hola, {name}:", "none": "Hola:", "open": "Me fijé en {company} y tengo una idea para ustedes.",
           "ask": "¿Le vendría bien una llamada breve la semana que viene?",
           "follow": "Vuelvo sobre mi mensaje acerca de {company}.",
           "value": "Muchos equipos empiezan con un proceso pequeño y miden la diferencia.",
           "bye": "No le escribiré más; si más adelante es buen momento, responda sin más.", "sign": "Un saludo,",
           "subject": "Una idea para {company}", "re": "RE: "},
    "pt": {"hi": "Olá, {name},", "none": "Olá,", "open": "Conheci a {company} e tenho uma ideia para vocês.",
           "ask": "Você teria tempo para uma conversa rápida na próxima semana?",
           "follow": "Retomo a minha mensagem sobre a {company}.",
           "value": "Muitas equipes começam com um processo pequeno e medem a diferença.",
           "bye": "Não vou escrever mais; se for um momento melhor depois, é só responder.", "sign": "Abraço,",
           "subject": "Uma ideia para a {company}", "re": "RE: "},
    "nl": {"hi": "Hoi {name},", "none": "Goedendag,", "open": "Ik zag {company} en heb een idee voor jullie.",
           "ask": "Heb je volgende week tijd voor een kort gesprek?",
           "follow": "Ik kom terug op mijn bericht over {company}.",
           "value": "Veel teams beginnen met één klein proces en meten het verschil.",
           "bye": "Ik schrijf je niet meer; als het later beter uitkomt, antwoord dan gewoon.", "sign": "Groet,",
           "subject": "Idee voor {company}", "re": "Re: "},
    "it": {"hi": "Buongiorno {name},", "none": "Buongiorno,", "open": "Ho notato {company} e ho un'idea per voi.",
           "ask": "Avrebbe tempo per una breve chiamata la prossima settimana?",
           "follow": "Torno sul mio messaggio riguardo a {company}.",
           "value": "Molti team iniziano da un piccolo processo e misurano la differenza.",
           "bye": "Non Le scriverò più; se più avanti è il momento giusto, basta rispondere.",
           "sign": "Cordiali saluti,",
           "subject": "Un'idea per {company}", "re": "R: "},
}


def _rng(seed: int, request_json: Any, salt: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{salt}:{json.dumps(request_json, sort_keys=True)}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _language(inputs: dict[str, Any]) -> str:
    code = str((inputs.get("contact") or {}).get("language") or "").lower().replace("_", "-").split("-")[0]
    return code if code in _COPY else "en"


def _t(on: str, to: str, *, after: str | None = None, within: str | None = None) -> dict[str, Any]:
    return {"on": on, "to": to, "after": after, "within": within}


def write_plan(inputs: dict[str, Any], *, rng: random.Random, language: str) -> dict[str, Any]:
    """A plan as a model writes one for these inputs: 3-4 emails, nulls for unused optional keys."""
    contact, lead = inputs.get("contact") or {}, inputs.get("lead") or {}
    words = _COPY[language]
    name = str(contact.get("first_name") or "").strip()
    company = str(lead.get("name") or "").strip() or "your team"
    pains = [str(p) for p in lead.get("pains") or []]
    topic = pains[0] if pains else "how your team works today"
    greeting = words["hi"].format(name=name) if name else words["none"]
    sender = str((inputs.get("brief") or {}).get("sender_name") or "").strip()
    sign = "\n\n" + words["sign"] + (f"\n{sender}" if sender else "")
    ids = rng.choice([["intro", "follow_up", "value", "breakup"], ["email_1", "email_2", "email_3", "email_4"],
                      ["first_touch", "second_touch", "third_touch", "last_touch"]])
    count = rng.choice([3, 4])
    ids = ids[:count - 1] + [ids[-1]]
    bodies = [f"{words['open'].format(company=company, topic=topic)} {words['ask']}",
              words["follow"].format(company=company), f"{words['value']} {words['ask']}", words["bye"]]
    bodies = bodies[:count - 1] + [bodies[-1]]
    subject = words["subject"].format(company=company)
    nodes = []
    for index, node_id in enumerate(ids):
        next_id = ids[index + 1] if index + 1 < len(ids) else "done"
        transitions = [_t("meeting_booked", "booked"), _t("reply_positive", "interested"), _t("reply", "replied"),
                       _t("no_reply", next_id, after=f"P{rng.randint(3, 6)}D")]
        nodes.append({"id": node_id, "type": "send", "channel": "email",
                      "message": {"subject": subject if index == 0 else words["re"] + subject,
                                  "text": f"{greeting}\n\n{bodies[index]}{sign}", "html": None},
                      "transitions": transitions})
    nodes += [{"id": "booked", "type": "stop", "reason": "meeting_booked"},
              {"id": "interested", "type": "stop", "reason": "interested"},
              {"id": "replied", "type": "stop", "reason": "replied"}, {"id": "done", "type": "stop", "reason": None}]
    zone = str(contact.get("timezone") or "UTC")
    return {"version": "1.0", "timezone": zone, "quietHours": {"start": "20:00", "end": "08:00"},
            "sendDays": ["mon", "tue", "wed", "thu", "fri"], "startNodeId": ids[0], "nodes": nodes, "metadata": None}


def _is_repair(request_json: Any) -> bool:
    return any(m.get("role") == "assistant" for m in (request_json or {}).get("messages") or [])


@dataclasses.dataclass
class ModelLikeResponder:
    """Answers `plan` prompts like a model, with faults at `fault_rate` (0..1) chosen from `faults`."""

    fault_rate: float = 0.0
    seed: int = 0
    faults: tuple[str, ...] = FAULTS
    repair_fault_rate: float = 0.0
    others: Responder = demo_responder

    def fault_for(self, request_json: Any, inputs: dict[str, Any]) -> str | None:
        rng = _rng(self.seed, request_json, "fault")
        rate = self.repair_fault_rate if _is_repair(request_json) else self.fault_rate
        if rng.random() >= rate:
            return None
        english = _language(inputs) == "en"
        choices = [f for f in self.faults if not (f == "wrong_language" and english)]
        return rng.choice(choices) if choices else None

    def __call__(self, request_json: Any) -> StubResponse:
        if prompt_name_of(request_json) != "plan":
            return self.others(request_json)
        try:
            inputs = json.loads(offline_responders.data_block("plan", request_json))
        except (NoOfflineAnswer, ValueError):
            return error(400, "stub: the plan prompt carries no INPUT block", error_type="invalid_request_error")
        fault = self.fault_for(request_json, inputs)
        if fault == "refusal":
            return chat_text("", refusal=REFUSAL, prompt_tokens=1800, completion_tokens=20)
        language = "en" if fault == "wrong_language" else _language(inputs)
        plan = write_plan(inputs, rng=_rng(self.seed, request_json, "plan"), language=language)
        if fault == "missing_node":
            plan["nodes"][0]["transitions"][-1]["to"] = "follow_up_9"
        if fault == "placeholder":
            first = plan["nodes"][0]["message"]
            first["text"] = "Hi {{first_name}},\n\n" + first["text"].split("\n\n", 1)[1]
        usage = {"prompt_tokens": len(json.dumps(request_json)) // 4, "completion_tokens": 800}
        if fault == "invalid_json":
            return chat_text(json.dumps(plan)[:-60], **usage)
        return chat_json(plan, **usage)

"""What words in a map say: orders, quotas, training, selling, reporting, sanctions, set
hours and approval gates, in English and Spanish.

Every pattern matches whole words, case-insensitively. The lists are deliberately short and
concrete: a rule that cries wolf teaches reviewers to ignore it, so each pattern here is
paired with near-miss wording in tests/compliance that must not match. Words are read in
context: "qualify" is training only when the contractor is the one qualifying (not "the
qualifying questions" a seller asks a prospect), and a sentence that offers a choice ("if you
like", "you could", "si quieres") demands nothing.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from engine.definitions.model import Step

_FLAGS = re.IGNORECASE

# Phrases that turn a suggestion into an order.
_ORDER = re.compile(
    r"\b(?:must|always|never|required to|(?:is|are) required|ha(?:ve|s|d) to|mandatory|"
    r"compulsory|obligatory|obligated|obliged|you shall|shall|non-negotiable|no exceptions|"
    r"without exception|failure to|do not fail|don't fail|(?:you are|you're) expected to|"
    r"debes|deber[áa]s|tienes que|tendr[áa]s que|hay que|obligatori[oa]s?|siempre|nunca|"
    r"es necesario que|sin excepci[óo]n|est[áa] prohibido|se requiere|es requisito)\b",
    _FLAGS)
# Words right before an order phrase that turn it into a permission ("you can always skip",
# "you don't have to", "it isn't mandatory").
_PERMISSIVE = frozenset({"not", "no", "never", "can", "could", "may", "might", "free", "needn't",
                         "nunca", "puedes", "puede", "podrías", "podrias"})
_NEVER_PERMITS = re.compile(r"^\s+(?:ha(?:ve|s) to|need to|required|mandatory|obliged|obligated|"
                            r"tienes que|es obligatorio|hace falta)", _FLAGS)
_ALWAYS_PERMITS = re.compile(r"^\s+(?:puedes|podr[áa]s|puede)\b", _FLAGS)

_NUMBER = (r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|"
           r"twenty(?:-five)?|thirty|forty|fifty|a hundred|hundred|a dozen|dozen|"
           r"uno|una|dos|tres|cuatro|cinco|seis|siete|ocho|nueve|diez|quince|veinte|"
           r"treinta|cincuenta|cien)")
_ACTIVITY = (r"(?:contacts?|calls?|sales|orders?|meetings?|prospects?|presentations?|leads?|"
             r"recruits?|enrol?lments?|visits?|posts?|shares?|demos?|parties|party|"
             r"appointments?|people|persons|conversations?|invit(?:es?|ations?)|messages?|"
             r"hours?|doors?|dials?|llamadas?|contactos?|ventas?|pedidos?|citas?|"
             r"presentaciones|presentaci[óo]n|prospectos?|invitaciones|mensajes?|"
             r"publicaciones|horas?|personas|visitas?)")
_MINIMUM = (r"(?:at least|a minimum of|minimum of|minimum|min\.?|no fewer than|no less than|"
            r"not less than|not fewer than|a quota of|quota of|a target of|target of|"
            r"al menos|como m[íi]nimo|un m[íi]nimo de|m[íi]nimo|no menos de|una cuota de)")
_RATE = (r"(?:(?:a|per|each|every)\s+(?:day|week|month|shift|night)|daily|weekly|"
         r"(?:al|por|cada)\s+(?:d[íi]a|semana|mes)|a la semana|diari[oa]s|semanales)")
_QUOTA = re.compile(
    rf"\b{_MINIMUM}\s+{_NUMBER}\s+(?:\w+\s+){{0,2}}?{_ACTIVITY}\b"
    rf"|\b{_NUMBER}\s+(?:\w+\s+){{0,2}}?{_ACTIVITY}\s+{_RATE}\b"
    r"|\b(?:quotas?|cuotas?)\b", _FLAGS)

_TRAINING = re.compile(
    r"\b(?:train(?:ing|ings|ed)?|courses?|modules?|certif\w*|exams?|quiz\w*|"
    r"webinars?|(?<!-)class(?:es)?(?!-)|orientation|academy|lessons?|tutorials?|boot ?camp|"
    r"capacitaci[óo]n|entrenamiento|cursos?|m[óo]dulos?|certificaci[óo]n|ex[áa]men(?:es)?|"
    r"clases?|academia|formaci[óo]n|taller(?:es)?)\b", _FLAGS)
# "Qualify" is training when the contractor qualifies, never when they qualify a prospect.
_QUALIFYING = re.compile(
    r"\b(?:get|gets|getting|become|becomes|be|are|is|you're|until you(?:'re| are)?)\s+"
    r"(?:\w+\s+)?qualified\b(?!\s+(?:prospects?|leads?|customers?|buyers?))"
    r"|\bqualif(?:ication|ying)\s+(?:course|exam|test|module|training|quiz|program|class)"
    r"|\bqualify\s+(?:yourself|as\s+an?\b|to\s+(?:sell|enroll|recruit|start|work))"
    r"|\bcalificaci[óo]n\s+(?:como|para)\s+(?:distribuidor|vender)", _FLAGS)
_SELLING = re.compile(
    r"\b(?:sell\w*|sales?|orders?|customers?|prospects?|contacts?|enrol\w*|recruit\w*|"
    r"invit\w*|share|sharing|pitch\w*|present(?:ation|ations|ing)?|follow[- ]?ups?|leads?|"
    r"demos?|part(?:y|ies)|offer\w*|clos(?:e|ing)|deals?|qualifying questions?|"
    r"vend\w*|ventas?|clientes?|prospectos?|contactos?|pedidos?|inscri\w*|invita\w*|"
    r"compart\w*|presentaci[óo]n|seguimiento|ofert\w*)\b", _FLAGS)

_REPORT = re.compile(
    r"\b(?:report(?:s|ing)?|check[- ]?ins?|status update|progress update|activity log|"
    r"time ?sheets?|log your (?:activity|hours|calls|contacts)|submit|debrief|"
    r"informes?|reportes?|report[ae]r?|inform[ae]r?)\b", _FLAGS)
_REPORT_COMPOUND = re.compile(
    r"\b(?:daily|weekly|monthly|end[- ]of[- ](?:day|week)|activity|sales|call)\s+"
    r"(?:reports?|updates?|check[- ]?ins?|logs?)\b|\btime ?sheets?\b"
    r"|\b(?:informes?|reportes?)\s+(?:diari[oa]s?|semanal(?:es)?|de actividad)\b", _FLAGS)
_STAFF = re.compile(
    r"\b(?:managers?|supervisors?|upline|sponsors?|team lead(?:er)?s?|leaders?|head office|"
    r"home office|corporate|company|staff|directors?|admin(?:istrator)?s?|the office|"
    r"patrocinador(?:es|a)?|l[íi]nea ascendente|gerentes?|supervisor(?:es|a)?|l[íi]der(?:es)?|"
    r"la oficina|la empresa)\b", _FLAGS)
STAFF_ROLES = frozenset({"manager", "staff", "supervisor", "admin", "company", "corporate",
                         "office", "director", "leader", "upline"})

_SANCTION = re.compile(
    r"\b(?:late|lateness|overdue|missed|penalt\w*|warn(?:ing|ings|ed)?|deactivat\w*|"
    r"terminat\w*|suspen\w*|forfeit\w*|demot\w*|reassign\w*|escalat\w*|disciplin\w*|"
    r"revok\w*|remov(?:e|ed|al)|tarde|retras\w*|penaliza\w*|advertencia|sanci[óo]n\w*|"
    r"suspend\w*|desactiva\w*|dar de baja|dado de baja)\b", _FLAGS)

_COUNT_MARKERS = frozenset({"count", "num", "number", "n", "made", "added", "sent", "booked",
                            "held", "logged", "done", "completed", "per", "daily", "weekly"})
_PLURAL_ACTIVITIES = frozenset({
    "contacts", "calls", "sales", "orders", "meetings", "prospects", "presentations", "leads",
    "recruits", "enrollments", "enrolments", "visits", "posts", "shares", "demos", "parties",
    "appointments", "activities", "hours", "dials", "doors", "invites", "invitations",
})
_SINGULAR_ACTIVITIES = frozenset({
    "contact", "call", "sale", "order", "meeting", "prospect", "presentation", "lead", "recruit",
    "enrollment", "enrolment", "visit", "post", "share", "demo", "party", "appointment",
    "activity", "hour", "dial", "door", "invite", "invitation",
})
_TRAINING_TOKENS = frozenset({"training", "trained", "train", "certified", "certification",
                              "certificate", "qualified", "qualification", "course", "exam",
                              "quiz", "module", "modules", "passed", "orientation",
                              "capacitacion", "capacitado", "certificado", "curso", "examen"})
# A variable about the prospect (lead_qualified) is not the contractor's training.
_PROSPECT_TOKENS = frozenset({"prospect", "lead", "customer", "buyer", "client", "cliente",
                              "prospecto", "interest", "interested"})


def _norm(text: str) -> str:
    return text.replace("\u2019", "'").replace("\u2018", "'")


CARD_PREFIX = "card."


def cards(step: Step) -> list[str]:
    """The step's card and its translations (properties `card.<locale>`, e.g. `card.es-MX`)."""
    found = [step.card] if step.card else []
    found += [v for k, v in sorted(step.properties.items())
              if k.lower().startswith(CARD_PREFIX) and v.strip()]
    return found


def described(step: Step, *, hook: bool = True) -> str:
    """The words a step is known by: id, name, hook and cards, with ids split into words."""
    parts = [re.sub(r"[_.\-]+", " ", step.id), step.name]
    if hook and step.hook:
        parts.append(re.sub(r"[_.\-]+", " ", step.hook))
    parts += cards(step)
    return _norm(" \u2022 ".join(parts))


def orders(text: str) -> list[str]:
    """Phrases in `text` that command rather than suggest, as written."""
    text = _norm(text)
    found = []
    for match in _ORDER.finditer(text):
        before = re.findall(r"[\w']+", text[: match.start()])[-2:]
        if any(w.lower() in _PERMISSIVE or w.lower().endswith("n't") for w in before):
            continue
        if match.group().lower() in ("never", "nunca") and _NEVER_PERMITS.match(
                text[match.end():]):
            continue
        if match.group().lower() == "siempre" and _ALWAYS_PERMITS.match(text[match.end():]):
            continue
        found.append(match.group())
    return found


def quotas(text: str) -> list[str]:
    """Activity minimums or quotas demanded in `text` ("at least 20 calls", "5 posts a day")."""
    return [m.group() for m in _QUOTA.finditer(_norm(text))]


def is_training(text: str) -> bool:
    return bool(_TRAINING.search(text) or _QUALIFYING.search(text))


def is_selling(text: str) -> bool:
    return bool(_SELLING.search(text)) and not is_training(text)


def is_reporting(step: Step) -> bool:
    """The step reports to the company's staff: a report to a manager, sponsor or the office,
    a daily or weekly activity report or timesheet, or a report term on a staff role's step."""
    text = described(step, hook=False)
    if _REPORT_COMPOUND.search(text):
        return True
    if not _REPORT.search(text):
        return False
    return bool(_STAFF.search(text)) or step.role.lower() in STAFF_ROLES


def sanctions(text: str) -> list[str]:
    return [m.group() for m in _SANCTION.finditer(_norm(text))]


def _tokens(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [t.lower() for t in re.split(r"[\W_]+", spaced) if t]


def is_activity_count(name: str) -> bool:
    """A variable counting the contractor's activity: calls_made, contactsAdded, num_sales."""
    tokens = _tokens(name)
    if any(t in _PLURAL_ACTIVITIES for t in tokens):
        return True
    return any(t in _SINGULAR_ACTIVITIES for t in tokens) and any(
        t in _COUNT_MARKERS for t in tokens)


def is_training_status(name: str) -> bool:
    """A variable recording training or qualification: training_done, isCertified (not
    lead_qualified, which is about the prospect)."""
    tokens = _tokens(name)
    return any(t in _TRAINING_TOKENS for t in tokens) and not any(
        t in _PROSPECT_TOKENS for t in tokens)


_JUEL_WORDS = {"eq": "==", "ne": "!=", "lt": "<", "gt": ">", "le": "<=", "ge": ">=",
               "true": "True", "false": "False", "null": "None"}
_JUEL_WORD = re.compile(rf"(?<![\w.'\"])({'|'.join(_JUEL_WORDS)})\b")


def _python(condition: str) -> str:
    """A Camunda JUEL condition (`${calls ge 20 && ok}`) as a Python expression (only as far
    as finding names and comparisons needs: the engine's evaluator does the real work)."""
    text = condition.strip()
    if not (text.startswith(("${", "#{")) and text.endswith("}")):
        return text
    text = _JUEL_WORD.sub(lambda m: f" {_JUEL_WORDS[m[1]]} ", text[2:-1])
    text = text.replace("&&", " and ").replace("||", " or ")
    return re.sub(r"!(?!=)", " not ", text).strip()


def _names(node: ast.AST) -> Iterator[str]:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            yield sub.id
        elif isinstance(sub, ast.Attribute):
            yield sub.attr


_THRESHOLD = re.compile(
    r"([A-Za-z_][\w.]*)\s*(?:>=|<=|>|<|==|!=)\s*\d+(?:\.\d+)?"
    r"|\d+(?:\.\d+)?\s*(?:>=|<=|>|<|==|!=)\s*([A-Za-z_][\w.]*)")


def counted(condition: str) -> list[str]:
    """Activity counts that `condition` compares with a number (`calls_made >= 20` → calls_made;
    `len(contacts) > 9` → contacts)."""
    try:
        tree = ast.parse(_python(condition), mode="eval")
    except SyntaxError:
        pairs = _THRESHOLD.findall(condition)
        return [n for pair in pairs for n in pair if n and is_activity_count(n)]
    found: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        numeric = any(isinstance(s, ast.Constant) and isinstance(s.value, int | float)
                      and not isinstance(s.value, bool) for s in sides)
        if numeric:
            found += [n for s in sides for n in _names(s) if is_activity_count(n)]
    return list(dict.fromkeys(found))


def training_conditions(condition: str) -> list[str]:
    """Training or qualification variables `condition` reads (`certified == True`)."""
    try:
        tree = ast.parse(_python(condition), mode="eval")
    except SyntaxError:
        return [n for n in re.findall(r"[A-Za-z_]\w*", condition) if is_training_status(n)]
    return list(dict.fromkeys(n for n in _names(tree) if is_training_status(n)))


# A sentence that offers a choice demands nothing.
_CHOICE = re.compile(
    r"\b(?:if you(?:'d)? (?:like|want|wish|prefer)|if it (?:suits|helps|works for) you|"
    r"you (?:could|might|may|can)(?!'t|not| not)|optional|whenever (?:it )?suits you|up to you|"
    r"no pressure|si (?:quieres|lo deseas|te conviene|te ayuda)|(?<!no )puedes|podr[íi]as|"
    r"opcional|"
    r"cuando te convenga)\b", _FLAGS)
_CONDITION = re.compile(
    r"\b(?:if you (?:don't|do not|haven't|have not|fail to|miss|skip)|unless you|otherwise|"
    r"or else|failing that|si no|a menos que|de lo contrario|de no hacerlo)\b", _FLAGS)
_LOSS = re.compile(
    r"\b(?:(?:you )?(?:won't|will not|no longer|will stop) (?:receive|get|be (?:given|"
    r"assigned|sent)|have access)|los(?:e|es|ing) (?:access|your (?:leads|contacts|spot|"
    r"position|account|status|territory|bonus)|(?:new |the )?(?:leads|contacts|prospects))|"
    r"(?:be|get|are|is) (?:removed|deactivated|suspended|terminated|dropped|downgraded)|"
    r"(?:leads|contacts|prospects|access) (?:will be|are|get) (?:paused|removed|withheld|"
    r"taken away|reassigned)|no recibir[áa]s|dejar[áa]s de recibir|perder[áa]s|"
    r"ser[áa]s (?:dad[oa] de baja|eliminad[oa]|suspendid[oa])|se te (?:quitar[áa]n|"
    r"suspender[áa]))", _FLAGS)
_DAYS = (r"(?:every|each)\s+(?:day|morning|evening|weekday|week ?day|monday|tuesday|wednesday|"
         r"thursday|friday|saturday|sunday)|weekdays|daily|monday (?:to|through) friday|"
         r"todos los d[íi]as|cada (?:d[íi]a|ma[ñn]ana|tarde|lunes|martes|mi[ée]rcoles|jueves|"
         r"viernes|s[áa]bado|domingo)|de lunes a viernes|entre semana")
_CLOCK = (r"(?:at|from|by|before|until|between)\s+\d{1,2}(?::\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.|h)?"
          r"(?:\s*(?:to|and|-|until)\s*\d{1,2}(?::\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.|h)?)?|"
          r"(?:a las|de las|desde las|antes de las|hasta las|de)\s+\d{1,2}(?::\d{2})?"
          r"(?:\s*(?:a|hasta)\s*(?:las\s+)?\d{1,2}(?::\d{2})?)?")
_HOURS = re.compile(
    rf"\b(?:{_DAYS})\b[^.;!?]*?\b(?:{_CLOCK})\b|\b(?:{_CLOCK})\b[^.;!?]*?\b(?:{_DAYS})\b|"
    r"\b(?:your (?:shift|working hours|work hours)|(?:working|work) hours are|"
    r"tu turno|tu horario(?: de trabajo)?|horario de trabajo)\b", _FLAGS)
_TO_STAFF = re.compile(
    r"\b(?:send|give|share|email|text|submit|post|report|update|tell|show|env[íi]a|manda|"
    r"comparte|reporta|informa|entrega)\b[^.;!?]*?\b(?:upline|sponsor|manager|team lead(?:er)?|"
    r"leader|supervisor|the office|patrocinador|l[íi]nea ascendente|gerente|l[íi]der|"
    r"supervisor)\b|\b(?:upline|sponsor|manager|leader|patrocinador|l[íi]der)\s+(?:needs|"
    r"wants|expects|requires|asks for|must (?:get|receive|see)|necesita|espera|quiere)\b",
    _FLAGS)
_RESULTS = re.compile(
    r"\b(?:numbers|results|stats|statistics|activity|tracker|figures|progress|report|"
    r"n[úu]meros|resultados|actividad|avance|reporte|informe)\b", _FLAGS)
_SCHEDULE = re.compile(
    rf"\b(?:{_DAYS}|weekly|every week|each week|every (?:\w+ )?(?:friday|monday|sunday)|"
    r"semanal(?:mente)?|cada semana|diariamente|end of (?:the )?(?:day|week))\b", _FLAGS)
_APPROVAL = re.compile(
    r"\b(?:once|when|after|until|unless|as soon as)\s+(?:your|the)\s+(?:upline|sponsor|manager|"
    r"team lead(?:er)?|leader|supervisor|director)\s+(?:has\s+)?(?:approves?|approved|signs? off|"
    r"okays?|gives? (?:the|their|you the) (?:ok|okay|go-ahead)|confirms?|releases?)"
    r"|\b(?:with|needs?|requires?|subject to|pending|without)\s+(?:the\s+)?(?:your\s+)?"
    r"(?:upline|sponsor|manager|leader|supervisor)(?:'s)?\s+approval"
    r"|\bapproval (?:of|from) your (?:upline|sponsor|manager|leader|supervisor)"
    r"|\b(?:cuando|hasta que|una vez que|despu[ée]s de que)\s+tu\s+(?:patrocinador|"
    r"l[íi]nea ascendente|upline|l[íi]der|gerente)\s+(?:lo\s+|la\s+|te\s+)?(?:apruebe|autorice|"
    r"d[ée] (?:el|su) visto bueno)"
    r"|\b(?:con|requiere|sin)\s+la\s+aprobaci[óo]n\s+de\s+tu\s+(?:patrocinador|"
    r"l[íi]nea ascendente|upline|l[íi]der|gerente)", _FLAGS)


def sentences(text: str) -> list[str]:
    """`text` cut at sentence ends (. ! ? and bullets), trimmed, empty ones left out."""
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\s*\u2022\s*|\n+", _norm(text))
            if s.strip()]


def _demanding(sentence: str) -> bool:
    return not _CHOICE.search(sentence)


def threats(text: str) -> list[str]:
    """Sentences of `text` that tie a loss to not doing as told ("if you don't, you won't
    receive new contacts", "si no lo haces, perderás tus prospectos")."""
    return [s for s in sentences(text) if _CONDITION.search(s) and _LOSS.search(s)]


def set_hours(text: str) -> list[str]:
    """Working hours or shifts `text` sets ("every weekday at 9am", "de lunes a viernes de 9 a
    5"), unless the sentence offers them as a choice."""
    return [m.group() for s in sentences(text) if _demanding(s)
            for m in _HOURS.finditer(s)]


def demanded_reports(text: str) -> list[str]:
    """Sentences of `text` that ask the contractor to report their results to a sponsor,
    upline or the office on a schedule or as an order, unless offered as a choice."""
    return [s for s in sentences(text) if _demanding(s) and _TO_STAFF.search(s)
            and _RESULTS.search(s) and (_SCHEDULE.search(s) or orders(s))]


def approval_gates(text: str) -> list[str]:
    """Phrases of `text` that make the contractor's work wait on an upline's approval ("new
    prospects are unlocked once your upline approves")."""
    return [m.group() for m in _APPROVAL.finditer(_norm(text))]

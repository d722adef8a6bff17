"""What words in a map say: orders, quotas, training, selling, reporting, sanctions.

Every pattern matches whole words, case-insensitively. The lists are deliberately short and
concrete: a rule that cries wolf teaches reviewers to ignore it, so each pattern here is
paired with near-miss wording in tests/compliance that must not match.
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
    r"without exception|failure to|do not fail|don't fail|(?:you are|you're) expected to)\b",
    _FLAGS)
# Words right before an order phrase that turn it into a permission ("you can always skip",
# "you don't have to", "it isn't mandatory").
_PERMISSIVE = frozenset({"not", "no", "never", "can", "could", "may", "might", "free", "needn't"})
_NEVER_PERMITS = re.compile(r"^\s+(?:ha(?:ve|s) to|need to|required|mandatory|obliged|obligated)",
                            _FLAGS)

_NUMBER = (r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|"
           r"twenty(?:-five)?|thirty|forty|fifty|a hundred|hundred|a dozen|dozen)")
_ACTIVITY = (r"(?:contacts?|calls?|sales|orders?|meetings?|prospects?|presentations?|leads?|"
             r"recruits?|enrol?lments?|visits?|posts?|shares?|demos?|parties|party|"
             r"appointments?|people|persons|conversations?|invit(?:es?|ations?)|messages?|"
             r"hours?|doors?|dials?)")
_MINIMUM = (r"(?:at least|a minimum of|minimum of|minimum|min\.?|no fewer than|no less than|"
            r"not less than|not fewer than|a quota of|quota of|a target of|target of)")
_RATE = r"(?:(?:a|per|each|every)\s+(?:day|week|month|shift|night)|daily|weekly)"
_QUOTA = re.compile(
    rf"\b{_MINIMUM}\s+{_NUMBER}\s+(?:\w+\s+){{0,2}}?{_ACTIVITY}\b"
    rf"|\b{_NUMBER}\s+(?:\w+\s+){{0,2}}?{_ACTIVITY}\s+{_RATE}\b"
    r"|\bquotas?\b", _FLAGS)

_TRAINING = re.compile(
    r"\b(?:train(?:ing|ings|ed)?|courses?|modules?|certif\w*|qualif\w*|exams?|quiz\w*|"
    r"webinars?|class(?:es)?|orientation|academy|lessons?|tutorials?|boot ?camp)\b", _FLAGS)
_SELLING = re.compile(
    r"\b(?:sell\w*|sales?|orders?|customers?|prospects?|contacts?|enrol\w*|recruit\w*|"
    r"invit\w*|share|sharing|pitch\w*|present(?:ation|ations|ing)?|follow[- ]?ups?|leads?|"
    r"demos?|part(?:y|ies)|offer\w*|clos(?:e|ing)|deals?)\b", _FLAGS)

_REPORT = re.compile(
    r"\b(?:report(?:s|ing)?|check[- ]?ins?|status update|progress update|activity log|"
    r"time ?sheets?|log your (?:activity|hours|calls|contacts)|submit|debrief)\b", _FLAGS)
_REPORT_COMPOUND = re.compile(
    r"\b(?:daily|weekly|monthly|end[- ]of[- ](?:day|week)|activity|sales|call)\s+"
    r"(?:reports?|updates?|check[- ]?ins?|logs?)\b|\btime ?sheets?\b", _FLAGS)
_STAFF = re.compile(
    r"\b(?:managers?|supervisors?|upline|sponsors?|team lead(?:er)?s?|leaders?|head office|"
    r"home office|corporate|company|staff|directors?|admin(?:istrator)?s?|the office)\b", _FLAGS)
STAFF_ROLES = frozenset({"manager", "staff", "supervisor", "admin", "company", "corporate",
                         "office", "director", "leader", "upline"})

_SANCTION = re.compile(
    r"\b(?:late|lateness|overdue|missed|penalt\w*|warn(?:ing|ings|ed)?|deactivat\w*|"
    r"terminat\w*|suspen\w*|forfeit\w*|demot\w*|reassign\w*|escalat\w*|disciplin\w*|"
    r"revok\w*|remov(?:e|ed|al))\b", _FLAGS)

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
                              "quiz", "module", "modules", "passed", "orientation"})


def _norm(text: str) -> str:
    return text.replace("\u2019", "'").replace("\u2018", "'")


def described(step: Step, *, hook: bool = True) -> str:
    """The words a step is known by: id, name, hook and card, with ids split into words."""
    parts = [re.sub(r"[_.\-]+", " ", step.id), step.name]
    if hook and step.hook:
        parts.append(re.sub(r"[_.\-]+", " ", step.hook))
    if step.card:
        parts.append(step.card)
    return _norm(" \u2022 ".join(parts))


def orders(text: str) -> list[str]:
    """Phrases in `text` that command rather than suggest, as written."""
    text = _norm(text)
    found = []
    for match in _ORDER.finditer(text):
        before = re.findall(r"[\w']+", text[: match.start()])[-2:]
        if any(w.lower() in _PERMISSIVE or w.lower().endswith("n't") for w in before):
            continue
        if match.group().lower() == "never" and _NEVER_PERMITS.match(text[match.end():]):
            continue
        found.append(match.group())
    return found


def quotas(text: str) -> list[str]:
    """Activity minimums or quotas demanded in `text` ("at least 20 calls", "5 posts a day")."""
    return [m.group() for m in _QUOTA.finditer(_norm(text))]


def is_training(text: str) -> bool:
    return bool(_TRAINING.search(text))


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
    """A variable recording training or qualification: training_done, isCertified."""
    return any(t in _TRAINING_TOKENS for t in _tokens(name))


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

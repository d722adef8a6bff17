"""The rule catalogue: each control indicator, the factors it evidences and the sources it cites.

Sources (`SOURCES`) are the recognised tests of whether a worker is an employee or an
independent contractor:

* Rev. Rul. 87-41 — the IRS's twenty common-law factors (instructions, training, set hours,
  order or sequence set, oral or written reports, right to discharge, ...);
* IRS Publication 15-A — the IRS's three categories of evidence: behavioral control,
  financial control and the relationship of the parties;
* IRC §3508 — direct sellers as statutory non-employees for federal tax purposes;
* the ABC test, prong A (free from control and direction, under the contract and in fact):
  California Labor Code §2775, Massachusetts G.L. c.149 §148B;
* the U.S. Department of Labor's economic-reality test under the FLSA (29 CFR part 795):
  the nature and degree of control over the work.

Every rule has a section in docs/compliance.md (`Rule.anchor`) saying what it looks for,
why it matters and how to fix it; `python -m compliance.catalogue` writes those sections.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SEVERITIES = ("info", "low", "medium", "high")
DOC = "docs/compliance.md"
_BEGIN, _END = "<!-- rules: begin (python -m compliance.catalogue) -->", "<!-- rules: end -->"


@dataclass(frozen=True)
class Source:
    """A law, ruling or agency test a rule cites. `says` is what it holds, in short."""

    id: str
    citation: str
    says: str

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "citation": self.citation, "says": self.says}


REV_RUL_87_41 = Source(
    "rev-rul-87-41", "Rev. Rul. 87-41, 1987-1 C.B. 296",
    "the IRS's twenty common-law factors showing whether the business has the right to "
    "direct and control how the worker does the work")
IRS_CATEGORIES = Source(
    "irs-three-categories", "IRS Publication 15-A (Employer's Supplemental Tax Guide)",
    "the IRS groups the evidence of control in three categories: behavioral control, "
    "financial control and the relationship of the parties")
IRC_3508 = Source(
    "irc-3508", "26 U.S.C. §3508 (IRC §3508)",
    "direct sellers are statutory non-employees for federal tax purposes (income and "
    "employment taxes) when substantially all their pay is tied to sales rather than hours "
    "worked and a written contract says they are not employees; it does not decide state ABC "
    "tests or the FLSA, where control still counts")
CA_LABOR_2775 = Source(
    "ca-labor-2775", "California Labor Code §2775 (ABC test)",
    "prong A: the person is free from the control and direction of the hiring entity in "
    "connection with the performance of the work, both under the contract and in fact")
MA_148B = Source(
    "ma-149-148b", "Massachusetts G.L. c.149 §148B (ABC test)",
    "prong (1): the individual is free from control and direction in connection with the "
    "performance of the service, both under the contract and in fact")
DOL_ECONOMIC_REALITY = Source(
    "dol-economic-reality",
    "U.S. Department of Labor, economic-reality test under the FLSA (29 CFR part 795)",
    "one of the factors is the nature and degree of the potential employer's control over "
    "the work (schedule, supervision, discipline); steps taken only to comply with a "
    "specific law are not indicative of control")
SOURCES: tuple[Source, ...] = (REV_RUL_87_41, IRS_CATEGORIES, IRC_3508, CA_LABOR_2775,
                               MA_148B, DOL_ECONOMIC_REALITY)
_ALWAYS = (IRS_CATEGORIES, CA_LABOR_2775, MA_148B, DOL_ECONOMIC_REALITY, IRC_3508)
_ABC = "ABC test, prong A: free from control and direction in performing the work"
_DOL = "DOL economic reality: nature and degree of control"


@dataclass(frozen=True)
class Rule:
    """One control indicator: what it looks for, the factors it evidences (`tests`, the IRS
    `category`), why that matters, how to fix it, and the `sources` it cites."""

    id: str
    name: str
    title: str
    looks_for: str
    factor: str
    tests: tuple[str, ...]
    severity: str
    fix: str
    category: str = "behavioral control"
    why: str = ""
    sources: tuple[Source, ...] = ()

    @property
    def anchor(self) -> str:
        """The rule's section in docs/compliance.md (GitHub's heading anchor)."""
        return f"{self.id.lower()}-{self.name}"

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "title": self.title,
                "looks_for": self.looks_for, "factor": self.factor, "tests": list(self.tests),
                "category": self.category, "severity": self.severity, "why": self.why,
                "fix": self.fix, "sources": [s.to_dict() for s in self.sources],
                "help": f"{DOC}#{self.anchor}"}


def _rule(id: str, name: str, title: str, looks_for: str, factor: str, irs: str,
          severity: str, fix: str, why: str, *, also: tuple[str, ...] = (),
          category: str = "behavioral control") -> Rule:
    return Rule(id, name, title, looks_for, factor, (irs, *also, _ABC, _DOL), severity, fix,
                category, why, (REV_RUL_87_41, *_ALWAYS))


RULES: tuple[Rule, ...] = (
    _rule("NM001", "training-before-selling", "Required training before selling",
          "a required training or qualification step (or a gateway on training status) that "
          "every path to a selling step passes through", "Training",
          "IRS common-law factor 2: training", "high",
          "make the training guidance (offered, skippable) and run it alongside selling, not "
          "before it; if a law demands it, give the step a `basis` and justify it",
          "Requiring a worker to be trained in the company's methods before working is one of "
          "the IRS's behavioral-control factors: it shows the company wants the work done its "
          "way. Training offered as a resource the contractor may take or leave does not."),
    _rule("NM002", "required-without-basis", "Required step without a basis",
          "a step with `control: required` and no `basis` (the legal or brand reason), or a "
          "placeholder such as TODO, tbd, n/a or -",
          "Instructions", "IRS common-law factor 1: instructions", "high",
          "add `basis:` naming the law or brand rule that demands the step, or make it "
          "guidance",
          "A step the contractor cannot skip is an instruction about how to do the work. A "
          "step that exists only to comply with a specific law (an FTC disclosure, say) is "
          "not evidence of control under the DOL test, but only if the map says which law; "
          "without a basis the reviewer cannot tell compliance from control."),
    _rule("NM003", "fixed-order", "Required steps in a fixed order",
          "two or more required steps where one always comes before the other, so the map "
          "sets the order of the work", "Order or sequence set",
          "IRS common-law factor 10: order or sequence set", "medium",
          "run the required steps as parallel branches, or make all but one guidance; if the "
          "order itself is what the law demands, justify it",
          "Setting the order or sequence in which work is done is a common-law factor of "
          "control: the contractor is not free to follow their own pattern of work."),
    _rule("NM004", "set-hours", "Working hours set by timers or cards",
          "repeating timers anchored at a clock time or without end (timeCycle R/...), waits "
          "until a fixed date or time (timeDate), and cards that set working hours or shifts "
          "(\"every weekday at 9am\", \"your shift\", \"de 9 a 5\")", "Set hours of work",
          "IRS common-law factor 7: set hours of work", "medium",
          "use relative reminders (P2D after the last step, at most a few repetitions) and let "
          "the contractor pick when to act",
          "Establishing set hours of work is a common-law factor of control, and the DOL test "
          "names setting the worker's schedule as control. Contractors decide when they work."),
    _rule("NM005", "deadline-with-consequence", "Deadlines and sanctions",
          "timers on a contractor's step that take the step away at a fixed date, or escalate "
          "to a sponsor or manager, or lead to a sanction (late, warning, removal), when the "
          "contractor has not acted in time; and cards that threaten a sanction for not doing "
          "as told (\"if you don't, you won't receive new contacts\")", "Set hours of work",
          "IRS common-law factor 7: set hours of work", "high",
          "make the timer non-interrupting and supportive: a reminder to the contractor, or "
          "a guidance card for the sponsor that offers help and carries no sanction; never "
          "tie leads, access or standing to doing a step",
          "A consequence for not doing the work when or how the company says turns guidance "
          "into an instruction that is enforced: the right to discipline, withhold work or "
          "discharge is evidence of control (common-law factors 7 and 19, the DOL's control "
          "factor, prong A of the ABC test).",
          also=("IRS common-law factor 19: right to discharge",),
          category="behavioral control; relationship of the parties"),
    _rule("NM006", "required-reporting", "Required reports to the company's staff",
          "required steps that report to a manager, sponsor, upline or the office, or ask for "
          "daily or weekly activity reports or timesheets; and cards that make such reports "
          "mandatory in any wording (\"send your upline your numbers every Friday\")",
          "Oral or written reports", "IRS common-law factor 11: oral or written reports",
          "high",
          "make reporting guidance (the contractor may share results if they like) and read "
          "results from the trail instead of asking for reports",
          "Requiring regular oral or written reports is a common-law factor of control: it "
          "lets the company supervise how the work goes."),
    _rule("NM007", "commanding-card", "Guidance written as orders or gated on approval",
          "guidance steps whose name or card says must, always, never, required to, have to, "
          "mandatory, you shall, ... (in English or Spanish: debes, tienes que, obligatorio, "
          "...), or gates the contractor's work on an upline's approval (\"new prospects are "
          "unlocked once your upline approves\")", "Instructions",
          "IRS common-law factor 1: instructions", "medium",
          "rephrase as a suggestion (\"you could\", \"many find it helpful to\"); if the step "
          "truly is required, say so with `control: required` and a `basis`; never make the "
          "contractor's access wait on someone's approval",
          "A card is what the contractor reads. Guidance worded as an order, or access that "
          "waits on a sponsor's approval, reads as the company directing how and when the "
          "work is done, whatever the map's `control` says."),
    _rule("NM008", "no-way-around", "Required step with no way around it",
          "a required step that every path to the end passes through: it can be neither "
          "skipped nor avoided", "Instructions",
          "IRS common-law factor 1: instructions", "low",
          "keep required steps on the branches that need them (e.g. only when the prospect "
          "enrolls) and justify any that every contractor must pass",
          "A required step every contractor must pass, whatever the prospect does, is an "
          "instruction applied to all the work; it needs a basis a reviewer can check."),
    _rule("NM009", "quota-gate", "Activity quota used as a gate",
          "gateway conditions comparing the contractor's activity counts (contacts, calls, "
          "sales, hours, ...) with a threshold, so progress depends on meeting a quota",
          "Full time required", "IRS common-law factor 8: full time required", "high",
          "route on what the prospect said or did, never on how much the contractor worked; "
          "show activity counts as information only",
          "Requiring a set amount of time or activity is a common-law factor of control "
          "(full time required). Under IRC §3508 a direct seller's pay must be tied to sales, "
          "not hours worked; a gate on hours or activity points the other way."),
    _rule("NM010", "quota-in-card", "Activity minimum demanded in a card",
          "card text demanding a minimum or a rate of activity (\"at least 20 calls\", "
          "\"5 posts a day\", \"your weekly quota\", \"al menos 20 llamadas\")",
          "Full time required", "IRS common-law factor 8: full time required", "medium",
          "offer a range or an example (\"up to ten people, as many or as few as you like\") "
          "instead of a minimum",
          "A demanded minimum of activity sets how much the contractor works: a common-law "
          "factor of control, and a sign the company, not the contractor, decides the effort."),
)
RULES_BY_ID: Mapping[str, Rule] = {r.id: r for r in RULES}


def rule_sections() -> str:
    """The per-rule sections of docs/compliance.md, as Markdown."""
    out: list[str] = []
    for r in RULES:
        out += [f"## {r.id} {r.name}", "", f"**{r.title}** — severity `{r.severity}`; "
                f"IRS category: {r.category}.", "",
                f"**Looks for:** {r.looks_for}.", "", f"**Why it matters:** {r.why}", "",
                f"**How to fix:** {r.fix}.", "", "**Factors it evidences:**", ""]
        out += [f"- {t}" for t in r.tests]
        out += ["", "**Sources:** " + "; ".join(s.citation for s in r.sources) + ".", ""]
    return "\n".join(out)


def write_doc(path: Path) -> bool:
    """Rewrite the rule sections between the markers of `path`; True if it changed."""
    text = path.read_text(encoding="utf-8")
    head, rest = text.split(_BEGIN, 1)
    _, tail = rest.split(_END, 1)
    new = f"{head}{_BEGIN}\n\n{rule_sections()}\n{_END}{tail}"
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    changed = write_doc(Path(sys.argv[1] if len(sys.argv) > 1 else DOC))
    print("updated" if changed else "unchanged")

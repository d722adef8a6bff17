"""Recommendation policies: per hook, versioned, ranking a catalog's options for a context.

A policy is a JSON document (format 1)::

    {"format": 1, "hook": "intro_video", "version": 3, "kind": "learned",
     "exploration": {"method": "epsilon", "epsilon": 0.2},
     "default": {"protandim_nrf2_intro_90s": 0.41, "truescience_intro": 0.22},
     "rules": [{"when": {"market": "MX", "age_band": ["18-24", "25-34"]},
                "scores": {"protandim_intro_es": 0.5}, "reasons": ["..."]}],
     "reasons": ["..."], "explain": {"estimate": 0.31}}

Scores: the most specific rule whose conditions all hold (most conditions; ties: the first
listed) supplies the scores, else `default`. A condition holds when the context's value equals
it, or is one of its values when it is a list. Options the scores leave out get the lowest score
present minus `UNSCORED_MARGIN`; options not available for the context's `locale` / `market`
(`ContentOption.available_in`) are left out.

Exploration, with exact propensities over the n options left:

* epsilon: the best (ties: catalog order) is shown with 1 - ε + ε/n, every other with ε/n;
* softmax: option i is shown with exp(score_i / τ) / Σ exp(score_j / τ).

Randomness comes only from the `random.Random` passed in: one `rng.random()` per choice.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

from content_catalog._errors import PolicyError
from content_catalog._exploration import Exploration, cumulative, is_number, pick
from content_catalog._model import Catalog, ContentOption
from content_catalog._rule_index import RuleIndex
from content_catalog.recommend import Ranked, Recommendation
from engine.errors import did_you_mean

FORMAT = 1
KINDS = ("catalog", "learned", "manual")
UNSCORED_MARGIN = 1e-3
LOCALE_KEY, MARKET_KEY = "locale", "market"
_DOCUMENT_KEYS = ("format", "hook", "version", "kind", "exploration", "default", "rules",
                  "reasons", "explain")
_RULE_KEYS = ("when", "scores", "reasons")


@dataclass(frozen=True)
class Rule:
    """Scores for the contexts where every condition of `when` holds."""

    when: Mapping[str, Any]
    scores: Mapping[str, float]
    reasons: tuple[str, ...] = ()
    _conditions: tuple[tuple[str, Any], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        conditions = []
        for feature, value in dict(self.when).items():
            if isinstance(value, list | tuple):
                if not value or not all(_is_scalar(v) for v in value):
                    raise PolicyError(f"condition on {feature!r} must list JSON scalars",
                                      field=f"when.{feature}")
                value = tuple(value)
            elif not _is_scalar(value):
                raise PolicyError(f"condition on {feature!r} must be a JSON scalar or a list",
                                  field=f"when.{feature}")
            conditions.append((str(feature), value))
        object.__setattr__(self, "when", MappingProxyType(dict(conditions)))
        object.__setattr__(self, "scores", _scores(self.scores, "scores"))
        object.__setattr__(self, "reasons", tuple(self.reasons))
        object.__setattr__(self, "_conditions", tuple(conditions))

    def matches(self, context: Mapping[str, Any]) -> bool:
        """True when every condition holds in `context` (a missing feature never matches)."""
        for feature, expected in self._conditions:
            if feature not in context:
                return False
            actual = context[feature]
            if isinstance(expected, tuple):
                if not any(_same(e, actual) for e in expected):
                    return False
            elif not _same(expected, actual):
                return False
        return True

    def __reduce__(self) -> tuple[Any, ...]:
        return (Rule, (self.to_dict()["when"], dict(self.scores), self.reasons))

    def to_dict(self) -> dict[str, Any]:
        when = {k: list(v) if isinstance(v, tuple) else v for k, v in self.when.items()}
        out: dict[str, Any] = {"when": when, "scores": dict(self.scores)}
        if self.reasons:
            out["reasons"] = list(self.reasons)
        return out


@dataclass(frozen=True)
class Policy:
    """How one hook ranks its content: scores by context, plus exploration.

    `version` is 0 until the policy is stored (the store numbers versions); `kind` is
    "catalog" (from catalog weights), "learned" or "manual". `reasons` and `explain` are
    free-form notes (e.g. the learner's feature contributions and off-policy estimate).
    """

    hook: str
    _: KW_ONLY
    default: Mapping[str, float] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    exploration: Exploration = Exploration()
    kind: str = "manual"
    version: int = 0
    reasons: tuple[str, ...] = ()
    explain: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            if not isinstance(self.hook, str) or not self.hook:
                raise PolicyError("hook must be a non-empty string", field="hook")
            if self.kind not in KINDS:
                raise PolicyError(f"unknown kind {self.kind!r}; use one of {', '.join(KINDS)}",
                                  field="kind", suggestion=did_you_mean(str(self.kind), KINDS))
            if not isinstance(self.version, int) or isinstance(self.version, bool) \
                    or self.version < 0:
                raise PolicyError(f"version must be a whole number >= 0, not {self.version!r}",
                                  field="version")
            object.__setattr__(self, "default", _scores(self.default, "default"))
            object.__setattr__(self, "rules", tuple(self.rules))
            if not all(isinstance(r, Rule) for r in self.rules):
                raise PolicyError("rules must be Rule objects", field="rules")
            object.__setattr__(self, "reasons", tuple(self.reasons))
            object.__setattr__(self, "explain", MappingProxyType(dict(self.explain)))
        except PolicyError as exc:
            if exc.hook is None and isinstance(self.hook, str) and self.hook:
                raise PolicyError(exc.message, hook=self.hook, field=exc.field,
                                  suggestion=exc.suggestion) from None
            raise

    def __reduce__(self) -> tuple[Any, ...]:
        return (Policy.from_dict, (self.to_dict(),))  # mapping proxies do not pickle

    def rule_index(self, context: Mapping[str, Any]) -> int | None:
        """The index of the most specific rule that matches `context`, or None (default)."""
        return self._rule_index.find(context)

    @cached_property
    def _rule_index(self) -> RuleIndex:
        return RuleIndex([r._conditions for r in self.rules],
                         lambda index, context: self.rules[index].matches(context))

    def matching_rule(self, context: Mapping[str, Any]) -> Rule | None:
        """The most specific rule that matches `context`, or None when `default` applies."""
        index = self.rule_index(context)
        return None if index is None else self.rules[index]

    def scores_for(self, context: Mapping[str, Any]) -> Mapping[str, float]:
        """The score table that applies to `context`: a rule's, or `default`."""
        rule = self.matching_rule(context)
        return self.default if rule is None else rule.scores

    def rank(self, options: Sequence[ContentOption],
             context: Mapping[str, Any]) -> tuple[Ranked, ...]:
        """The options available in `context`, best first, each with its chance to be shown.

        `options` are the hook's options in catalog order (ties keep that order).
        """
        locale, market = locale_market(context)
        available = [o for o in options if o.available_in(locale, market)]
        scores = self.scores_for(context)
        present = [scores[o.id] for o in available if o.id in scores]
        floor = (min(present) - UNSCORED_MARGIN) if present else 0.0
        scored = [(scores.get(o.id, floor), o.id) for o in available]
        scored.sort(key=lambda pair: -pair[0])  # stable: equal scores stay in catalog order
        probabilities = self.exploration.probabilities([s for s, _ in scored])
        return tuple(Ranked(option_id, score, p)
                     for (score, option_id), p in zip(scored, probabilities, strict=True))

    def choose(self, options: Sequence[ContentOption], context: Mapping[str, Any],
               rng: random.Random) -> Recommendation | None:
        """Rank, then sample the option shown with its exact probability (None: no options).

        Draws one `rng.random()` when there is something to choose, and nothing else.
        """
        ranked = self.rank(options, context)
        if not ranked:
            return None
        shown = ranked[pick(cumulative(ranked), rng.random())]
        return Recommendation(self.hook, self.version, ranked, shown.option_id,
                              shown.probability)

    def check_against(self, catalog: Catalog) -> None:
        """Raise `PolicyError` if the hook or a scored option id is not in `catalog`."""
        if self.hook not in catalog.hooks:
            raise PolicyError(f"no item of catalog {catalog.name!r} fills this hook",
                              hook=self.hook, field="hook",
                              suggestion=did_you_mean(self.hook, catalog.hooks))
        known = [o.id for o in catalog.options_for(self.hook)]
        tables = [("default", self.default)] + [
            (f"rules[{i}].scores", r.scores) for i, r in enumerate(self.rules)]
        for where, scores in tables:
            for option_id in scores:
                if option_id not in known:
                    raise PolicyError(f"{option_id!r} is not an option of this hook",
                                      hook=self.hook, field=where,
                                      suggestion=did_you_mean(option_id, known))

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (format 1)."""
        out: dict[str, Any] = {
            "format": FORMAT, "hook": self.hook, "version": self.version, "kind": self.kind,
            "exploration": self.exploration.to_dict(), "default": dict(self.default),
            "rules": [r.to_dict() for r in self.rules],
        }
        if self.reasons:
            out["reasons"] = list(self.reasons)
        if self.explain:
            out["explain"] = dict(self.explain)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, dct: Mapping[str, Any]) -> Policy:
        """Read a policy document; raise `PolicyError` naming the wrong field."""
        if not isinstance(dct, Mapping):
            raise PolicyError("a policy document must be a JSON object")
        hook = dct.get("hook")
        try:
            return cls._from_dict(dct)
        except PolicyError as exc:
            if exc.hook is None and isinstance(hook, str) and hook:
                raise PolicyError(exc.message, hook=hook, field=exc.field,
                                  suggestion=exc.suggestion) from None
            raise

    @classmethod
    def _from_dict(cls, dct: Mapping[str, Any]) -> Policy:
        if dct.get("format", FORMAT) != FORMAT:
            raise PolicyError(f"unsupported document format {dct.get('format')!r} "
                              f"(this nextmove reads format {FORMAT})", field="format")
        _no_unknown(dct, _DOCUMENT_KEYS, "")
        rules = dct.get("rules", [])
        if not isinstance(rules, list):
            raise PolicyError("must be a list of rules", field="rules")
        parsed = []
        for i, raw in enumerate(rules):
            if not isinstance(raw, Mapping) or not isinstance(raw.get("when"), Mapping):
                raise PolicyError("a rule is an object with 'when' and 'scores'",
                                  field=f"rules[{i}]")
            _no_unknown(raw, _RULE_KEYS, f"rules[{i}].")
            try:
                parsed.append(Rule(raw["when"], raw.get("scores", {}),
                                   _texts(raw.get("reasons", []), f"rules[{i}].reasons")))
            except PolicyError as exc:
                field = exc.field if exc.field and exc.field.startswith("rules[") \
                    else f"rules[{i}].{exc.field}"
                raise PolicyError(exc.message, field=field, suggestion=exc.suggestion) from None
        explain = dct.get("explain", {})
        if not isinstance(explain, Mapping):
            raise PolicyError("must be an object", field="explain")
        return cls(
            hook=dct.get("hook"),  # type: ignore[arg-type]  # checked in __post_init__
            default=dct.get("default", {}),
            rules=tuple(parsed),
            exploration=Exploration.from_dict(dct.get("exploration", {})),
            kind=dct.get("kind", "manual"),
            version=dct.get("version", 0),
            reasons=_texts(dct.get("reasons", []), "reasons"),
            explain=explain,
        )

    @classmethod
    def from_json(cls, text: str) -> Policy:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PolicyError(f"not JSON: {exc}") from exc
        return cls.from_dict(data)


def catalog_policy(catalog: Catalog, hook: str,
                   exploration: Exploration | None = None) -> Policy:
    """The default policy for `hook`: the catalog weights of its options, summing to 1."""
    options = catalog.options_for(hook)
    if not options:
        raise PolicyError(f"no item of catalog {catalog.name!r} fills this hook", hook=hook,
                          field="hook", suggestion=did_you_mean(hook, catalog.hooks))
    total = math.fsum(o.weight for o in options)
    return Policy(
        hook, kind="catalog", default={o.id: o.weight / total for o in options},
        exploration=exploration or Exploration(),
        reasons=(f"catalog {catalog.name!r} weights, normalized to sum to 1",),
    )


def locale_market(context: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The context's `locale` and `market` (anything but a non-empty string counts as unset)."""
    locale, market = context.get(LOCALE_KEY), context.get(MARKET_KEY)
    return (locale if isinstance(locale, str) and locale else None,
            market if isinstance(market, str) and market else None)


def _scores(scores: Any, where: str) -> Mapping[str, float]:
    if not isinstance(scores, Mapping):
        raise PolicyError("scores must be an object {option_id: number}", field=where)
    out = {}
    for option_id, score in scores.items():
        if not (isinstance(option_id, str) and is_number(score)):
            raise PolicyError(f"score of {option_id!r} must be a finite number, not {score!r}",
                              field=where)
        out[option_id] = float(score)
    return MappingProxyType(out)


def _no_unknown(dct: Mapping[str, Any], allowed: Sequence[str], prefix: str) -> None:
    for key in dct:
        if key not in allowed:
            raise PolicyError(f"unknown key {key!r}", field=f"{prefix}{key}",
                              suggestion=did_you_mean(str(key), allowed))


def _texts(value: Any, where: str) -> tuple[str, ...]:
    if not (isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)):
        raise PolicyError("must be a list of strings", field=where)
    return tuple(value)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | bool | int | float)


def _same(expected: Any, actual: Any) -> bool:
    # JSON tells true from 1; Python's == does not.
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    return bool(expected == actual)

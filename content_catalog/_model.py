"""The catalog as plain typed data: Catalog → ContentItem → Variant, and ContentOption.

A `ContentOption` is one concrete thing a card can show: a variant of an item, or the item itself
when it has no variants. Its `id` is the content id recorded in events and used by the policy
and the learner; ids are unique across items and variants, so one id names one option.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from engine.errors import did_you_mean, meant

PLACEHOLDER_RE = re.compile(r"[a-z][a-z0-9_]*")


def placeholders_in(body: str | None) -> tuple[str, ...]:
    """The placeholder names in a message body, in order, once each ("{a} {b} {a}" → a, b)."""
    if not body:
        return ()
    names = (name for _, name, _, _ in string.Formatter().parse(body) if name)
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class Variant:
    """One version of an item; what it leaves out (None) is the item's."""

    id: str
    title: str | None = None
    url: str | None = None
    body: str | None = None
    weight: float | None = None
    description: str | None = None
    line: int | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ContentOption:
    """One concrete showable thing: a variant, or an item without variants."""

    id: str  # the content id logged with events: the variant's id, else the item's
    item_id: str
    variant_id: str | None
    kind: str
    title: str
    url: str | None
    body: str | None
    weight: float
    locale: str | None = None
    markets: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    description: str | None = None

    @property
    def placeholders(self) -> tuple[str, ...]:
        return placeholders_in(self.body)

    def available_in(self, locale: str | None = None, market: str | None = None) -> bool:
        """True if this option may be shown for `locale` and `market` (None: any).

        An option without a locale or markets is shown everywhere; a language-only locale
        ("es") matches every regional one ("es-MX").
        """
        if locale and self.locale:
            wanted, have = locale.casefold(), self.locale.casefold()
            if have != wanted and have != wanted.split("-")[0]:
                return False
        return not (market and self.markets and market.upper() not in self.markets)


@dataclass(frozen=True)
class ContentItem:
    """A piece of content and the hooks it may fill."""

    id: str
    kind: str
    title: str
    hooks: tuple[str, ...]
    url: str | None = None
    body: str | None = None
    locale: str | None = None
    markets: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    weight: float = 1.0
    variants: tuple[Variant, ...] = ()
    description: str | None = None
    line: int | None = field(default=None, compare=False, repr=False)

    @property
    def options(self) -> tuple[ContentOption, ...]:
        """The variants as options, or the item itself when it has none."""
        if not self.variants:
            return (self._option(None),)
        return tuple(self._option(v) for v in self.variants)

    def _option(self, variant: Variant | None) -> ContentOption:
        v = variant or Variant(self.id)
        return ContentOption(
            id=v.id,
            item_id=self.id,
            variant_id=variant.id if variant else None,
            kind=self.kind,
            title=v.title or self.title,
            url=v.url or self.url,
            body=v.body or self.body,
            weight=v.weight if v.weight is not None else self.weight,
            locale=self.locale,
            markets=self.markets,
            tags=self.tags,
            description=v.description or self.description,
        )


@dataclass(frozen=True)
class NearerReward:
    """A hook whose continuous-learning policy learns from reaching `step` (catalog
    `learn_from`), a nearer step of the map than the outcome."""

    hook: str
    step: str
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Catalog:
    """A brand's content catalog, as loaded from one file."""

    name: str
    brand: str
    items: tuple[ContentItem, ...]
    version: str | None = None
    description: str | None = None
    file: str | None = field(default=None, compare=False)
    learning: str = "continuous"  # batch | continuous: how the learner changes the policies
    segments: tuple[str, ...] = ()  # context keys continuous learning keeps apart
    learn_from: tuple[NearerReward, ...] = ()  # hooks that learn from a nearer step

    def nearer_rewards(self) -> dict[str, str]:
        """Hook -> the nearer step it learns from, for the hooks `learn_from` names."""
        return {r.hook: r.step for r in self.learn_from}

    @cached_property
    def hooks(self) -> frozenset[str]:
        """Every hook that at least one item fills."""
        return frozenset(hook for item in self.items for hook in item.hooks)

    @cached_property
    def _by_hook(self) -> dict[str, tuple[ContentOption, ...]]:
        by_hook: dict[str, list[ContentOption]] = {}
        for item in self.items:
            for hook in item.hooks:
                by_hook.setdefault(hook, []).extend(item.options)
        return {hook: tuple(options) for hook, options in by_hook.items()}

    @cached_property
    def _by_id(self) -> dict[str, ContentOption]:
        return {option.id: option for item in self.items for option in item.options}

    def options_for(
        self, hook: str, *, locale: str | None = None, market: str | None = None
    ) -> tuple[ContentOption, ...]:
        """The options that may fill `hook`, in catalog order; () for a hook nothing fills.

        With `locale` and/or `market`, only the options available there (see
        `ContentOption.available_in`).
        """
        options = self._by_hook.get(hook, ())
        if locale is None and market is None:
            return options
        return tuple(o for o in options if o.available_in(locale, market))

    def option(self, content_id: str) -> ContentOption:
        """The option with this content id (a variant id, or the id of an item without variants)."""
        try:
            return self._by_id[content_id]
        except KeyError:
            raise KeyError(_unknown("content", content_id, self._by_id)) from None

    def item(self, item_id: str) -> ContentItem:
        """The item with this id."""
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(_unknown("item", item_id, (i.id for i in self.items)))

    def options(self) -> tuple[ContentOption, ...]:
        """Every option of every item, in catalog order."""
        return tuple(self._by_id.values())


def _unknown(what: str, name: str, known: Iterable[str]) -> str:
    hint = did_you_mean(name, known)
    return f"no {what} {name!r} in the catalog" + meant(hint)

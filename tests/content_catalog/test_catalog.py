"""content_catalog: loading, checking, flattening and cross-checking catalogs."""

from __future__ import annotations

import json
import textwrap
from importlib import resources
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

import content_catalog
from content_catalog import (
    Catalog,
    ContentItem,
    ContentOption,
    Variant,
    catalog_schema,
    cross_check,
    load_catalog,
    load_catalog_text,
)
from engine.errors import DefinitionError, DefinitionErrors, Problem

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "catalog"
LIFEVANTAGE = ROOT / "processes" / "lifevantage" / "catalog.yaml"

# The hooks the LifeVantage journeys use (agreed names).
JOURNEY_HOOKS = (
    "first_contact_message", "intro_video", "follow_up_message", "presentation", "order_link",
    "enroll_invitation", "nurture_message", "welcome_training", "product_training",
    "first_ten_contacts", "first_sale_tips", "sponsor_alert_message",
)

# The placeholders the LifeVantage catalog documents in its header comment.
PLACEHOLDERS = {
    "prospect_first_name", "distributor_first_name", "sponsor_first_name", "video_link",
    "order_link", "enroll_link", "presentation_time", "presentation_link",
    "days_since_enrollment", "contacts_added",
}

HEADER = "catalog: t\nbrand: Acme\nitems:\n"


def problems_of(items_yaml: str, header: str = HEADER) -> list[Problem]:
    """Problems of a catalog made of HEADER plus `items_yaml` (items start on line 4)."""
    with pytest.raises(DefinitionErrors) as caught:
        load_catalog_text(header + textwrap.dedent(items_yaml), file="t.yaml")
    return caught.value.problems


def summary(problems: list[Problem]) -> list[tuple[int | None, str | None, str]]:
    return [(p.line, p.element, p.code) for p in problems]


def test_public_api_is_exported() -> None:
    names = set(content_catalog.__all__)
    assert {
        "Catalog", "ContentItem", "ContentOption", "Variant", "catalog_schema", "cross_check",
        "load_catalog", "load_catalog_text",
    } <= names
    assert all(hasattr(content_catalog, name) for name in names)
    for name in content_catalog.__all__:
        assert getattr(content_catalog, name).__module__.startswith("content_catalog")


def test_schema_ships_in_the_package_and_is_valid_draft_2020_12() -> None:
    text = resources.files("content_catalog").joinpath("schema/catalog.schema.json").read_text()
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    assert catalog_schema() == schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_lifevantage_catalog_loads_with_every_journey_hook_and_two_options_each() -> None:
    catalog = load_catalog(LIFEVANTAGE)
    assert (catalog.name, catalog.brand) == ("lifevantage-us", "LifeVantage")
    assert catalog.hooks == frozenset(JOURNEY_HOOKS)
    for hook in JOURNEY_HOOKS:
        assert len(catalog.options_for(hook, locale="en-US", market="US")) >= 2, hook


def test_lifevantage_catalog_content_is_well_formed() -> None:
    catalog = load_catalog(LIFEVANTAGE)
    options = catalog.options()
    assert len({o.id for o in options}) == len(options)
    for option in options:
        assert option.url or option.body, option.id
        if option.url:
            assert option.url.startswith("https://example.lifevantage.invalid/"), option.id
        if option.kind == "message_template":
            assert option.body and not option.body.endswith("\n"), option.id
            assert set(option.placeholders) <= PLACEHOLDERS, option.id
    assert any(o.variant_id for o in options)
    assert {"protandim", "truescience", "compliance"} <= {t for o in options for t in o.tags}


def test_lifevantage_catalog_matches_the_journey_hooks() -> None:
    catalog = load_catalog(LIFEVANTAGE)
    used = {hook: [("journey.yaml", f"step_{i}", i)] for i, hook in enumerate(JOURNEY_HOOKS)}
    assert cross_check(catalog, used) == []


def test_minimal_catalog_defaults_and_inheritance() -> None:
    catalog = load_catalog(FIXTURES / "minimal.yaml")
    assert catalog.file == str(FIXTURES / "minimal.yaml")
    assert catalog.version == "3"
    intro, hello, hello_en = catalog.items
    assert intro.locale == "en-US" and intro.markets == ("US", "CA")  # catalog defaults
    assert hello.locale == "es-MX" and hello.markets == ("MX",)  # item overrides
    assert hello_en.locale == "en" and hello_en.markets == ("US", "CA")
    assert intro.weight == 2.0 and hello.weight == 1.0
    assert intro.line == 7 and intro.variants[1].line == 15
    assert hello.body == "Hola {prospect_first_name}, {prospect_first_name}! Mira: {video_link}"
    assert catalog.hooks == {"intro_video", "first_contact_message", "nurture_message"}


def test_options_are_variants_or_the_item_itself() -> None:
    catalog = load_catalog(FIXTURES / "minimal.yaml")
    short, long_ = catalog.options_for("intro_video")
    assert short == ContentOption(
        id="intro_short", item_id="intro", variant_id="intro_short", kind="video",
        title="Intro", url="https://example.invalid/v/intro", body=None, weight=2.0,
        locale="en-US", markets=("US", "CA"),
    )
    assert (long_.title, long_.url, long_.weight) == (
        "Intro (long)", "https://example.invalid/v/intro-long", 0.5,
    )
    [hello, hello_en] = catalog.options_for("first_contact_message")
    assert (hello.id, hello.item_id, hello.variant_id) == ("hello", "hello", None)
    assert hello.placeholders == ("prospect_first_name", "video_link")
    assert catalog.options_for("nurture_message") == (hello,)
    assert catalog.options_for("no_such_hook") == ()
    assert catalog.option("intro_long") == long_
    assert catalog.item("hello").tags == ("warm",)
    with pytest.raises(KeyError, match="did you mean 'intro_long'"):
        catalog.option("intro_lng")
    with pytest.raises(KeyError, match="no content 'intro'"):  # an item with variants is not shown
        catalog.option("intro")
    with pytest.raises(KeyError, match="did you mean 'hello'"):
        catalog.item("helo")


@pytest.mark.parametrize(
    ("locale", "market", "expected"),
    [
        (None, None, ["hello", "hello_en"]),
        ("es-MX", "MX", ["hello"]),
        ("en-US", "US", ["hello_en"]),  # "en" matches every English locale
        ("en-GB", None, ["hello_en"]),
        ("fr-FR", "FR", []),
        (None, "mx", ["hello"]),
    ],
)
def test_options_for_filters_by_locale_and_market(
    locale: str | None, market: str | None, expected: list[str]
) -> None:
    catalog = load_catalog(FIXTURES / "minimal.yaml")
    options = catalog.options_for("first_contact_message", locale=locale, market=market)
    assert [o.id for o in options] == expected


def test_model_is_frozen_plain_data() -> None:
    item = ContentItem("a", "video", "A", ("intro_video",), url="https://x.invalid/a",
                       variants=(Variant("a1"), Variant("a2", weight=3.0)))
    catalog = Catalog("c", "Acme", (item,))
    assert [o.weight for o in catalog.options_for("intro_video")] == [1.0, 3.0]
    with pytest.raises(AttributeError):
        catalog.name = "other"  # type: ignore[misc]
    assert hash(catalog) == hash(Catalog("c", "Acme", (item,)))


def test_every_problem_in_a_file_is_reported_with_file_line_path_and_hint() -> None:
    path = FIXTURES / "many_problems.yaml"
    with pytest.raises(DefinitionErrors) as caught:
        load_catalog(path)
    problems = caught.value.problems
    assert all(p.file == str(path) and p.severity == "error" for p in problems)
    assert [(p.line, p.element, p.code, p.suggestion) for p in problems] == [
        (4, "items[0]", "missing-key", None),
        (5, "items[0].kind", "unknown-value", "video"),
        (6, "items[0].titel", "unknown-key", "title"),
        (8, "items[0].hooks[0]", "hook-format", "intro_video"),
        (13, "items[1].weight", "schema", None),
        (14, "items[1].body", "placeholder", None),
        (16, "items[1].variants[0].id", "duplicate-id", None),
    ]
    assert str(problems[2]) == (
        f"{path}:6: items[0].titel: unknown key 'titel' (did you mean 'title'?)"
    )
    assert "duplicate id 'intro': already used by items[0] (line 4)" in problems[6].message
    assert "7 problem(s)" in str(caught.value)


def test_unknown_top_level_key() -> None:
    problems = problems_of("", header="catalog: t\nbrand: Acme\nitem: []\n")
    assert summary(problems) == [(1, None, "missing-key"), (3, "item", "unknown-key")]
    assert problems[0].message == "missing required key 'items'"
    assert problems[1].suggestion == "items"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("{id: a, kind: message_template, title: A, hooks: [h]}", "needs a body"),
        ("{id: a, kind: video, title: A, hooks: [h], body: hi}", "needs a url"),
        ("{id: a, kind: training_module, title: A, hooks: [h]}", "url or a body"),
        ("{id: a, kind: link, title: A, hooks: [h], url: 'ftp://x'}", "starts with https://"),
        ("{id: a, kind: link, title: A, hooks: [], url: 'https://x.invalid'}", "at least one hook"),
        ("{id: A B, kind: link, title: A, hooks: [h], url: 'https://x.invalid'}", "lower-case"),
        ("{id: a, kind: link, title: ' ', hooks: [h], url: 'https://x.invalid'}", "not be empty"),
    ],
)
def test_content_rules(item: str, message: str) -> None:
    [problem] = problems_of(f"  - {item}\n")
    assert problem.line == 4
    assert message in problem.message


@pytest.mark.parametrize("weight", ["0", "-1", ".nan", ".inf", "heavy", "true"])
def test_weights_must_be_finite_and_positive(weight: str) -> None:
    problems = problems_of(
        f"""\
          - id: a
            kind: link
            title: A
            url: https://x.invalid/a
            hooks: [h]
            variants:
              - id: a1
                weight: {weight}
        """
    )
    assert summary(problems) == [(11, "items[0].variants[0].weight", problems[0].code)]
    assert "weight must be" in problems[0].message


def test_duplicate_ids_across_items_and_variants() -> None:
    problems = problems_of(
        """\
          - id: a
            kind: link
            title: A
            url: https://x.invalid/a
            hooks: [h]
            variants: [{id: a}, {id: b}]
          - id: b
            kind: link
            title: B
            url: https://x.invalid/b
            hooks: [h]
        """
    )
    assert summary(problems) == [
        (9, "items[0].variants[0].id", "duplicate-id"),
        (10, "items[1].id", "duplicate-id"),
    ]
    assert "already used by items[0] (line 4)" in problems[0].message
    assert "already used by items[0].variants[1] (line 9)" in problems[1].message


@pytest.mark.parametrize(
    ("hook", "hint"),
    [("Intro Video", "intro_video"), ("introVideo", "intro_video"), ("intro-video", "intro_video"),
     ("2nd_call", None)],
)
def test_hook_names_must_be_snake_case(hook: str, hint: str | None) -> None:
    [problem] = problems_of(
        f"  - {{id: a, kind: link, title: A, url: 'https://x.invalid', hooks: [ok, '{hook}']}}\n"
    )
    assert (problem.element, problem.code) == ("items[0].hooks[1]", "hook-format")
    assert problem.suggestion == hint


@pytest.mark.parametrize(
    ("body", "hint"),
    [
        ("Hi {prospect.__class__}", None),
        ("Hi {0}", None),
        ("Hi {}", None),
        ("Hi {name!r}", "{name}"),
        ("Hi {name:>20}", "{name}"),
        ("Hi {Prospect_First_Name}", "{prospect_first_name}"),
        ("Hi {name", None),
        ("Hi name}", None),
    ],
)
def test_placeholders_are_plain_names(body: str, hint: str | None) -> None:
    [problem] = problems_of(
        f"  - {{id: a, kind: message_template, title: A, hooks: [h], body: '{body}'}}\n"
    )
    assert (problem.element, problem.code) == ("items[0].body", "placeholder")
    assert problem.suggestion == hint
    assert "{{ or }} for a literal brace" in problem.message


def test_literal_braces_are_allowed() -> None:
    catalog = load_catalog_text(
        HEADER + "  - {id: a, kind: message_template, title: A, hooks: [h], body: 'a {{b}} {c}'}\n"
    )
    assert catalog.option("a").placeholders == ("c",)


def test_yes_no_on_off_stay_strings() -> None:
    catalog = load_catalog_text(
        HEADER + "  - {id: a, kind: link, title: yes, url: 'https://x.invalid', hooks: [on, no],"
        " tags: [off, y]}\n"
    )
    item = catalog.item("a")
    assert (item.title, item.hooks, item.tags) == ("yes", ("on", "no"), ("off", "y"))


def test_a_boolean_where_text_belongs_says_to_quote_it() -> None:
    [problem] = problems_of(
        "  - {id: a, kind: link, title: true, url: 'https://x.invalid', hooks: [h]}\n"
    )
    assert problem.message == "the value must be text, not true or false (quote it)"


def test_python_tags_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(DefinitionErrors) as caught:
        load_catalog_text(
            f"catalog: !!python/object/apply:os.system ['touch {marker}']\nbrand: A\nitems: []\n",
            file="evil.yaml",
        )
    [problem] = caught.value.problems
    assert (problem.file, problem.line, problem.element) == ("evil.yaml", 1, "catalog")
    assert "Python object tags are refused" in problem.message
    assert not marker.exists()


def test_yaml_duplicate_keys_are_refused() -> None:
    with pytest.raises(DefinitionErrors) as caught:
        load_catalog_text(HEADER + "  - id: a\n    id: b\n", file="d.yaml")
    assert summary(caught.value.problems) == [(5, "items[0].id", "yaml-duplicate")]


def test_version_must_be_text_or_a_whole_number() -> None:
    [problem] = problems_of(
        "  - {id: a, kind: link, title: A, url: 'https://x.invalid', hooks: [h]}\n",
        header="catalog: t\nbrand: A\nversion: 1.2\nitems:\n",
    )
    assert (problem.line, problem.element) == (3, "version")
    assert "quote versions" in problem.message


def test_empty_file() -> None:
    with pytest.raises(DefinitionErrors, match="the document must be a mapping, not null"):
        load_catalog_text("", file="empty.yaml")


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError) as caught:
        load_catalog(tmp_path / "nope.yaml")
    assert caught.value.problem.code == "io"
    assert caught.value.problem.file == str(tmp_path / "nope.yaml")
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("catalog: caf\xe9\n".encode("latin-1"))
    with pytest.raises(DefinitionError, match="not UTF-8"):
        load_catalog(latin1)


def test_cross_check_reports_missing_hooks_as_errors_and_unused_as_warnings() -> None:
    catalog = load_catalog(FIXTURES / "minimal.yaml")
    problems = cross_check(
        catalog,
        {
            "intro_video": [("journey.yaml", "share_video", 12)],
            "first_contact_mesage": [
                ("journey.yaml", "first_contact", 8),
                ("other.bpmn", "Task_1", None),
            ],
            "order_link": [("journey.yaml", "send_order_link", 30)],
        },
    )
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity == "warning"]
    assert [(p.file, p.line, p.element, p.suggestion) for p in errors] == [
        ("journey.yaml", 8, "first_contact", "first_contact_message"),
        ("other.bpmn", None, "Task_1", "first_contact_message"),
        ("journey.yaml", 30, "send_order_link", None),
    ]
    assert all(p.code == "unknown-hook" for p in errors)
    assert "'first_contact_mesage' is filled by no item of catalog 'acme-test'" in errors[0].message
    assert [(p.element, p.line, p.code) for p in warnings] == [
        ("items[1].hooks[0]", 19, "unused-hook"),
        ("items[1].hooks[1]", 19, "unused-hook"),
    ]
    assert all(p.file == str(FIXTURES / "minimal.yaml") for p in warnings)
    assert "'nurture_message' (filled by item 'hello')" in warnings[1].message


def test_cross_check_of_a_matching_catalog_is_empty() -> None:
    catalog = load_catalog(FIXTURES / "minimal.yaml")
    used = {hook: [("m.yaml", "s", 1)] for hook in catalog.hooks}
    assert cross_check(catalog, used) == []


def test_learn_from_names_a_nearer_step_per_hook_and_refuses_unknown_hooks() -> None:
    items = ("items:\n  - {id: a, kind: link, title: A, url: 'https://x.invalid', "
             "hooks: [intro_video]}\n  - {id: b, kind: link, title: B, "
             "url: 'https://x.invalid', hooks: [intro_video]}\n")
    loaded = load_catalog_text("catalog: t\nbrand: Acme\nlearn_from:\n"
                               "  intro_video: Event_video_played\n" + items)
    assert loaded.nearer_rewards() == {"intro_video": "Event_video_played"}
    assert loaded.learn_from[0].line == 4
    assert load_catalog(LIFEVANTAGE).nearer_rewards() == {
        "intro_video": "Event_wait_for_video_video_played"}

    [typo] = problems_of("", "catalog: t\nbrand: Acme\nlearn_from:\n"
                             "  intro_vdeo: Event_video_played\n" + items)
    assert (typo.line, typo.element, typo.code) == (4, "learn_from.intro_vdeo", "unknown-hook")
    assert typo.suggestion == "intro_video" and "no item fills" in typo.message
    bad = problems_of("", "catalog: t\nbrand: Acme\nlearn_from:\n"
                          "  IntroVideo: 'not a step'\n" + items)
    assert {p.code for p in bad} >= {"schema"} and len(bad) >= 2


def test_a_learn_from_step_no_map_using_the_hook_has_is_an_error_at_validate(
        tmp_path: Path) -> None:
    import shutil

    from nextmove._catalogs import load

    maps = tmp_path / "maps"
    shutil.copytree(LIFEVANTAGE.parent, maps)
    assert not [p for p in load([maps]).problems if p.severity == "error"]
    catalog = maps / "catalog.yaml"
    text = catalog.read_text()
    catalog.write_text(text.replace("intro_video: Event_wait_for_video_video_played",
                                    "intro_video: Event_wait_for_video_video_plyed"))
    line = 1 + text[:text.index("intro_video: Event_wait")].count("\n")
    [problem] = [p for p in load([maps]).problems if p.severity == "error"]
    assert (problem.file, problem.line, problem.element, problem.code) == (
        str(catalog), line, "learn_from.intro_video", "unknown-step")
    assert problem.suggestion == "Event_wait_for_video_video_played"
    assert "prospect_journey.yaml" in problem.message

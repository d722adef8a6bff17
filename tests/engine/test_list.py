"""`Engine.list_instances` refuses a mistyped filter by name instead of listing no instances:
a status that is none of the three, and (when nothing matches) a process never deployed or
a step no deployed map has. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from engine import DefinitionNotFound, Engine, InvalidInput, UnknownStep
from tests.conftest import FIXTURES


def test_a_mistyped_filter_is_refused_by_name(engine: Engine) -> None:
    engine.deploy([FIXTURES / "bpmn" / "linear10.bpmn"])
    engine.start("prospect_linear", "p1", "d1")
    with pytest.raises(UnknownStep, match="no deployed map has a step 'add_contct' "
                                          r"\(did you mean 'add_contact'\?\)"):
        engine.list_instances(step="add_contct")
    with pytest.raises(DefinitionNotFound, match="did you mean 'prospect_linear'"):
        engine.list_instances(process_id="prospect_lineal")
    with pytest.raises(InvalidInput, match="did you mean 'completed'"):
        engine.list_instances(status="complete")
    assert engine.list_instances(step="close_sale") == []  # a real step nobody waits at
    assert engine.list_instances(distributor_id="d9") == []  # a list filter, not a view

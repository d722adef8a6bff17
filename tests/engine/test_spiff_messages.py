"""SpiffWorkflow's parse failures read as our problems: no Python repr of an lxml element,
and a file, line and element even where Spiff gives none (issue 17)."""

from __future__ import annotations

import re

from engine.definitions import load
from tests.conftest import FIXTURES

FOLDER = FIXTURES / "bpmn" / "spiff_messages"


def test_an_unresolvable_data_output_names_the_tag_not_a_python_repr() -> None:
    path = FOLDER / "unresolved_output.bpmn"
    (problem,) = load([path]).errors
    assert (problem.file, problem.line, problem.element) == (str(path), 5, "ask")
    assert problem.message == "Cannot resolve dataOutputAssociation <targetRef>"
    assert not re.search(r"0x[0-9a-f]+|<Element", str(problem))


def test_a_correlation_without_expressions_gets_its_line_and_element() -> None:
    path = FOLDER / "correlation_without_expression.bpmn"
    (problem,) = load([path]).errors
    assert (problem.file, problem.line, problem.element) == (str(path), 3, "order_id")
    assert "missing correlation property retrieval expressions" in problem.message

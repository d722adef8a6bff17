"""The loaders under fuzzed input (hypothesis, a bounded number of examples): BPMN and YAML
maps, content catalogs, bulk-start CSVs and event logs (CSV, XES) end in a result or a
NextmoveError, never another exception. `bench/fuzz_loaders.py` runs the same for minutes."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.fuzz_loaders import TARGETS, Fuzzer, mutate, seed_bytes


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzer]:
    found = Fuzzer(tmp_path_factory.mktemp("fuzz"))
    yield found
    if found.store is not None:
        found.store.dispose()


SEEDS = {kind: seed_bytes(kind) for kind in TARGETS}


@pytest.mark.parametrize("kind", sorted(TARGETS))
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), raw=st.binary(max_size=512), which=st.booleans())
def test_a_loader_never_raises_anything_but_a_nextmove_error(
        fuzzer: Fuzzer, kind: str, seed: int, raw: bytes, which: bool) -> None:
    rng = random.Random(seed)
    data = mutate(rng, rng.choice(SEEDS[kind]), SEEDS[kind]) if which else raw
    fuzzer.run(kind, data)


def test_the_seeds_are_real_files() -> None:
    assert all(len(SEEDS[kind]) >= 1 for kind in TARGETS)
    assert len(SEEDS["bpmn"]) > 5 and len(SEEDS["yaml"]) > 5

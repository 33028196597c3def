"""Test-wide setup: every test and doctest starts with fresh automatic-name counters."""
import pytest

import xgraph as mx


@pytest.fixture(autouse=True)
def _fresh_names():
    with mx.name.NameManager():
        yield

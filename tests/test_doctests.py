"""Every example in the library's docstrings runs and prints what it says."""

import doctest
import importlib
import pkgutil

import pytest

import recsys

MODULES = sorted(
    name
    for _, name, _ in pkgutil.walk_packages(recsys.__path__, "recsys.")
    if not name.startswith("recsys.metrics")  # tests/metrics runs its own
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.failed == 0

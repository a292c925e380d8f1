"""The examples in the docstrings of every module of recsys.metrics run and print what they say."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import recsys.metrics

MODULES = [f"recsys.metrics.{info.name}" for info in pkgutil.iter_modules(recsys.metrics.__path__)]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


@pytest.mark.parametrize(
    "name", [name for name in recsys.metrics.__all__ if callable(getattr(recsys.metrics, name))]
)
def test_every_public_function_has_an_example(name: str) -> None:
    function = getattr(recsys.metrics, name)
    examples = doctest.DocTestFinder(recurse=False).find(function, name)
    assert sum(len(test.examples) for test in examples) > 0

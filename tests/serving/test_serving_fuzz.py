"""Property-based requests generated from the OpenAPI document (schemathesis): never a 5xx, and
every response matches the document."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from serving import Recommender
from serving.app import create_app

schemathesis = pytest.importorskip("schemathesis")

TOKEN = "test-admin-token"


class _DelegateASGI:
    """Forwards to the app a fixture sets: the schema loads at import, the model is a module
    fixture.

    (``schemathesis.pytest.from_fixture`` would say this directly but fails under pytest 9.)
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


# the OpenAPI document does not depend on the model: a model-less app gives the same one
_fuzz_target = _DelegateASGI(
    create_app(Recommender("/nonexistent-model-for-the-schema"), admin_token=TOKEN)
)
schema = schemathesis.openapi.from_asgi("/openapi.json", _fuzz_target)


@pytest.fixture(scope="module")
def fuzz_app(rec):
    placeholder = _fuzz_target.app
    _fuzz_target.app = create_app(rec, admin_token=TOKEN)
    yield
    _fuzz_target.app = placeholder


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_openapi_fuzz_no_server_errors(case, fuzz_app):
    """Property-based requests from the OpenAPI document: never a 5xx, responses match the schema.

    Cold start answers 422 by contract when none of the interests is known, which random
    interests never are: there the "valid data is accepted" check does not apply.
    """
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    excluded = [positive_data_acceptance] if case.operation.path.endswith(":cold-start") else []
    case.call_and_validate(excluded_checks=excluded)

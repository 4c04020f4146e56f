"""Property-based requests from our own OpenAPI description, against a real server on each
database: whatever schemathesis makes up, the answer is never a 500 (a 500 is always a bug)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.conftest import ADMIN_KEY
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live_schema(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, free_port: Callable[[], int]
) -> Iterator[schemathesis.BaseSchema]:
    server = ServerProcess(
        port=free_port(),
        data_dir=tmp_path_factory.mktemp("fuzz"),
        database_url=database_url,
        simulator_delivery_delay_ms=10,
    ).start()
    try:
        yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    finally:
        server.stop()
        assert "Traceback" not in server.log.read_text(), server.log.read_text()


def test_no_request_gets_a_server_error(live_schema: schemathesis.BaseSchema) -> None:
    # Driven by hand rather than by schemathesis's pytest plugin, which does not load under
    # this pytest.
    operations = [result.ok() for result in live_schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            response = case.call(headers={"Authorization": f"Bearer {ADMIN_KEY}"})
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} {case.query} {case.body!r}: "
                f"{response.status_code} {response.text}"
            )

        check()

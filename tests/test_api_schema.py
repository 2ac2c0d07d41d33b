"""Schemathesis over the API's own OpenAPI document against a running gateway (issue 6): requests
generated from every operation's schema, as an admin, must never get a 500 nor an answer that breaks
the document (status, content type, body schema).

Left out of the generated calls: the event stream (it never ends), and the calls that would end the
test's own login (logout, password change, token revocation) — they are tested in test_auth.py.
"""

from __future__ import annotations

from pathlib import Path

import hypothesis
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.test_auth import http

SITE = """
[site]
name = "测试小区"
timezone = "Asia/Shanghai"

[[assets]]
id = "FE-1"
category = "fire"
kind = "fire_extinguisher"
device = "fe-1"

[[checkpoints]]
id = "CP-1"
name = "北门"
tag = "04A1000001"
"""
LEFT_OUT = {("GET", "/api/v1/events/stream"), ("POST", "/api/v1/auth/logout"), ("POST", "/api/v1/auth/password"),
            ("DELETE", "/api/v1/auth/tokens/{token_id}")}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_no_generated_request_breaks_the_api(gateway_factory, tmp_path: Path) -> None:
    (tmp_path / "site.toml").write_text(SITE)
    g = gateway_factory(GATEWAY_SITE_FILE=str(tmp_path / "site.toml")).start()
    headers = {"Authorization": f"Bearer {g.token}"}
    assert http(g, "POST", "/api/v1/tickets", g.token, {"title": "北门灯不亮", "asset": "FE-1"})[0] == 201
    schema = schemathesis.openapi.from_url(g.api_url + "/api/v1/openapi.json", headers=headers)
    operations = [op.ok() for op in schema.get_all_operations()]
    tested, failures = [], []
    for op in operations:
        if (op.method.upper(), op.path) in LEFT_OUT:
            continue

        @hypothesis.settings(max_examples=30, deadline=None, database=None, derandomize=True,
                             suppress_health_check=list(hypothesis.HealthCheck))
        @hypothesis.given(case=op.as_strategy())
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=g.api_url, headers=headers, checks=CHECKS)

        tested.append(f"{op.method.upper()} {op.path}")
        try:
            run()
        except (AssertionError, FailureGroup) as exc:  # collected: one run lists every route's failures
            failures.append(f"{op.method.upper()} {op.path}: {exc}")
    assert len(tested) >= 40, tested  # every route of the document was exercised
    assert not failures, "\n\n".join(failures)
    assert g.health()["status"] in ("ok", "degraded")  # and the gateway is still up

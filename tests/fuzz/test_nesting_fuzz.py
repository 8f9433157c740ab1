"""Nesting depth as a generated dimension: schemathesis builds bodies from the schema,
which never nests deeper than a few levels, so the parser's recursion limit is
only reached by bodies made on purpose."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

JSON_ROUTES = ["/v1/download/initiate", "/v1/download/check", "/v1/download/start"]
BRACKETS = [("[", "]"), ('{"file_ids":', "}"), ('{"a":[', "]}")]
MAX_BODY_BYTES = 65536


@st.composite
def nested_bodies(draw) -> str:
    opening, closing = draw(st.sampled_from(BRACKETS))
    depth = draw(st.integers(min_value=1, max_value=(MAX_BODY_BYTES - 16) // len(opening + closing)))
    core = draw(st.sampled_from(["70000", "[70000]", '"x"', "null", "{}"]))
    return opening * depth + core + closing * depth


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(JSON_ROUTES), body=nested_bodies())
def test_any_nesting_depth_under_the_size_limit_is_a_4xx_in_the_error_shape(
    fuzz_stack, tally, http_session, path, body
):
    response = http_session.post(
        fuzz_stack.url(path), data=body, headers={"Content-Type": "application/json"}, timeout=15
    )
    tally.record(f"POST {path}", response.status_code, "POST")
    # A shallow body can be a valid request ({"file_ids":[70000]} nested once is 202).
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert set(response.json()) == {"error", "message", "requestId"}

"""The verified matrix's table (wslab.matrix), from rows as check_host makes them."""

from wslab.matrix import Row, render


def _row(layout: str, ok: bool) -> Row:
    return Row(
        host=f"wslab-lab-{layout}", layout=layout, url="http://127.0.0.1:8082/", http="200 asgi/daphne",
        websocket="open (101)", wss="open (101)", expected="HTTP 200 asgi; WS open",
        verdict="as expected" if ok else "DIFFERS: REJECTED: HTTP 404", ok=ok, probe={},
    )


def test_the_table_has_a_header_a_rule_and_a_line_per_layout():
    lines = render([_row("daphne", True), _row("broken-proxy", False)]).splitlines()
    assert lines[0].split() == ["layout", "url", "HTTP", "WebSocket", "wss", "expected", "verdict"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].startswith("daphne ") and lines[2].endswith("as expected")
    assert lines[3].startswith("broken-proxy ") and "DIFFERS: REJECTED: HTTP 404" in lines[3]


def test_columns_line_up():
    lines = render([_row("daphne", True), _row("gunicorn-uvicorn", True)]).splitlines()
    assert lines[2].index("http://") == lines[3].index("http://") == lines[0].index("url")

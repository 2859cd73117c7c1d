"""The verified matrix: probe every lab host and compare with its layout's claim.

    python -m wslab.matrix -i inventories/lab [--hold 3] [--json]

For each host of the inventory's wslab_lab group, reads its layout
(wslab_layout) and published port (wslab_lab_port), probes nginx on
127.0.0.1 with a real HTTP request and a real WebSocket, and prints one row:
layout, URL, HTTP result, WebSocket result, expected, verdict. Exits 1 when
any row differs from its layout's `expect` block.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Any

from wslab.probe import run_probe
from wslab.layout import load_layout


@dataclass
class Row:
    host: str
    layout: str
    url: str
    http: str
    websocket: str
    wss: str
    expected: str
    verdict: str
    ok: bool
    probe: dict[str, Any]


def lab_hosts(inventory: str) -> list[dict[str, Any]]:
    """Hosts of the wslab_lab group with their layout and port, from ansible-inventory."""
    out = subprocess.run(
        ["ansible-inventory", "-i", inventory, "--list"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout
    data = json.loads(out)
    hostvars = data.get("_meta", {}).get("hostvars", {})
    hosts = data.get("wslab_lab", {}).get("hosts", [])
    return [
        {
            "host": host,
            "layout": hostvars[host]["wslab_layout"],
            "port": int(hostvars[host]["wslab_lab_port"]),
            "tls_port": int(hostvars[host]["wslab_lab_tls_port"]) if "wslab_lab_tls_port" in hostvars[host] else None,
        }
        for host in hosts
    ]


def check_host(host: str, layout_name: str, port: int, hold: float, tls_port: int | None = None) -> Row:
    layout = load_layout(layout_name)
    expect_http = layout["expect"]["http"]
    expect_ws = layout["expect"]["websocket"]
    url = f"http://127.0.0.1:{port}/"
    result = run_probe(url, hold=hold if expect_ws["verdict"] == "open" else 0.0, timeout=10.0)
    http = f"{result.http_status} {result.http_interface or '-'}/{result.http_server or '-'}"
    if result.opened:
        websocket = f"open, echo {result.rtt_ms:.1f} ms, held {result.held_s:.1f} s" if result.rtt_ms else "open"
    else:
        websocket = f"{result.verdict} ({result.handshake_status})"
    expected = f"HTTP {expect_http['status']} {expect_http['interface']}; WS {expect_ws['verdict']}"
    http_ok = (
        result.http_status == expect_http["status"]
        and result.http_interface == expect_http["interface"]
        and result.http_server == expect_http["server"]
    )
    ws_ok = result.verdict == expect_ws["verdict"] and result.handshake_status == expect_ws["handshake_status"]
    wss, wss_ok, wss_message = "-", True, ""
    if tls_port:
        # The lab's certificate is self-signed: the probe is told to accept it.
        tls = run_probe(f"https://127.0.0.1:{tls_port}/", insecure=True, timeout=10.0)
        wss = f"{tls.verdict} ({tls.handshake_status})"
        wss_ok = tls.verdict == expect_ws["verdict"] and tls.handshake_status == expect_ws["handshake_status"]
        wss_message = "" if wss_ok else " over TLS: " + tls.message
    ok = http_ok and ws_ok and wss_ok
    verdict = "as expected" if ok else "DIFFERS: " + (result.message if not (http_ok and ws_ok) else wss_message)
    return Row(host, layout_name, url, http, websocket, wss, expected, verdict, ok, result.to_dict())


def render(rows: list[Row]) -> str:
    headers = ["layout", "url", "HTTP", "WebSocket", "wss", "expected", "verdict"]
    table = [[r.layout, r.url, r.http, r.websocket, r.wss, r.expected, r.verdict] for r in rows]
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *table)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(row) for row in table)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wslab.matrix", description=__doc__.splitlines()[0])
    parser.add_argument("-i", "--inventory", default="inventories/lab")
    parser.add_argument("--hold", type=float, default=3.0, help="seconds to hold each open socket (default 3)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    rows = [
        check_host(h["host"], h["layout"], h["port"], args.hold, h["tls_port"]) for h in lab_hosts(args.inventory)
    ]
    if args.json:
        print(json.dumps([asdict(row) for row in rows], indent=2))
    else:
        print(render(rows))
    return 0 if rows and all(row.ok for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

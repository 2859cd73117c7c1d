"""A minimal Chrome DevTools Protocol client over the pinned ``websockets``.

Just what the browser test needs: one connection to the browser endpoint, one
page target attached in flat mode (commands carry a sessionId), commands with
a deadline, and every event kept with the monotonic time it arrived at.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

# No single DevTools command here takes more than a fraction of a second.
COMMAND_TIMEOUT = 10.0


class CDPError(RuntimeError):
    pass


@dataclass
class Event:
    method: str
    params: dict[str, Any]
    session_id: str | None
    at: float  # time.monotonic() when it arrived


class CDPConnection:
    """One DevTools WebSocket; use ``async with CDPConnection.open(url)``."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[Event] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str) -> CDPConnection:
        # No Origin header: Chromium refuses DevTools clients that send one
        # unless --remote-allow-origins allows it. DevTools messages (a whole
        # DOM, a screenshot) can be large.
        ws = await connect(url, max_size=None, open_timeout=COMMAND_TIMEOUT)
        return cls(ws)

    async def __aenter__(self) -> CDPConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._reader.cancel()
        try:
            await asyncio.wait_for(self._ws.close(), COMMAND_TIMEOUT)
        except (TimeoutError, ConnectionClosed):
            pass
        for future in self._pending.values():
            future.cancel()

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                message = json.loads(raw)
                if "id" in message:
                    future = self._pending.pop(message["id"], None)
                    if future is not None and not future.done():
                        future.set_result(message)
                else:
                    self.events.append(
                        Event(
                            message["method"],
                            message.get("params", {}),
                            message.get("sessionId"),
                            time.monotonic(),
                        )
                    )
        except ConnectionClosed:
            pass
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(CDPError("DevTools connection closed"))

    async def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> dict[str, Any]:
        message_id = next(self._ids)
        message: dict[str, Any] = {
            "id": message_id,
            "method": method,
            "params": params or {},
        }
        if session_id is not None:
            message["sessionId"] = session_id
        future: asyncio.Future[dict[str, Any]] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending[message_id] = future
        await self._ws.send(json.dumps(message))
        try:
            answer = await asyncio.wait_for(future, COMMAND_TIMEOUT)
        finally:
            self._pending.pop(message_id, None)
        if "error" in answer:
            raise CDPError(f"{method}: {answer['error']}")
        return answer.get("result", {})


class Page:
    """A page target of the browser, attached in flat mode."""

    def __init__(self, cdp: CDPConnection, session_id: str) -> None:
        self.cdp = cdp
        self.session_id = session_id

    @classmethod
    async def create(cls, cdp: CDPConnection) -> Page:
        target = await cdp.send("Target.createTarget", {"url": "about:blank"})
        attached = await cdp.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = cls(cdp, attached["sessionId"])
        for domain in ("Page", "Runtime", "Network", "Log"):
            await page.send(f"{domain}.enable")
        return page

    async def send(
        self, method: str, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return await self.cdp.send(method, params, self.session_id)

    def events(self, method: str, since: float = 0.0) -> list[Event]:
        return [
            e
            for e in self.cdp.events
            if e.method == method and e.session_id == self.session_id and e.at >= since
        ]

    async def evaluate(self, expression: str) -> Any:
        """Run a JavaScript expression in the page and return its JSON value."""
        result = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get(
                "text"
            )
            raise CDPError(f"page raised: {text}")
        return result["result"].get("value")

    async def navigate(self, url: str) -> None:
        since = time.monotonic()
        result = await self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CDPError(f"navigation to {url} failed: {result['errorText']}")
        await wait_for(
            lambda: bool(self.events("Page.loadEventFired", since)),
            COMMAND_TIMEOUT,
            f"the load event of {url}",
        )

    async def click(self, selector: str) -> None:
        """A real mouse click (press and release) at the element's centre."""
        box = await self.evaluate(f"""(() => {{
                const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();
                return {{x: r.left + r.width / 2, y: r.top + r.height / 2}};
            }})()""")
        for kind in ("mousePressed", "mouseReleased"):
            await self.send(
                "Input.dispatchMouseEvent",
                {
                    "type": kind,
                    "x": box["x"],
                    "y": box["y"],
                    "button": "left",
                    "clickCount": 1,
                },
            )

    async def type_into(self, selector: str, text: str) -> None:
        """Focus the element and type as a keyboard would (input events fire)."""
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        await self.send("Input.insertText", {"text": text})


async def wait_for(
    predicate: Any, timeout: float, what: str, interval: float = 0.05
) -> Any:
    """Poll ``predicate`` (sync or async) until it returns a truthy value or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(interval)

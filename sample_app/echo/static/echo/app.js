// Echo page: keeps a WebSocket to /ws/echo/ open, reconnecting with
// exponential backoff, and shows what goes out and what comes back.
(function () {
  "use strict";

  var PATH = "/ws/echo/";
  // Reconnect delay: starts at 0.5 s, doubles after each failed attempt,
  // never exceeds 10 s, and is reset once a connection opens.
  var INITIAL_DELAY_MS = 500;
  var MAX_DELAY_MS = 10000;
  var MAX_LOG_ENTRIES = 200;

  var statusEl = document.getElementById("ws-status");
  var urlEl = document.getElementById("ws-url");
  var form = document.getElementById("send-form");
  var input = document.getElementById("message");
  var button = document.getElementById("send-button");
  var logEl = document.getElementById("log");

  // Same host as the page; wss when the page itself came over https.
  var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  var url = scheme + "//" + window.location.host + PATH;
  urlEl.textContent = url;

  var socket = null;
  var delay = INITIAL_DELAY_MS;
  var retryTimer = null;

  function setStatus(state, text) {
    statusEl.className = "status status-" + state;
    statusEl.textContent = text;
    var open = state === "open";
    input.disabled = !open;
    button.disabled = !open;
  }

  function log(kind, text) {
    var item = document.createElement("li");
    item.className = kind;
    item.textContent = new Date().toLocaleTimeString() + " " + text;
    logEl.appendChild(item);
    while (logEl.children.length > MAX_LOG_ENTRIES) {
      logEl.removeChild(logEl.firstChild);
    }
    logEl.scrollTop = logEl.scrollHeight;
  }

  function connect() {
    retryTimer = null;
    setStatus("connecting", "connecting");
    socket = new WebSocket(url);
    socket.binaryType = "arraybuffer";

    socket.addEventListener("open", function () {
      delay = INITIAL_DELAY_MS;
      setStatus("open", "connected");
      log("info", "connected to " + url);
      input.focus();
    });

    socket.addEventListener("message", function (event) {
      if (typeof event.data === "string") {
        log("received", "\u2190 " + event.data);
      } else {
        log("received", "\u2190 (" + event.data.byteLength + " bytes of binary)");
      }
    });

    // A refused handshake (wrong Origin, a server without WebSocket support,
    // a proxy that dropped the Upgrade header) shows up as close code 1006.
    socket.addEventListener("close", function (event) {
      var reason = event.reason ? ", " + event.reason : "";
      setStatus("closed", "closed (code " + event.code + reason + ")");
      log("info", "closed with code " + event.code + reason +
          "; retrying in " + (delay / 1000) + " s");
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    if (retryTimer !== null) {
      return;
    }
    retryTimer = window.setTimeout(connect, delay);
    delay = Math.min(delay * 2, MAX_DELAY_MS);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value;
    if (!text || !socket || socket.readyState !== WebSocket.OPEN) {
      return;
    }
    socket.send(text);
    log("sent", "\u2192 " + text);
    input.value = "";
  });

  connect();
})();

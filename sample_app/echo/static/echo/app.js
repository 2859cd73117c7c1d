// Echo page: keeps a WebSocket to /ws/echo/ open, reconnecting with
// exponential backoff, shows what goes out and what comes back, and says what
// it is connected to: the layout, which server served the page and which
// holds the socket, the last close code and how often it reconnected. When a
// handshake fails before any socket opened, it asks the socket's URL over
// plain HTTP who answers there, and says why (the probe's verdict words; each
// is a section of docs/runbook.md).
(function () {
  "use strict";

  var PATH = "/ws/echo/";
  // The first frame is then a JSON welcome naming the server holding the socket.
  var QUERY = "?welcome=1";
  // Reconnect delay: starts at 0.5 s, doubles after each failed attempt,
  // never exceeds 10 s, and is reset once a connection opens.
  var INITIAL_DELAY_MS = 500;
  var MAX_DELAY_MS = 10000;
  var MAX_LOG_ENTRIES = 200;
  var RUNBOOK = "docs/runbook.md#verdict-";

  function byId(id) {
    return document.getElementById(id);
  }

  var statusEl = byId("ws-status");
  var urlEl = byId("ws-url");
  var form = byId("send-form");
  var input = byId("message");
  var button = byId("send-button");
  var logEl = byId("log");
  var socketServerEl = byId("socket-server");
  var closeCodeEl = byId("close-code");
  var reconnectsEl = byId("reconnects");
  var diagnosisEl = byId("diagnosis");

  // Same host as the page; wss when the page itself came over https.
  var secure = window.location.protocol === "https:";
  var url = (secure ? "wss:" : "ws:") + "//" + window.location.host + PATH + QUERY;
  var plainUrl = window.location.protocol + "//" + window.location.host + PATH;
  urlEl.textContent = url;

  var socket = null;
  var delay = INITIAL_DELAY_MS;
  var retryTimer = null;
  var opens = 0;

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

  function showDiagnosis(verdict, text) {
    diagnosisEl.dataset.verdict = verdict;
    diagnosisEl.textContent = text + " (" + verdict + ": see " + RUNBOOK + verdict + ")";
    diagnosisEl.hidden = false;
  }

  function clearDiagnosis() {
    delete diagnosisEl.dataset.verdict;
    diagnosisEl.textContent = "";
    diagnosisEl.hidden = true;
  }

  // A browser hides why a handshake failed (every failure is close code
  // 1006), but a plain GET of the same URL shows who answers there: the app
  // stamps each response with X-Wslab-Interface and X-Wslab-Server.
  function diagnose() {
    var opensBefore = opens;
    window.fetch(plainUrl, {cache: "no-store", redirect: "manual"}).then(function (response) {
      if (opens !== opensBefore) {
        return;  // a socket opened meanwhile: nothing to explain
      }
      var status = response.status;
      var iface = (response.headers.get("X-Wslab-Interface") || "").toLowerCase();
      var server = response.headers.get("X-Wslab-Server") || "an unnamed server";
      var proxy = response.headers.get("Server") || "the proxy";
      if (iface === "wsgi") {
        showDiagnosis("wsgi-backend", "The socket's URL is served over WSGI by " + server +
            " (HTTP " + status + "): a WSGI server cannot hold a WebSocket. Route /ws/ to an " +
            "ASGI server.");
      } else if (iface === "asgi") {
        if (opens > 0) {
          return;  // it held a socket before: the server is back, the next attempt will tell
        }
        showDiagnosis("upgrade-not-forwarded", "The socket's URL is served as plain HTTP by " +
            server + ", an ASGI server that could have upgraded (HTTP " + status + "): the " +
            "proxy did not forward the Upgrade and Connection headers.");
      } else if (status === 502 || status === 504) {
        showDiagnosis("server-down", proxy + " answered HTTP " + status + " for the socket's " +
            "URL: no app server answers behind it (stopped, restarting, or not where the " +
            "proxy points).");
      } else {
        showDiagnosis("http-status", "The socket's URL answered HTTP " + status + " from " +
            proxy + ".");
      }
    }, function () {
      if (opens === opensBefore) {
        showDiagnosis("unreachable", "Nothing answered at " + window.location.host + ".");
      }
    });
  }

  function connect() {
    retryTimer = null;
    var opened = false;
    var welcomed = false;
    setStatus("connecting", "connecting");
    socket = new WebSocket(url);
    socket.binaryType = "arraybuffer";

    socket.addEventListener("open", function () {
      opened = true;
      opens += 1;
      delay = INITIAL_DELAY_MS;
      reconnectsEl.textContent = String(opens - 1);
      clearDiagnosis();
      setStatus("open", "connected");
      log("info", "connected to " + url);
      input.focus();
    });

    socket.addEventListener("message", function (event) {
      if (!welcomed && typeof event.data === "string") {
        welcomed = true;
        var hello = null;
        try {
          hello = JSON.parse(event.data);
        } catch (ignored) {
          hello = null;
        }
        if (hello !== null && hello.type === "welcome") {
          socketServerEl.textContent = hello.server + " (pid " + hello.pid + ")";
          log("info", "socket held by " + hello.server + " (pid " + hello.pid + ")");
          return;
        }
      }
      welcomed = true;
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
      closeCodeEl.textContent = String(event.code) + (event.reason ? " (" + event.reason + ")" : "");
      if (opened) {
        // No socket now: the next one's welcome names its holder again.
        socketServerEl.textContent = "none";
      }
      setStatus("closed", "closed (code " + event.code + reason + ")");
      log("info", "closed with code " + event.code + reason +
          "; retrying in " + (delay / 1000) + " s");
      if (!opened) {
        diagnose();
      }
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

/// The status page's script and style sheet, served from the binary (no CDN: a seller's
/// network may block one, and the Content-Security-Policy allows this server alone).
enum StatusAssets {
    /// Keeps each row's countdown and band running from its `data-deadline`, and every few
    /// seconds rebuilds the sections from the JSON API. Text goes in with `textContent` only.
    static let script = #"""
        "use strict";
        (function () {
          var REFRESH_MS = 5000;
          var offset = 0; // the server's clock minus this browser's, in ms
          var timeZone = "UTC";
          var answers = false; // signed in: each row links to its answer form

          function band(seconds) {
            if (seconds < 0) return "past";
            if (seconds < 1800) return "soon";
            if (seconds < 10800) return "hours";
            if (seconds < 86400) return "day";
            return "later";
          }
          function pad(n) { return n < 10 ? "0" + n : String(n); }
          // As the server writes it: 2d 03h, 1h 05m, 4m 10s, 45s; "-" once passed.
          function duration(seconds) {
            var s = Math.floor(Math.abs(seconds));
            var d = Math.floor(s / 86400); s %= 86400;
            var h = Math.floor(s / 3600); s %= 3600;
            var m = Math.floor(s / 60); var sec = s % 60;
            var text = d > 0 ? d + "d " + pad(h) + "h" : h > 0 ? h + "h " + pad(m) + "m" : m > 0 ? m + "m " + pad(sec) + "s" : sec + "s";
            return seconds < 0 ? "-" + text : text;
          }
          function local(iso) {
            if (!iso) return "never";
            try {
              return new Intl.DateTimeFormat("sv-SE", {
                timeZone: timeZone, year: "numeric", month: "2-digit", day: "2-digit",
                hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23"
              }).format(new Date(iso));
            } catch (e) {
              return iso;
            }
          }
          function now() { return Date.now() + offset; }

          function tick() {
            var rows = document.querySelectorAll("tr[data-deadline]");
            for (var i = 0; i < rows.length; i++) {
              var left = (Date.parse(rows[i].getAttribute("data-deadline")) - now()) / 1000;
              if (isNaN(left)) continue;
              rows[i].className = "band-" + band(left);
              var cell = rows[i].querySelector("td.left");
              if (cell) cell.textContent = duration(left);
            }
          }

          function cell(text) {
            var td = document.createElement("td");
            td.textContent = text === null || text === undefined ? "" : String(text);
            return td;
          }
          function fill(tbody, rows) {
            while (tbody.firstChild) tbody.removeChild(tbody.firstChild);
            for (var i = 0; i < rows.length; i++) tbody.appendChild(rows[i]);
          }
          function get(path) {
            return fetch(path, { cache: "no-store", credentials: "same-origin" }).then(function (response) {
              if (!response.ok) throw new Error(path + ": " + response.status);
              return response.json();
            });
          }

          function showRequests(answer) {
            var tbody = document.querySelector("#requests tbody");
            if (!tbody) return;
            timeZone = answer.time_zone || timeZone;
            offset = Date.parse(answer.generated_at) - Date.now();
            fill(tbody, answer.requests.map(function (r) {
              var tr = document.createElement("tr");
              tr.setAttribute("data-deadline", r.deadline);
              var left = cell(""); left.className = "left"; tr.appendChild(left);
              tr.appendChild(cell(r.deadline_local));
              tr.appendChild(cell(r.source));
              tr.appendChild(cell(r.marketplace));
              tr.appendChild(cell(r.order));
              tr.appendChild(cell(r.reason));
              tr.appendChild(cell(r.initiator));
              tr.appendChild(cell(r.alerts.map(function (a) { return a.rule; }).join(", ")));
              if (answers) {
                var td = document.createElement("td");
                td.className = "answer";
                [["approve", "Approve\u2026"], ["refuse", "Refuse\u2026"]].forEach(function (choice) {
                  var link = document.createElement("a");
                  link.className = choice[0];
                  link.href = "/answer?" + new URLSearchParams({ source: r.source, id: r.id, decision: choice[0] }).toString();
                  link.textContent = choice[1];
                  td.appendChild(link);
                  td.appendChild(document.createTextNode(" "));
                });
                tr.appendChild(td);
              }
              return tr;
            }));
            var heading = document.querySelector("#requests h2");
            if (heading) heading.textContent = "Pending requests: " + answer.pending;
            document.title = "cancelwatch: " + answer.pending + " pending";
            var none = document.querySelector("#requests p.none");
            if (none) none.textContent = answer.requests.length ? "" : "No pending cancellation requests.";
            var note = document.querySelector("#requests p.truncated");
            if (note) note.textContent = answer.truncated ? "Showing the " + answer.requests.length + " nearest deadlines of " + answer.pending + "." : "";
            tick();
          }

          function showSources(answer) {
            var tbody = document.querySelector("#sources tbody");
            if (!tbody) return;
            fill(tbody, answer.sources.map(function (s) {
              var state = s.down ? "down" : s.consecutive_failures > 0 ? "failing" : s.polled ? "ok" : "not polled yet";
              var tr = document.createElement("tr");
              tr.className = "source-" + (state === "not polled yet" ? "waiting" : state);
              tr.appendChild(cell(s.source));
              tr.appendChild(cell(state));
              var ago = s.last_success_at ? " " + duration((now() - Date.parse(s.last_success_at)) / 1000) + " ago" : "";
              tr.appendChild(cell(local(s.last_success_at) + ago));
              tr.appendChild(cell(local(s.last_poll_at)));
              tr.appendChild(cell(s.consecutive_failures));
              tr.appendChild(cell(s.last_error || ""));
              return tr;
            }));
          }

          function showDeliveries(answer) {
            var tbody = document.querySelector("#deliveries tbody");
            if (!tbody) return;
            fill(tbody, answer.sinks.map(function (s) {
              var tr = document.createElement("tr");
              tr.className = s.dead > 0 ? "sink-dead" : "sink-ok";
              tr.appendChild(cell(s.sink + (s.configured ? "" : " (no longer configured)")));
              tr.appendChild(cell(s.pending));
              tr.appendChild(cell(s.dead));
              return tr;
            }));
            var list = document.querySelector("#deliveries ul.dead-letters");
            if (!list) return;
            var letters = answer.dead_letters.map(function (d) {
              var what = d.event === null ? "event " + d.event_id
                : d.event + (d.rule ? " " + d.rule : "") + " " + (d.order === null ? d.source : d.source + " " + d.order);
              var li = document.createElement("li");
              li.textContent = local(d.at) + " " + d.sink + " " + what + ", " + d.attempts + " attempt" + (d.attempts === 1 ? "" : "s") + ": " + d.error;
              return li;
            });
            if (letters.length === 0) {
              var none = document.createElement("li");
              none.textContent = "None.";
              letters.push(none);
            }
            fill(list, letters);
          }

          function showEvents(answer) {
            var list = document.querySelector("#events ol");
            if (!list) return;
            var events = answer.events.slice(-5);
            if (events.length === 0) return;
            fill(list, events.map(function (e) {
              var li = document.createElement("li");
              li.className = "severity-" + e.severity;
              var about = e.order === null ? e.source : e.source + " " + e.order;
              li.textContent = local(e.occurred_at) + " " + e.event + (e.rule ? " " + e.rule : "") + " " + about + ": " + e.message;
              return li;
            }));
          }

          function refresh() {
            get("/api/v1/requests").then(showRequests).catch(function () {});
            get("/api/v1/sources").then(showSources).catch(function () {});
            get("/api/v1/deliveries").then(showDeliveries).catch(function () {});
            get("/api/v1/events").then(showEvents).catch(function () {});
          }

          function start() {
            var body = document.body;
            if (body.getAttribute("data-now")) offset = Date.parse(body.getAttribute("data-now")) - Date.now();
            timeZone = body.getAttribute("data-time-zone") || timeZone;
            answers = body.getAttribute("data-answers") === "on";
            tick();
            setInterval(tick, 1000);
            setInterval(refresh, REFRESH_MS);
          }
          if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
          else start();
        })();

        """#

    static let styleSheet = """
        :root { color-scheme: light dark; --past: #8b1a1a; --soon: #d93025; --hours: #f29900; --day: #f9e076; --later: transparent; }
        body { font: 14px/1.4 system-ui, sans-serif; margin: 1rem 2rem; }
        h1 { font-size: 1.4rem; margin: 0; }
        h2 { font-size: 1.1rem; margin: 1.5rem 0 0.5rem; }
        header p { margin: 0.2rem 0; color: GrayText; }
        table { border-collapse: collapse; width: 100%; }
        th, td { text-align: left; padding: 0.25rem 0.5rem; border-bottom: 1px solid color-mix(in srgb, CanvasText 15%, transparent); vertical-align: top; }
        td { overflow-wrap: anywhere; }
        td.left { font-variant-numeric: tabular-nums; white-space: nowrap; font-weight: 600; }
        tr.band-past { background: var(--past); color: #fff; }
        tr.band-soon { background: var(--soon); color: #fff; }
        tr.band-hours { background: var(--hours); color: #000; }
        tr.band-day { background: var(--day); color: #000; }
        tr.band-later { background: var(--later); }
        tr.source-down, tr.source-failing, tr.sink-dead { color: #d93025; font-weight: 600; }
        ol.events, ul.dead-letters { padding-left: 1.5rem; }
        li.severity-critical { color: #d93025; }
        li.severity-warning { color: #b06000; }
        p.truncated, p.none { color: GrayText; }
        header form.signed-in { margin: 0.2rem 0; color: GrayText; }
        main.login, main.answer { max-width: 40rem; }
        main.login label, main.answer label { display: block; margin: 0.5rem 0; }
        main.answer form { margin: 1rem 0; }
        main.answer dt { font-weight: 600; }
        main.answer dd { margin: 0 0 0.4rem 1rem; overflow-wrap: anywhere; }
        p.problem { color: #d93025; font-weight: 600; }
        p.done { color: #188038; font-weight: 600; }

        """
}

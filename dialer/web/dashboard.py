"""``/dashboard``: the account's campaigns at a glance — a progress bar, outcome counts, the explain sentence,
calls per minute — in server-rendered HTML with a few lines of JS polling ``/dashboard/data`` (no build
step). The page asks for the account's API key and keeps it in the tab's sessionStorage only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from dialer.clock import to_iso
from dialer.web.api import Account

router = APIRouter(tags=["dashboard"])
MINUTES = 30

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dialer dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; }
 h1 { font-size: 1.3rem; } table { border-collapse: collapse; width: 100%; margin-top: 1rem; }
 th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #ddd; vertical-align: top; }
 td.n { text-align: right; font-variant-numeric: tabular-nums; }
 .bar { width: 10rem; height: .8rem; background: #eee; border-radius: .4rem; overflow: hidden; }
 .bar > div { height: 100%; background: #3a7; }
 .summary { color: #555; font-size: .9em; } #error { color: #b00; } svg rect { fill: #37a; }
 #login[hidden], #board[hidden] { display: none; }
</style></head><body>
<h1>dialer</h1>
<form id="login"><label>API key <input id="key" type="password" autocomplete="off" size="40"></label>
 <button id="enter" type="submit">Show my campaigns</button></form>
<div id="board" hidden>
 <p>Account <b id="account"></b> · updated <span id="updated"></span> · <a href="#" id="logout">log out</a></p>
 <h2>Calls per minute (last %MINUTES% min)</h2><svg id="chart" width="600" height="80"></svg>
 <table><thead><tr><th>campaign</th><th>status</th><th>progress</th><th>answered</th><th>failed</th>
 <th>skipped</th><th>pending</th><th>why</th></tr></thead><tbody id="campaigns"></tbody></table>
</div>
<p id="error"></p>
<script>
const $ = (id) => document.getElementById(id);
function cell(row, text, cls) { const td = row.insertCell(); td.textContent = text; if (cls) td.className = cls; return td; }
async function refresh() {
  const key = sessionStorage.getItem("dialer-key");
  if (!key) return;
  const res = await fetch("dashboard/data", { headers: { "Authorization": "Bearer " + key } });
  const body = await res.json();
  if (!res.ok) { $("error").textContent = body.error || res.status; sessionStorage.removeItem("dialer-key"); show(false); return; }
  $("error").textContent = ""; show(true);
  $("account").textContent = body.account; $("updated").textContent = body.at;
  const rows = $("campaigns"); rows.replaceChildren();
  for (const c of body.campaigns) {
    const row = rows.insertRow(); row.id = "c-" + c.id; row.dataset.id = c.id;
    cell(row, c.name, "name"); cell(row, c.status, "status");
    const bar = cell(row, "", "progress"); const outer = document.createElement("div"); outer.className = "bar";
    const inner = document.createElement("div"); inner.style.width = c.progress + "%"; outer.append(inner); bar.append(outer);
    bar.title = c.done + " of " + c.contacts; bar.dataset.done = c.done; bar.dataset.contacts = c.contacts;
    cell(row, c.counters.delivered, "n delivered"); cell(row, c.counters.failed, "n failed");
    cell(row, c.counters.skipped, "n skipped"); cell(row, c.counters.scheduled + c.counters.dialing, "n pending");
    cell(row, c.summary, "summary");
  }
  const chart = $("chart"); chart.replaceChildren();
  const max = Math.max(1, ...body.per_minute.map((p) => p[1])), w = 600 / body.per_minute.length;
  body.per_minute.forEach(([at, n], i) => {
    const r = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    const h = Math.round(76 * n / max); r.setAttribute("x", i * w + 1); r.setAttribute("width", w - 2);
    r.setAttribute("y", 78 - h); r.setAttribute("height", h); r.dataset.minute = at; r.dataset.calls = n;
    const t = document.createElementNS("http://www.w3.org/2000/svg", "title"); t.textContent = at + ": " + n + " calls";
    r.append(t); chart.append(r);
  });
}
function show(on) { $("board").hidden = !on; $("login").hidden = on; }
$("login").addEventListener("submit", (e) => { e.preventDefault(); sessionStorage.setItem("dialer-key", $("key").value.trim()); refresh(); });
$("logout").addEventListener("click", (e) => { e.preventDefault(); sessionStorage.removeItem("dialer-key"); show(false); });
refresh(); setInterval(refresh, 2000);
</script></body></html>
""".replace("%MINUTES%", str(MINUTES))


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
def dashboard() -> HTMLResponse:
    """The page itself holds no data; it asks for an API key and reads /dashboard/data with it."""
    return HTMLResponse(PAGE)


@router.get("/dashboard/data")
def dashboard_data(scope: Account) -> dict[str, Any]:
    """What the dashboard shows: the account's latest campaigns and its calls per minute."""
    now = scope.core.now()
    campaigns = []
    for c in scope.campaigns(None, 50, None)["result"]:
        n = c["counters"]
        contacts = n["scheduled_calls"]
        done = n["delivered"] + n.get("voicemail", 0) + n["failed"] + n["skipped"]
        summary = scope.campaign(c["id"])["summary"]
        campaigns.append(
            {
                "id": c["id"],
                "name": c["name"],
                "status": c["status"],
                "counters": n,
                "contacts": contacts,
                "done": done,
                "progress": round(100 * done / contacts) if contacts else 100,
                "summary": summary,
            }
        )
    minute_now = now - now % 60_000
    counts = scope.core.store.dials_per_minute(scope.account_id, minute_now - (MINUTES - 1) * 60_000)
    per_minute = [
        [to_iso(minute_now - i * 60_000), counts.get(minute_now - i * 60_000, 0)]
        for i in reversed(range(MINUTES))
    ]
    return {"account": scope.account_id, "at": to_iso(now), "campaigns": campaigns, "per_minute": per_minute}

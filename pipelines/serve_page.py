"""The search page of ``ledgerlake serve``: plain server-rendered HTML and a little JavaScript.

``/`` is a query box with the filters; results are orders with their matching sentences
(refreshed as one types, from ``/results``). ``/orders/{id}`` shows the order's timeline
and its state as of a moment chosen on a slider, optionally as known at another.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from eventlog.errors import InvalidInputError
from eventlog.orders.events import ORDER_EVENT_TYPES
from pipelines.serve_api import query_time, served_lake
from projections.narratives import narrate_history
from projections.search import SearchHit

router = APIRouter(include_in_schema=False)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;max-width:980px;margin:1.5em auto;padding:0 1em;color:#222}
a{color:#0645ad} form{display:flex;flex-wrap:wrap;gap:.5em;align-items:end}
label{display:flex;flex-direction:column;font-size:12px;color:#555}
input,select{font:inherit;padding:.25em} #q{width:100%;font-size:18px}
.order{border-top:1px solid #ddd;padding:.6em 0} .hit{margin:.2em 0 .2em 1em}
.score{color:#888;font-size:12px} .err{color:#a00} table{border-collapse:collapse}
td,th{padding:.15em .6em;text-align:left;border-bottom:1px solid #eee;vertical-align:top}
tr.later{color:#bbb} .slider{width:100%} .muted{color:#777;font-size:13px}
"""

SEARCH_JS = """
const form = document.getElementById('search');
let timer = null;
async function refresh() {
  const params = new URLSearchParams(new FormData(form));
  history.replaceState(null, '', '/?' + params);
  const res = await fetch('/results?' + params);
  document.getElementById('results').innerHTML = await res.text();
}
form.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(refresh, 250); });
form.addEventListener('submit', (e) => { e.preventDefault(); refresh(); });
"""

ORDER_JS = """
const asOf = document.getElementById('as-of'), known = document.getElementById('known-at');
const useKnown = document.getElementById('use-known');
function iso(ms) { return new Date(Number(ms)).toISOString(); }
async function show() {
  const params = new URLSearchParams({as_of: iso(asOf.value)});
  if (useKnown.checked) params.set('known_at', iso(known.value));
  document.getElementById('as-of-label').textContent = iso(asOf.value);
  document.getElementById('known-at-label').textContent = useKnown.checked ? iso(known.value) : 'now';
  const res = await fetch('/api/orders/' + encodeURIComponent(ORDER) + '/state?' + params);
  const body = await res.json();
  const out = document.getElementById('state');
  if (!res.ok) { out.innerHTML = '<p class="err"></p>'; out.firstChild.textContent = body.message; return; }
  if (body.state === null) { out.innerHTML = '<p>The order did not exist then (as far as was known).</p>'; }
  else {
    out.innerHTML = '<table></table>';
    for (const [k, v] of Object.entries(body.state)) {
      const tr = out.firstChild.insertRow(); tr.insertCell().textContent = k;
      tr.insertCell().textContent = v === null ? '' : String(v);
    }
  }
  for (const row of document.querySelectorAll('#timeline tr[data-occurred]')) {
    const seen = Number(row.dataset.occurred) <= Number(asOf.value) &&
      (!useKnown.checked || Number(row.dataset.recorded) <= Number(known.value));
    row.classList.toggle('later', !seen);
  }
}
for (const el of [asOf, known, useKnown]) el.addEventListener('input', show);
show();
"""


def _page(title: str, body: str, script: str = "") -> HTMLResponse:
    html = (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
        f"<meta name=viewport content='width=device-width'><style>{STYLE}</style></head>"
        f"<body>{body}<script>{script}</script></body></html>"
    )
    return HTMLResponse(html)


def _option(value: str, chosen: str | None, label: str | None = None) -> str:
    sel = " selected" if value == (chosen or "") else ""
    return f"<option value='{escape(value)}'{sel}>{escape(label or value or 'any')}</option>"


def _field(name: str, label: str, value: str | None, placeholder: str = "") -> str:
    return (
        f"<label>{label}<input name={name} value='{escape(value or '')}' "
        f"placeholder='{escape(placeholder)}' size=22></label>"
    )


def _grouped(hits: list[SearchHit], k: int) -> list[tuple[str, list[SearchHit]]]:
    groups: dict[str, list[SearchHit]] = {}
    for hit in hits:
        if hit.order_id in groups or len(groups) < k:
            groups.setdefault(hit.order_id, []).append(hit)
    return list(groups.items())


def _results_html(request: Request, params: dict[str, Any]) -> str:
    query = (params.get("q") or "").strip()
    if not query:
        return "<p class=muted>Type what you are looking for, in plain words.</p>"
    try:
        filters = {
            "level": params["level"] or "events",
            "event_type": params["type"] or None,
            "customer": params["customer"] or None,
            "since": query_time(params["since"] or None, "since"),
            "until": query_time(params["until"] or None, "until"),
            "known_at": query_time(params["known_at"] or None, "known at"),
            "hybrid": bool(params["hybrid"]),
        }
        k = params["k"]
        events = filters["level"] == "events"
        # sentences are grouped by order: ask for more than k so k orders show
        hits = served_lake(request).search(query, k=min(k * 5, 1_000) if events else k, **filters)
    except InvalidInputError as exc:
        return f"<p class=err>{escape(str(exc))}</p>"
    if not hits:
        return "<p>No matches.</p>"
    parts = []
    for order_id, group in _grouped(hits, k):
        link = f"/orders/{quote(order_id, safe='')}"
        if params["known_at"]:
            link += f"?known_at={quote(params['known_at'], safe='')}"
        link = escape(link)
        lines = "".join(
            f"<div class=hit><span class=score>{h.score:.3f}</span> {escape(h.text)} "
            f"<span class=muted>{escape(h.event_type or h.status or '')}"
            f"{' ' + h.occurred_at.date().isoformat() if h.occurred_at else ''}</span></div>"
            for h in group
        )
        parts.append(f"<div class=order><a href='{link}'>{escape(order_id)}</a>{lines}</div>")
    return "".join(parts)


Text = Annotated[str | None, Query(max_length=2_000)]


def _params(
    q: Text = None,
    level: Text = None,
    type: Text = None,
    customer: Text = None,
    since: Text = None,
    until: Text = None,
    known_at: Text = None,
    hybrid: Text = None,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict[str, Any]:
    """The search's query parameters, shared by the page and its results fragment."""
    return dict(locals())


SearchParams = Annotated[dict[str, Any], Depends(_params)]


@router.get("/", response_class=HTMLResponse)
def search_page(request: Request, p: SearchParams) -> HTMLResponse:
    """The query box with the CLI's filters and the results below it."""
    q, level, type, k = p["q"], p["level"], p["type"], p["k"]
    types = "".join(_option(t, type) for t in ("", *ORDER_EVENT_TYPES))
    levels = _option("events", level, "sentences") + _option("orders", level, "order stories")
    checked = " checked" if p["hybrid"] else ""
    body = (
        "<h1>Order history search</h1><form id=search>"
        f"<input id=q name=q autofocus autocomplete=off value='{escape(q or '')}' "
        "placeholder='customer complained the parcel arrived damaged'>"
        f"<label>match<select name=level>{levels}</select></label>"
        f"<label>event type<select name=type>{types}</select></label>"
        + _field("customer", "customer id", p["customer"])
        + _field("since", "occurred since", p["since"], "2026-01-01T00:00Z")
        + _field("until", "occurred until", p["until"])
        + _field("known_at", "as known at", p["known_at"])
        + f"<label>hybrid<input type=checkbox name=hybrid value=1{checked}></label>"
        f"<label>orders<input name=k type=number min=1 max=100 value={k}></label>"
        "<button>Search</button></form>"
        f"<div id=results>{_results_html(request, p)}</div>"
    )
    return _page("LedgerLake search", body, SEARCH_JS)


@router.get("/results", response_class=HTMLResponse)
def search_results(request: Request, p: SearchParams) -> HTMLResponse:
    """The results fragment the page fetches as one types."""
    return HTMLResponse(_results_html(request, p))


def _ms(value: datetime) -> int:
    """Milliseconds, rounded up: the slider at that value includes the event (µs times)."""
    micros = (value - EPOCH) // timedelta(microseconds=1)
    return -(-micros // 1000)


@router.get("/orders/{order_id}", response_class=HTMLResponse)
def order_page(request: Request, order_id: str, known_at: Text = None) -> HTMLResponse:
    """The order's timeline, and its state as of the slider's moment (as known at another)."""
    lake = served_lake(request)
    records = lake.stream(order_id)
    if not records:
        body = f"<p><a href='/'>search</a></p><p class=err>Unknown order {escape(order_id)}.</p>"
        response = _page("unknown order", body)
        response.status_code = 404
        return response
    decode = lake.log.registry.decode
    sentences = narrate_history(
        order_id, [decode(r.event_type, r.schema_version, r.payload) for r in records]
    )
    rows = "".join(
        f"<tr data-occurred={_ms(r.occurred_at)} data-recorded={_ms(r.recorded_at)}>"
        f"<td>{r.version}</td><td>{r.occurred_at.isoformat(timespec='seconds')}</td>"
        f"<td>{r.recorded_at.isoformat(timespec='seconds')}</td><td>{escape(r.event_type)}</td>"
        f"<td>{escape(s)}</td></tr>"
        for r, s in zip(records, sentences, strict=True)
    )
    first = min(_ms(r.occurred_at) for r in records)
    last = max(_ms(r.occurred_at) for r in records)
    last_recorded = max(_ms(r.recorded_at) for r in records)
    known = query_time(known_at, "known at") if known_at else None
    known_ms = _ms(known) if known else last_recorded
    use_known = " checked" if known else ""
    body = (
        f"<p><a href='/'>search</a></p><h1>Order {escape(order_id)}</h1>"
        f"<label>state as of <b id=as-of-label></b><input id=as-of class=slider type=range "
        f"min={first} max={last} step=1 value={last}></label>"
        f"<label><span><input id=use-known type=checkbox{use_known}> as known at "
        f"<b id=known-at-label></b></span><input id=known-at class=slider type=range "
        f"min={first} max={max(last_recorded, known_ms)} step=1 value={known_ms}></label>"
        "<div id=state></div><h2>Timeline</h2><table id=timeline><tr><th>v</th>"
        "<th>occurred</th><th>recorded</th><th>event</th><th>what happened</th></tr>"
        f"{rows}</table>"
    )
    literal = json.dumps(order_id).replace("<", "\\u003c")  # never closes the script tag
    script = f"const ORDER = {literal};" + ORDER_JS
    return _page(f"Order {order_id}", body, script)

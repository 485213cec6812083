"""The page's only stylesheet and script, inline (no CDN, no vendored library).

The script is a few lines of vanilla JavaScript: it subscribes to the server-sent event
stream and swaps in the HTML sections the server re-rendered. Both are pinned by hash in the
page's Content-Security-Policy, so the browser runs nothing else.
"""

from __future__ import annotations

import base64
import hashlib

CSS = """
:root { --ok: #1b7f3b; --bad: #b3261e; --warn: #8a5a00; --muted: #5f6368; --line: #dadce0; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
  color: #202124; background: #f6f7f9; }
header { background: #1f2937; color: #fff; padding: 12px 20px; display: flex; gap: 18px;
  align-items: baseline; flex-wrap: wrap; }
header h1 { font-size: 18px; margin: 0; }
header .meta { color: #cbd5e1; font-size: 13px; }
header a { color: #93c5fd; }
main { padding: 14px 20px 40px; display: grid; gap: 14px;
  grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); }
section.panel { background: #fff; border: 1px solid var(--line); border-radius: 8px;
  padding: 12px 14px; min-width: 0; }
section.wide { grid-column: 1 / -1; }
h2 { font-size: 15px; margin: 0 0 8px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.cards { display: grid; gap: 10px; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px; background: #fcfcfd; }
.card h3 { margin: 0 0 4px; font-size: 15px; display: flex; justify-content: space-between; }
.card .detail { color: var(--muted); font-size: 12px; overflow-wrap: anywhere; }
.card ul { margin: 6px 0 0; padding-left: 18px; color: var(--bad); font-size: 12px; }
.badge { display: inline-block; border-radius: 10px; padding: 1px 8px; font-size: 12px;
  font-weight: 600; background: #e8eaed; color: #3c4043; white-space: nowrap; }
.badge.ok { background: #e6f4ea; color: var(--ok); }
.badge.bad { background: #fce8e6; color: var(--bad); }
.badge.busy { background: #e8f0fe; color: #1a56c4; }
.badge.idle { background: #f1f3f4; color: var(--muted); }
.live { font-weight: 600; }
.live.on::before { content: "\\25CF "; color: #4ade80; }
.live.off::before { content: "\\25CF "; color: #f87171; }
.alert { border: 1px solid #f5c2c0; background: #fce8e6; color: var(--bad); border-radius: 8px;
  padding: 10px 14px; font-weight: 600; overflow-wrap: anywhere; }
.note { color: var(--muted); }
.charts { display: grid; gap: 10px; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); }
svg.chart { width: 100%; height: auto; background: #fff; }
svg .ct { font-size: 13px; font-weight: 600; text-anchor: middle; }
svg .yt { font-size: 10px; text-anchor: end; fill: #5f6368; }
svg .xt, svg .xl, svg .yl { font-size: 10px; text-anchor: middle; fill: #5f6368; }
svg .lg { font-size: 10px; fill: #3c4043; }
svg .grid { stroke: #eceff1; }
svg .ref { stroke-dasharray: 6 4; stroke-width: 1.5; }
svg .bar { fill: #5b8def; }
svg .empty { font-size: 12px; text-anchor: middle; fill: #9aa0a6; }
.timeline { max-height: 420px; overflow: auto; }
tr.dropped td, tr.failed td { background: #fff4f3; }
tr.rejected td { background: #fff8e1; }
code { font-size: 12px; overflow-wrap: anywhere; }
button { font: inherit; border: 1px solid var(--line); border-radius: 6px; padding: 4px 10px;
  background: #fff; cursor: pointer; }
button.action { margin: 0 8px 8px 0; border-color: #1a56c4; color: #1a56c4; font-weight: 600; }
button.danger { background: var(--bad); border-color: var(--bad); color: #fff; font-weight: 600; }
dialog { border: 1px solid var(--line); border-radius: 8px; max-width: 520px; }
dialog .buttons { display: flex; gap: 10px; justify-content: flex-end; }
.action-log { margin: 6px 0 0; padding-left: 18px; font-size: 12px; }
li.ok, #action-result.ok { color: var(--ok); }
li.bad, #action-result.bad { color: var(--bad); }
li.busy, #action-result.busy { color: #1a56c4; }
#action-result { font-weight: 600; overflow-wrap: anywhere; }
"""

JS = """
(() => {
  const live = document.getElementById("live");
  const source = new EventSource(document.body.dataset.events);
  const show = (text, on) => {
    live.textContent = text;
    live.className = on ? "live on" : "live off";
  };
  source.onopen = () => show(document.body.dataset.replay ? "replaying" : "live", true);
  source.onerror = () => show("reconnecting…", false);
  source.addEventListener("sections", (event) => {
    for (const [id, html] of Object.entries(JSON.parse(event.data))) {
      const target = document.getElementById(id);
      if (target) target.innerHTML = html;
    }
    document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  });
  source.addEventListener("end", () => { source.close(); show("replay finished", false); });

  // Operator actions (only on a page served with --allow-actions): confirm, then POST.
  const token = document.querySelector('meta[name="zkadapt-action-token"]');
  const dialog = document.getElementById("confirm");
  if (!token || !dialog) return;
  const result = document.getElementById("action-result");
  const say = (text, cls) => { result.textContent = text; result.className = cls; };
  let pending = null;
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    pending = button.dataset.action;
    document.getElementById("confirm-title").textContent = button.dataset.label + "?";
    document.getElementById("confirm-text").textContent =
      "Send " + button.dataset.command + " to the head: " + button.dataset.effect + ".";
    document.getElementById("confirm-yes").textContent = "Confirm " + button.dataset.command;
    dialog.showModal();
  });
  document.getElementById("confirm-no").addEventListener("click", () => {
    pending = null;
    dialog.close();
  });
  document.getElementById("confirm-yes").addEventListener("click", async () => {
    const name = pending;
    pending = null;
    dialog.close();
    if (!name) return;
    say(name + ": sent; waiting for the hydra-node…", "busy");
    try {
      const response = await fetch("/api/actions/" + encodeURIComponent(name), {
        method: "POST",
        headers: { "X-ZKAdapt-Token": token.content },
      });
      const body = await response.json();
      say(body.message, body.ok ? "ok" : "bad");
    } catch (error) {
      say(name + " failed: " + error, "bad");
    }
  });
})();
"""


def csp_hash(text: str) -> str:
    """The CSP source expression (``'sha256-…'``) that allows exactly this inline text."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


#: Content-Security-Policy of every page: nothing but our own inline style, script and stream.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src {csp_hash(CSS)}; script-src {csp_hash(JS)}; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)

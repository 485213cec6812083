"""``zkadapt dashboard``: a live, read-only browser view of one session.

It follows the session's channel through the same client the parties use, derives every
number from the channel (via :func:`zkadapt.summary.build_report`), and serves one page whose
sections the server re-renders and pushes over server-sent events. No JavaScript library,
no CDN: charts are server-rendered SVG and the page's only script is a few inline lines.
"""

from __future__ import annotations

from zkadapt.dashboard.run import serve_dashboard, url_for
from zkadapt.dashboard.source import LedgerWatcher, SessionTarget, locate_session

__all__ = ["LedgerWatcher", "SessionTarget", "locate_session", "serve_dashboard", "url_for"]

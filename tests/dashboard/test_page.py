"""Page rendering: sections, escaping of peer-controlled text, error pages, CSP."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from tests.dashboard.scripted import ScriptedSession
from zkadapt.dashboard.assets import CONTENT_SECURITY_POLICY, CSS, JS, csp_hash
from zkadapt.dashboard.escrow import ESCROW_NOTES
from zkadapt.dashboard.page import (
    SECTIONS,
    render_error_page,
    render_page,
    render_sections,
)
from zkadapt.dashboard.source import LedgerWatcher, locate_session
from zkadapt.dashboard.view import Snapshot
from zkadapt.operator.head import NO_HEAD

EVIL = '<script>alert("pwned")</script>'


def _snapshot(scripted: ScriptedSession, *, allow_actions: bool = False) -> Snapshot:
    watcher = LedgerWatcher(locate_session(scripted.session_file), allow_actions=allow_actions)
    try:
        watcher.poll()
        return watcher.snapshot()
    finally:
        watcher.close()


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids += [v or "" for k, v in attrs if k == "id"]
        self.scripts += tag == "script"


def test_page_has_every_section_and_exactly_one_inline_script(scripted: ScriptedSession) -> None:
    scripted.play_round(1)
    page = render_page(_snapshot(scripted), events_url="/events")
    parser = _Ids()
    parser.feed(page)
    assert set(SECTIONS) | {"status", "live"} <= set(parser.ids)
    assert parser.scripts == 1
    links = set(re.findall(r"https?://[^\s\"'<]+", page))
    assert links == {"http://www.w3.org/2000/svg"}  # only the SVG namespace: no CDN
    assert " src=" not in page
    assert 'data-events="/events"' in page


def test_sections_show_parties_rounds_plot_and_escrow(scripted: ScriptedSession) -> None:
    scripted.play_round(1)
    scripted.play_round(2, rejected="carol", reason="replay: object is for round 1")
    sections = render_sections(_snapshot(scripted))
    assert sections["cards"].count('class="card"') == 3
    assert 'data-party="carol" data-phase="RoundDone"' in sections["cards"]
    assert (
        "rejected in round 2: replay: object is for round 1 (by alice, bob, carol)"
        in sections["cards"]
    )
    assert sections["metrics"].count("<polyline") == 8  # (global + 3 parties) x 2 charts
    assert "Accuracy per round" in sections["metrics"] and "Loss per round" in sections["metrics"]
    assert "carol: replay: object is for round 1 (by alice, bob, carol)" in sections["rounds"]
    assert "1.2 MiB" in sections["rounds"]  # 3 x 407,336 bytes uploaded per round
    assert "round 2 of 3 done" in sections["status"]
    assert ESCROW_NOTES["local"] in sections["escrow"]
    assert sections["escrow"].count("no deposit yet") == 3
    assert "read-only" in sections["actions"] and NO_HEAD in sections["actions"]
    assert '<span class="badge ok">verified</span>' in sections["channel"]


def test_allow_actions_is_shown_but_offers_nothing_on_the_local_channel(
    scripted: ScriptedSession,
) -> None:
    html = render_sections(_snapshot(scripted, allow_actions=True))["actions"]
    assert "actions allowed (--allow-actions)" in html
    assert "<button" not in html and NO_HEAD in html


def test_text_from_the_channel_is_escaped(scripted: ScriptedSession) -> None:
    scripted.submit(1, "alice")
    scripted.close_phase(1)
    scripted.reject(1, "alice", EVIL, by="bob")
    page = render_page(_snapshot(scripted), events_url="/events")
    assert EVIL not in page
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in page


def test_waiting_for_a_ledger_that_does_not_exist_yet(scripted: ScriptedSession) -> None:
    snap = _snapshot(scripted)
    assert snap.channel.waiting and not scripted.ledger_path.exists()
    sections = render_sections(snap)
    assert "Waiting for the session to start" in sections["alerts"]
    assert "no channel messages yet" in sections["timeline"]
    assert "no completed round yet" in sections["metrics"]


def test_error_page_states_the_problem_without_a_traceback() -> None:
    page = render_error_page("Page not found", f"There is no page at /{EVIL}.")
    assert "Traceback" not in page and EVIL not in page
    assert 'role="alert"' in page and "Page not found" in page


def test_content_security_policy_pins_the_inline_style_and_script() -> None:
    assert csp_hash(JS) in CONTENT_SECURITY_POLICY
    assert csp_hash(CSS) in CONTENT_SECURITY_POLICY
    assert re.search(r"default-src 'none'", CONTENT_SECURITY_POLICY)
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY

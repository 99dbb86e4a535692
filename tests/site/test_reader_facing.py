"""The built site speaks to readers: no project history, no emoji that needs a font in titles."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Characters that only an emoji font draws (a reader without one sees an empty box): the
# pictographs, dingbats and miscellaneous symbols blocks, and the emoji variation selector.
EMOJI = re.compile(
    "[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\ufe0f\U0001f1e6-\U0001f1ff]"
)
# How the site was built is not the reader's business: issues, backlogs, to-do notes.
PROJECT_TALK = re.compile(
    r"\bissues?\b|\bbacklog\b|\bpull requests?\b|\bTODO\b|\bFIXME\b", re.IGNORECASE
)
HEADINGS = {"title", "h1", "h2", "h3", "h4", "h5", "h6"}
SKIPPED = {"script", "style", "pre", "code", "svg"}


class _Text(HTMLParser):
    """A page's prose (outside code, scripts and styles), and the text of its titles and nav."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.prose: list[str] = []
        self.titles: list[str] = []
        self._stack: list[str] = []
        self._in_nav = 0

    def handle_starttag(self, tag, attrs):
        if tag in {"br", "img", "input", "link", "meta", "hr", "wbr", "source"}:
            return
        self._stack.append(tag)
        if tag == "nav":
            self._in_nav += 1

    def handle_endtag(self, tag):
        if tag in self._stack:
            while self._stack:
                closed = self._stack.pop()
                if closed == "nav":
                    self._in_nav -= 1
                if closed == tag:
                    break

    def handle_data(self, data):
        if SKIPPED & set(self._stack):
            return
        self.prose.append(data)
        if self._in_nav or HEADINGS & set(self._stack):
            self.titles.append(data.strip())


def page_text(html: str) -> _Text:
    parser = _Text()
    parser.feed(html)
    return parser


def problems(html: str) -> list[str]:
    text = page_text(html)
    found = [
        f"emoji in a title or the navigation: {title!r}"
        for title in text.titles
        if EMOJI.search(title)
    ]
    prose = " ".join(text.prose)
    found += [
        f"talks about the project: {prose[max(m.start() - 50, 0) : m.end() + 50]!r}"
        for m in PROJECT_TALK.finditer(prose)
    ]
    return found


def test_checker_flags_emoji_titles_and_project_talk_but_not_code():
    assert problems("<h1>Introduction to \U0001f917 Diffusers</h1>")
    assert problems(
        '<nav><a href="x/">\u2728 New</a></nav><p>The issue that asked for it.</p>'
    )
    assert problems("<title>Caf\u00e9 \u2615</title>") == [
        "emoji in a title or the navigation: 'Caf\u00e9 \u2615'"
    ]
    assert problems("<p>See the backlog.</p>")
    clean = (
        "<title>DDIM \u2014 Feast</title><h2>Noise \u2192 images, \u03b1 and \u2264</h2>"
        "<p>Emoji in prose are allowed \U0001f917.</p><pre><code># TODO issue</code></pre>"
        "<script>var issue = 1;</script>"
    )
    assert problems(clean) == []


def test_pages_speak_to_readers(built_site):
    pages = sorted(built_site.rglob("*.html"))
    assert len(pages) >= 5
    found = {
        page.relative_to(built_site).as_posix(): found
        for page in pages
        if (found := problems(page.read_text(encoding="utf-8")))
    }
    assert not found, found

"""A small, safe Markdown subset for run notes (``mlflow.note.content``) and
previews of ``.md`` artifacts.

Safety comes from the order of work: every line is HTML-escaped *first*, and
only then are the few Markdown constructs turned into tags this module writes
itself. No HTML from the input ever reaches the page as HTML; link targets are
kept only when they are http(s), mailto or relative, and images become links
(no tracking pixels, no ``onerror``).

Supported: ATX headings (``#``..``######``), paragraphs, hard line breaks
inside paragraphs, ``-``/``*``/``+`` and ``1.`` lists (one level), ``>`` block
quotes, fenced code blocks, ``---`` rules, inline code, ``**bold**``,
``*italic*``/``_italic_``, ``~~strike~~``, ``[text](url)`` links and bare
``http(s)://`` URLs.
"""
from __future__ import annotations

import html
import re

from markupsafe import Markup

MAX_SOURCE_CHARS = 200_000

_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_BULLET = re.compile(r"^\s{0,3}[-*+]\s+(.*)$")
_ORDERED = re.compile(r"^\s{0,3}\d{1,9}[.)]\s+(.*)$")
_QUOTE = re.compile(r"^\s{0,3}&gt;\s?(.*)$")  # matched on escaped text

# Inline patterns run on already-escaped text, so they never see raw < > " '.
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(([^()\s]+)\)")
_LINK = re.compile(r"\[([^\]\n]+)\]\(([^()\s]+)\)")
_AUTOLINK = re.compile(r"(?<![\w\"=/])(https?://[^\s<]+[^\s<.,:;!?)\]'])")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC = re.compile(r"(?<![\w*])([*_])(?=\S)(.+?)(?<=\S)\1(?![\w*])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_PLACEHOLDER = "\x00{}\x00"
_PLACEHOLDER_RE = re.compile("\x00(\\d+)\x00")

_SAFE_SCHEMES = ("http://", "https://", "mailto:")


def safe_url(escaped_url: str) -> str | None:
    """The (still escaped) URL if following it cannot run script; else None.

    The check runs on the unescaped form (``javascript&#58;`` is ``javascript:``
    to a browser) with whitespace and control characters removed, as browsers
    ignore them inside a scheme."""
    raw = html.unescape(escaped_url)
    compact = re.sub(r"[\x00-\x20\x7f]+", "", raw).lower()
    if compact.startswith(_SAFE_SCHEMES):
        return escaped_url
    # Relative: no scheme, i.e. no ':' before the first '/', '?' or '#'.
    head = re.split(r"[/?#]", compact, maxsplit=1)[0]
    if ":" in head:
        return None
    return escaped_url


def _link(text: str, url: str) -> str:
    target = safe_url(url)
    if target is None:
        return text
    return f'<a href="{target}" rel="nofollow noopener noreferrer">{text}</a>'


def _inline(escaped: str) -> str:
    """Inline Markdown on one escaped line (or paragraph)."""
    stash: list[str] = []

    def keep(fragment: str) -> str:
        stash.append(fragment)
        return _PLACEHOLDER.format(len(stash) - 1)

    text = _CODE_SPAN.sub(lambda m: keep(f"<code>{m.group(2).strip()}</code>"), escaped)
    text = _IMAGE.sub(lambda m: keep(_link(m.group(1) or m.group(2), m.group(2))), text)
    text = _LINK.sub(lambda m: keep(_link(m.group(1), m.group(2))), text)
    text = _AUTOLINK.sub(lambda m: keep(_link(m.group(1), m.group(1))), text)
    text = _BOLD.sub(r"<strong>\2</strong>", text)
    text = _ITALIC.sub(r"<em>\2</em>", text)
    text = _STRIKE.sub(r"<del>\1</del>", text)
    # Stashed fragments may themselves hold placeholders (a link's text); expand until none remain.
    for _ in range(3):
        text, count = _PLACEHOLDER_RE.subn(lambda m: stash[int(m.group(1))], text)
        if not count:
            break
    return text


MAX_QUOTE_DEPTH = 4


def render_markdown(source: str | None, _depth: int = 0) -> Markup:
    """The note as HTML that is safe to put in a page."""
    if not source:
        return Markup("")
    source = source[:MAX_SOURCE_CHARS].replace("\r\n", "\n").replace("\r", "\n")
    lines = [html.escape(line, quote=True) for line in source.split("\n")]
    out: list[str] = []
    paragraph: list[str] = []
    list_kind: str | None = None
    list_items: list[str] = []
    quote: list[str] = []

    def flush_paragraph() -> None:
        if paragraph:
            out.append("<p>" + "<br>".join(_inline(p) for p in paragraph) + "</p>")
            paragraph.clear()

    def flush_list() -> None:
        nonlocal list_kind
        if list_kind:
            items = "".join(f"<li>{_inline(item)}</li>" for item in list_items)
            out.append(f"<{list_kind}>{items}</{list_kind}>")
            list_kind = None
            list_items.clear()

    def flush_quote() -> None:
        if quote:
            if _depth >= MAX_QUOTE_DEPTH:  # deeper nesting is shown as text
                out.append("<blockquote><p>" + "<br>".join(quote) + "</p></blockquote>")
            else:
                inner = render_markdown(html.unescape("\n".join(quote)), _depth + 1)
                out.append(f"<blockquote>{inner}</blockquote>")
            quote.clear()

    def flush_all() -> None:
        flush_paragraph()
        flush_list()
        flush_quote()

    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            flush_all()
            marker = fence.group(1)
            body = []
            i += 1
            while i < len(lines) and not lines[i].lstrip().startswith(marker):
                body.append(lines[i])
                i += 1
            out.append("<pre><code>" + "\n".join(body) + "</code></pre>")
            i += 1
            continue
        quoted = _QUOTE.match(line)
        if quoted:
            flush_paragraph()
            flush_list()
            quote.append(quoted.group(1))
            i += 1
            continue
        flush_quote()
        if not line.strip():
            flush_all()
        elif _HEADING.match(line):
            flush_all()
            m = _HEADING.match(line)
            level = len(m.group(1))
            out.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
        elif _RULE.match(line):
            flush_all()
            out.append("<hr>")
        elif _BULLET.match(line) or _ORDERED.match(line):
            flush_paragraph()
            kind = "ul" if _BULLET.match(line) else "ol"
            if list_kind != kind:
                flush_list()
                list_kind = kind
            list_items.append((_BULLET.match(line) or _ORDERED.match(line)).group(1))
        elif list_kind and line.startswith("  "):
            list_items[-1] += " " + line.strip()  # a wrapped list item
        else:
            flush_list()
            paragraph.append(line.strip())
        i += 1
    flush_all()
    return Markup("\n".join(out))

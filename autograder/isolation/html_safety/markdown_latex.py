"""Markdown and LaTeX that cannot run anything in a browser.

Markdown is not HTML (``$x<y$``, code spans), so :func:`sanitize_markdown` leaves text
alone and rewrites only what a renderer could take for HTML: each tag is rebuilt
from the allowlist or shown as text, every other ``<`` that could open a tag becomes
``&lt;`` (``\\lt`` inside math), and link destinations with other schemes become ``#``.
Honest markdown (the course's own cells) comes out unchanged.
"""
from __future__ import annotations

import re

from .policy import safe_url
from .sanitizer import MAX_CHARS, _esc, _Sanitizer

__all__ = ["sanitize_markdown", "sanitize_latex"]

# Link destinations: ``](<dest>)`` may hold spaces and tabs, ``](dest)`` may not; the same
# after ``[label]:`` (reference definitions, also inside quotes and lists: matched anywhere).
_MD_LINK = re.compile(r"((?:\]\s*\(|\][ \t]*:)\s*)(?:(<)([^<>\n]*)(?=>)|([^\s)>]*))")
_ATTR_RE = r"""(?:\s+[A-Za-z_:][\w.:\-]{0,100}(?:\s*=\s*(?:[^\s"'=<>`]{1,4096}|'[^']{0,4096}'|"[^"]{0,4096}"))?)"""
_MD_SPECIAL = re.compile(r"\$\$|\$|\\\[|\\\(|\\begin\{([A-Za-z*]{1,40})\}|<")
_MD_CLOSER = {"$$": "$$", "$": "$", "\\[": "\\]", "\\(": "\\)"}
_MD_AT_LT = re.compile(r"(?P<autolink><(?:https?|mailto):[^\s<>\"]{0,4096}>)"
                       r"|(?P<tag></?[A-Za-z][A-Za-z0-9\-]{0,100}" + _ATTR_RE + r"{0,200}\s*/?>)")
_TEX_LINK = re.compile(r"(\\(?:href|url)\s*\{)([^{}]*)(\})")
_TEX_LT = re.compile(r"<(?=[A-Za-z/!?])")


def _neutralize_links(text: str) -> str:
    def fix(m):
        url = m.group(3) if m.group(2) else m.group(4)
        return m.group(1) + (m.group(2) or "") + (url if safe_url(url, image=True) else "#")
    return _MD_LINK.sub(fix, text)


def _tex_links(text: str) -> str:
    return _TEX_LINK.sub(lambda m: m.group(1) + (m.group(2) if safe_url(m.group(2)) else "#") + m.group(3), text)


def sanitize_latex(text: str) -> str:
    """LaTeX (a ``text/latex`` output, math in markdown): ``\\href``/``\\url`` to safe URLs only,
    and no ``<`` that could open an HTML tag (``\\lt`` renders the same)."""
    if not isinstance(text, str):
        return ""
    return _TEX_LT.sub(r"\\lt ", _tex_links(text))


def _markdown_tag(tag: str) -> str:
    parser = _Sanitizer(markdown=True)
    try:
        parser.feed(tag)
        out = parser.result()
    except Exception:  # noqa: BLE001
        return _esc(tag)
    if parser.rejected or not out:
        return _esc(tag)
    return out


def _math_end(text: str, start: int, closer: str, missing: set) -> int:
    """Index after the closer of the math opened before ``start``, or -1 (remembered: linear)."""
    if closer in missing:
        return -1
    at = start
    while True:
        at = text.find(closer, at)
        if at < 0:
            missing.add(closer)
            return -1
        if closer == "$" and (at == start or text[at - 1] == "\\"):
            at += 1                    # "$$" is no inline math; "\$" is a dollar
            continue
        return at + len(closer)


def sanitize_markdown(text: str) -> str:
    """Markdown whose raw HTML, links and math cannot run anything (see the module's docstring).

    One left-to-right scan: math (``$..$``, ``$$..$$``, ``\\[..\\]``, ``\\(..\\)``,
    ``\\begin{env}..\\end{env}``) goes through :func:`sanitize_latex`; a ``<`` starts a
    tag that is rebuilt (or shown as text), an ``http(s)``/``mailto`` autolink, or becomes
    ``&lt;`` when a letter, ``/``, ``!`` or ``?`` follows it. Nothing is deleted, so no
    two pieces can join into a new tag.
    """
    if not isinstance(text, str):
        return ""
    text = _neutralize_links(text)
    if len(text) > MAX_CHARS:
        return _TEX_LT.sub("&lt;", text)
    out, pos, at, missing = [], 0, 0, set()
    while True:
        m = _MD_SPECIAL.search(text, at)
        if m is None:
            break
        token = m.group(0)
        if token == "<":
            found = _MD_AT_LT.match(text, m.start())
            if found is not None:
                out.append(text[pos:m.start()])
                out.append(found.group() if found.group("autolink") else _markdown_tag(found.group()))
                pos = at = found.end()
            elif _TEX_LT.match(text, m.start()):
                out.append(text[pos:m.start()] + "&lt;")
                pos = at = m.start() + 1
            else:
                at = m.start() + 1
            continue
        if token == "$" and m.start() > 0 and text[m.start() - 1] == "\\":
            at = m.end()
            continue
        closer = _MD_CLOSER.get(token) or "\\end{" + m.group(1) + "}"
        end = _math_end(text, m.end(), closer, missing)
        if end < 0:
            at = m.end()
            continue
        out.append(text[pos:m.start()])
        out.append(sanitize_latex(text[m.start():end]))
        pos = at = end
    out.append(text[pos:])
    return "".join(out)

"""HTML and SVG re-serialised through the allowlists (:mod:`.policy`).

The HTML sanitizer is an allowlist over the standard library's ``html.parser``: the
output is *re-serialised* from the parsed tokens (never copied), so every text is
escaped, every attribute quoted and escaped, and only known elements and attributes
come out; URLs must be relative, ``http(s)``, ``mailto`` (links) or raster
``data:image/...`` (images); ``<style>`` survives only when it styles a pandas table.
SVG is sanitized with its own allowlist and re-serialised as well-formed XML.
"""
from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from .policy import (_CLASS, _DROP_WITH_CONTENT, _GLOBAL_ATTRS, _HTML_TAGS, _ID, _NUMBER_ATTRS, _SIZE, _SVG_ATTRS,
                     _SVG_NS, _SVG_PLAIN, _SVG_TAGS, _TAG_ATTRS, _VOID, _XLINK_NS, _table_css, safe_css, safe_url)

__all__ = ["sanitize_html", "sanitize_svg"]


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _attr(name: str, value: str | None) -> str:
    if value is None:                   # a bare attribute (<details open>, <style scoped>)
        return f" {name}"
    return f' {name}="{html.escape(value, quote=True)}"'


def _svg_attr(tag: str, name: str, value: str) -> tuple[str, str] | None:
    """An attribute of an SVG element as it is kept (its canonical name, its value), or None."""
    canonical = _SVG_ATTRS.get(name)
    if canonical is None:
        return None
    if name in ("href", "xlink:href"):
        if tag == "use":
            ok = bool(re.match(r"^#[\w\-.:]+$", value.strip()))
        elif tag == "image":
            ok = safe_url(value, image=True)
        elif tag == "a":
            ok = safe_url(value)
        else:
            ok = value.strip().startswith("#") and safe_css(value) is not None
        if not ok:
            return None
        canonical = "xlink:href" if name == "xlink:href" else "href"
    elif name == "xmlns":
        value = _SVG_NS
    elif name == "xmlns:xlink":
        value = _XLINK_NS
    elif name in ("id", "class"):
        if not (_ID if name == "id" else _CLASS).match(value):
            return None
    elif name == "style":
        value = safe_css(value)
        if value is None:
            return None
    else:
        if not _SVG_PLAIN.match(value) or safe_css(value) is None:
            return None
    return canonical, value


def _html_attr(tag: str, name: str, value: str) -> str | None:
    """The value of an attribute of an HTML element as it is kept, or None."""
    if name not in _GLOBAL_ATTRS and name not in _TAG_ATTRS.get(tag, ()):
        return None
    if name == "href":
        if not safe_url(value):
            return None
    elif name == "src":
        if not safe_url(value, image=True):
            return None
    elif name == "cite":
        if not safe_url(value) or not re.match(r"^\s*https?:", value, re.I):
            return None
    elif name == "style":
        value = safe_css(value)
        if value is None:
            return None
    elif name == "id":
        if not _ID.match(value):
            return None
        if not value.startswith(("T_", "user-content-")):   # pandas Styler ids stay as they are
            value = "user-content-" + value   # no clobbering of the page's globals
    elif name == "class":
        if not _CLASS.match(value):
            return None
    elif name in _NUMBER_ATTRS:
        if not _SIZE.match(value):
            return None
    elif name in ("dir", "lang", "align", "valign", "scope", "type", "headers", "datetime",
                  "nowrap", "open", "reversed"):
        if not re.match(r"^[\w\-.: ]{0,64}$", value):
            return None
    return value


class _Sanitizer(HTMLParser):
    """Re-serialise an HTML (or SVG) fragment through the allowlists."""

    def __init__(self, svg_document: bool = False, markdown: bool = False):
        super().__init__(convert_charrefs=True)
        self.svg_document = svg_document     # output: one well-formed <svg> document, or ""
        self.markdown = markdown             # one tag at a time, no closing at the end
        self.out: list[str] = []
        self.stack: list[tuple[str, bool]] = []   # (name as emitted, svg?)
        self.skip: tuple[str, int] | None = None  # (tag, depth) of a dropped element
        self.style: list[str] | None = None       # CSS being collected
        self.style_svg = False
        self.style_attrs = ""
        self.open_count: dict[str, int] = {}      # open elements by name: end tags in O(1)
        self.done = False                         # svg document: root closed
        self.rejected = False                     # markdown: the tag was not allowed

    # -- context
    def in_svg(self) -> bool:
        return bool(self.stack) and self.stack[-1][1]

    def emitting(self) -> bool:
        if self.done:
            return False
        return not self.svg_document or bool(self.stack)

    # -- attributes
    def _clean_attrs(self, tag: str, attrs, svg: bool) -> list[tuple[str, str | None]]:
        kept: dict[str, str | None] = {}
        for name, value in attrs:
            name = name.lower()
            bare = value is None
            value = "" if bare else value
            if name in kept or name.startswith("on") or name.startswith("formaction"):
                continue
            if svg:
                clean = _svg_attr(tag, name, value)
                if clean is not None:
                    kept[clean[0]] = clean[1]
                continue
            value = _html_attr(tag, name, value)
            if value is None:
                continue
            kept[name] = None if bare and value == "" else value
        return list(kept.items())

    # -- parser callbacks
    def handle_starttag(self, tag, attrs):
        self._start(tag, attrs, closed=False)

    def handle_startendtag(self, tag, attrs):
        self._start(tag, attrs, closed=True)

    def _start(self, tag, attrs, closed):
        tag = tag.lower()
        if self.style is not None:
            return
        if self.skip is not None:
            if tag == self.skip[0] and not closed:
                self.skip = (tag, self.skip[1] + 1)
            return
        if self.done:
            return
        svg = self.in_svg() or tag == "svg"
        if self.svg_document and not self.stack and tag != "svg":
            return                                  # only the root <svg> and what it holds
        if self.markdown and tag == "svg":
            self.rejected = True
            return
        if tag == "style" and (svg or not self.markdown):
            if closed:
                return
            self.style, self.style_svg = [], svg
            self.style_attrs = "".join(_attr(k, None if v is None else "text/css") for k, v in attrs
                                       if k == "scoped" and v is None or k == "type" and v == "text/css")
            return
        if tag in _DROP_WITH_CONTENT:
            if self.markdown:
                self.rejected = True
            elif not closed and tag not in _VOID:
                self.skip = (tag, 1)
            return
        if svg:
            name = _SVG_TAGS.get(tag)
        else:
            name = tag if tag in _HTML_TAGS else None
        if name is None:
            if self.markdown:
                self.rejected = True
            return                                  # unknown element: dropped, its content kept
        kept = self._clean_attrs(tag, attrs, svg)
        if name == "svg" and not self.in_svg():    # a root: its own namespaces, nothing else
            kept = [("xmlns", _SVG_NS), ("xmlns:xlink", _XLINK_NS)] + [
                (k, v) for k, v in kept if not k.startswith("xmlns")]
        text = "<" + name + "".join(_attr(k, v) for k, v in kept)
        if svg and closed:
            self.out.append(text + "/>")
            if self.svg_document and not self.stack:
                self.done = True            # one root only
            return
        if not svg and tag in _VOID:
            self.out.append(text + ">")
            return
        self.out.append(text + ">")
        if not self.markdown:
            self.stack.append((name, svg))
            self.open_count[tag] = self.open_count.get(tag, 0) + 1

    def handle_endtag(self, tag):
        tag = tag.lower()
        if self.style is not None:
            if tag == "style":
                css = "".join(self.style)
                # An SVG document's own CSS stays in it; in a page, CSS would restyle the page.
                css = safe_css(css) if self.style_svg and self.svg_document else _table_css(css)
                self.style = None
                if css is not None and self.emitting():
                    self.out.append("<style" + self.style_attrs + ">" + css + "</style>")
            return
        if self.skip is not None:
            if tag == self.skip[0]:
                depth = self.skip[1] - 1
                self.skip = (tag, depth) if depth else None
            return
        if self.markdown:
            if tag in _HTML_TAGS and tag not in _VOID:
                self.out.append(f"</{tag}>")
            else:
                self.rejected = True
            return
        if not self.open_count.get(tag):
            return
        while self.stack:
            name, _ = self.stack.pop()
            self.open_count[name.lower()] -= 1
            self.out.append(f"</{name}>")
            if name.lower() == tag:
                break
        if self.svg_document and not self.stack:
            self.done = True

    def handle_data(self, data):
        if self.style is not None:
            self.style.append(data)
            return
        if self.skip is not None or not self.emitting():
            return
        if self.svg_document and not self.stack:
            return
        self.out.append(_esc(data))

    # Comments, doctypes, processing instructions, CDATA: never emitted.
    def handle_comment(self, data):
        if self.markdown:
            self.rejected = True

    handle_decl = handle_pi = unknown_decl = handle_comment

    def result(self) -> str:
        self.close()
        if self.style is not None:       # an unclosed <style>: dropped
            self.style = None
        if not self.markdown:
            while self.stack:
                self.out.append(f"</{self.stack.pop()[0]}>")
        return "".join(self.out)


#: Longer texts are not parsed (text/html, SVG: dropped; markdown: every ``<`` escaped).
MAX_CHARS = 4 * 2**20
_DECLARATIONS = re.compile(r"<!--.*?(?:-->|\Z)|<![^>]*>?|<\?[^>]*>?", re.S)


def _parse(text: str, **options) -> str | None:
    """``text`` through :class:`_Sanitizer`, or None when it cannot be parsed.

    Comments, declarations, CDATA and processing instructions are removed first (the
    output never has them anyway): the standard library's parser raises on some
    (``<![``) and is quadratic on others; so is a ``<`` that no ``>`` follows, which
    is made text. Whatever goes in, only what the sanitizer writes comes out.
    """
    if len(text) > MAX_CHARS:
        return None
    text = _DECLARATIONS.sub("", text)
    last = text.rfind(">")
    text = text[:last + 1] + text[last + 1:].replace("<", "&lt;")
    parser = _Sanitizer(**options)
    try:
        parser.feed(text)
        return parser.result()
    except Exception:  # noqa: BLE001  (a parser error: the text is not kept)
        return None


def sanitize_html(text: str) -> str:
    """An HTML fragment re-serialised through the allowlist (see the module's docstring)."""
    if not isinstance(text, str):
        return ""
    out = _parse(text)
    return _esc(text[:MAX_CHARS]) if out is None else out


def sanitize_svg(text: str) -> str:
    """An SVG document: its root ``<svg>`` re-serialised as well-formed XML, or "" if none."""
    if not isinstance(text, str):
        return ""
    out = _parse(text, svg_document=True) or ""
    return out if out.startswith("<svg") else ""

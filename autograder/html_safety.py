"""Nothing a student wrote runs in a browser: sanitizers for what is rendered for a person.

A submitted notebook reaches people twice: formgrader renders the autograded notebook
for the instructor, and ``nbgrader generate_feedback`` turns it into the HTML the
student (and often the instructor) opens. nbconvert copies raw HTML from markdown
cells and from ``text/html`` outputs into that page, runs ``application/javascript``
outputs, and builds some attributes from output metadata; so a ``<script>``, an
``onerror=`` or a ``javascript:`` link in a submission would run there.

:class:`SanitizeOutputs` (an nbgrader preprocessor, wired in
``course/nbgrader_config.py`` into ``Autograde`` and ``GenerateFeedback``) cleans the
notebook itself, so the stored autograded notebook is as safe as the feedback:

- outputs keep only mime types that cannot run code: ``text/plain``,
  ``application/json``, raster images (checked to be base64), and ``text/html``,
  ``text/markdown``, ``text/latex`` and ``image/svg+xml`` after sanitizing; JavaScript,
  widget views and every other bundle (bokeh, plotly, mermaid...) are dropped, with a
  note in ``text/plain`` when nothing is left; output metadata keeps only image sizes;
- markdown cells (and raw cells marked ``text/html``) are sanitized as markdown;
- cell and notebook fields that templates put into attributes are checked (execution
  counts, cell ids, tags, the title); notebook ``widgets`` state is dropped.

The HTML sanitizer is an allowlist over the standard library's ``html.parser``: the
output is *re-serialised* from the parsed tokens (never copied), so every text is
escaped, every attribute quoted and escaped, and only known elements and attributes
come out; URLs must be relative, ``http(s)``, ``mailto`` (links) or raster
``data:image/...`` (images); ``<style>`` survives only when it styles a pandas table.
SVG is sanitized with its own allowlist and re-serialised as well-formed XML.

Markdown is not HTML (``$x<y$``, code spans), so :func:`sanitize_markdown` leaves text
alone and rewrites only what a renderer could take for HTML: each tag is rebuilt
from the allowlist or shown as text, every other ``<`` that could open a tag becomes
``&lt;`` (``\\lt`` inside math), and link destinations with other schemes become ``#``.
Honest markdown (the course's own cells) comes out unchanged.
"""
from __future__ import annotations

import base64
import binascii
import html
import re
from html.parser import HTMLParser

from nbformat import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor

__all__ = ["sanitize_html", "sanitize_svg", "sanitize_markdown", "sanitize_latex", "safe_url",
           "safe_css", "sanitize_notebook", "SanitizeOutputs"]

# ----------------------------------------------------------------------- URLs, CSS
_URL_JUNK = re.compile(r"[\x00-\x20\x7f-\x9f\u00a0\u1680\u180e\u2000-\u200f\u2028\u2029\u202f\u205f\u3000\ufeff\\]+")
_SCHEME = re.compile(r"([a-z][a-z0-9+.\-]*):")
_DATA_IMAGE = re.compile(r"data:image/(png|jpeg|jpg|gif|webp|bmp)(;[a-z0-9=.+\-]+)*(;base64)?,[a-z0-9+/=%]*$")


def safe_url(url: str, image: bool = False) -> bool:
    """May ``url`` be an ``href`` (or, with ``image``, an ``<img src>``)?

    Relative URLs and fragments, ``http``/``https``, ``mailto`` for links; for images
    also ``attachment:`` and ``data:image/(png|jpeg|gif|webp|bmp)``. Entities, control
    characters, whitespace and backslashes are removed before the scheme is read.
    """
    if not isinstance(url, str):
        return False
    u = _URL_JUNK.sub("", html.unescape(html.unescape(url))).lower()
    m = _SCHEME.match(u)
    if not m:
        return True
    scheme = m.group(1)
    if scheme in ("http", "https"):
        return True
    if not image:
        return scheme == "mailto"
    if scheme == "attachment":
        return True
    return scheme == "data" and bool(_DATA_IMAGE.match(u))


_CSS_COMMENT = re.compile(r"/\*.*?(\*/|$)", re.S)
_CSS_LOCAL_URL = re.compile(r"url\(\s*(['\"]?)#[\w\-.:]+\1\s*\)", re.I)
_CSS_BAD = re.compile(r"expression|javascript|vbscript|behavior|binding|url\s*\(|image-set|@import|@charset|"
                      r"@namespace|@font-face|[\\<&]|position\s*:\s*(fixed|sticky)", re.I)


def safe_css(css: str) -> str | None:
    """``css`` without comments when nothing in it can run or load anything, else None.

    Only local references (``url(#clip1)``, as matplotlib's SVG uses) are allowed; no
    ``expression()``, other ``url()``/``image-set()``, ``@import``, escapes (``\\``),
    ``<``, ``&``, or ``position: fixed`` overlays.
    """
    if not isinstance(css, str):
        return None
    css = _CSS_COMMENT.sub("", css)
    if _CSS_BAD.search(_CSS_LOCAL_URL.sub("", css)):
        return None
    return css


def _table_css(css: str) -> str | None:
    """A ``<style>`` block kept only when every rule styles a pandas table (``.dataframe``, ``#T_``)."""
    css = safe_css(css)
    if css is None:
        return None
    *rules, rest = css.split("}")
    if rest.strip():
        return None
    for rule in rules:
        selectors, brace, _ = rule.partition("{")
        if not brace or "{" in _:
            return None
        for selector in selectors.split(","):
            if not re.match(r"\s*(\.dataframe\b|#T_[\w\-]*)", selector):
                return None
    return css


# ----------------------------------------------------------------------- allowlists
_HTML_TAGS = {
    "a", "abbr", "acronym", "address", "article", "aside", "b", "bdi", "bdo", "big", "blockquote", "br",
    "caption", "center", "cite", "code", "col", "colgroup", "dd", "del", "details", "dfn", "div", "dl", "dt",
    "em", "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "i", "img",
    "ins", "kbd", "li", "main", "mark", "ol", "p", "pre", "q", "rp", "rt", "ruby", "s", "samp", "section",
    "small", "span", "strike", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "time", "tr", "tt", "u", "ul", "var", "wbr",
}
_VOID = {"br", "col", "hr", "img", "wbr", "area", "base", "embed", "input", "link", "meta", "param", "source",
         "track", "keygen", "frame", "basefont", "isindex"}
# Dropped together with everything inside them.
_DROP_WITH_CONTENT = {
    "script", "style", "iframe", "frame", "frameset", "object", "embed", "applet", "template", "noscript",
    "noembed", "noframes", "textarea", "title", "xmp", "plaintext", "select", "option", "optgroup", "datalist",
    "math", "foreignobject", "audio", "video", "canvas", "portal", "fencedframe", "head", "set", "animate",
    "animatemotion", "animatetransform", "discard", "handler", "listener", "metadata", "dialog",
}
_GLOBAL_ATTRS = {"class", "id", "title", "style", "dir", "lang", "align", "valign"}
_TAG_ATTRS = {
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "headers", "scope", "width", "height", "nowrap"},
    "th": {"colspan", "rowspan", "headers", "scope", "width", "height", "nowrap"},
    "table": {"border", "cellpadding", "cellspacing", "summary", "width"},
    "col": {"span", "width"}, "colgroup": {"span", "width"},
    "ol": {"start", "type", "reversed"}, "ul": {"type"}, "li": {"value"},
    "q": {"cite"}, "blockquote": {"cite"}, "del": {"cite", "datetime"}, "ins": {"cite", "datetime"},
    "time": {"datetime"}, "details": {"open"}, "abbr": {"title"}, "pre": {"width"}, "hr": {"width", "size"},
    "div": {"width"},
}
_SIZE = re.compile(r"^\s*\d{1,5}(\.\d+)?\s*(%|px|pt|em|ex|cm|mm|in)?\s*$")
_NUMBER_ATTRS = {"width", "height", "colspan", "rowspan", "span", "start", "value", "border", "cellpadding",
                 "cellspacing", "size"}

_SVG_TAGS = {t.lower(): t for t in (
    "svg", "g", "defs", "desc", "title", "symbol", "use", "path", "rect", "circle", "ellipse", "line",
    "polyline", "polygon", "text", "tspan", "textPath", "clipPath", "mask", "pattern", "marker",
    "linearGradient", "radialGradient", "stop", "image", "style", "a", "switch", "view",
    "filter", "feBlend", "feColorMatrix", "feComponentTransfer", "feComposite", "feConvolveMatrix",
    "feDiffuseLighting", "feDisplacementMap", "feDistantLight", "feDropShadow", "feFlood", "feFuncA",
    "feFuncB", "feFuncG", "feFuncR", "feGaussianBlur", "feMerge", "feMergeNode", "feMorphology",
    "feOffset", "fePointLight", "feSpecularLighting", "feSpotLight", "feTile", "feTurbulence")}
_SVG_ATTRS = {a.lower(): a for a in (
    "id", "class", "style", "transform", "d", "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "ry",
    "width", "height", "points", "viewBox", "preserveAspectRatio", "version", "fill", "fill-opacity",
    "fill-rule", "stroke", "stroke-width", "stroke-linecap", "stroke-linejoin", "stroke-miterlimit",
    "stroke-dasharray", "stroke-dashoffset", "stroke-opacity", "opacity", "clip-path", "clip-rule",
    "clipPathUnits", "mask", "maskUnits", "maskContentUnits", "marker-start", "marker-mid", "marker-end",
    "markerWidth", "markerHeight", "markerUnits", "refX", "refY", "orient", "font-family", "font-size",
    "font-weight", "font-style", "font-variant", "font-stretch", "text-anchor", "dominant-baseline",
    "alignment-baseline", "baseline-shift", "letter-spacing", "word-spacing", "text-decoration",
    "writing-mode", "dx", "dy", "rotate", "textLength", "lengthAdjust", "startOffset", "gradientUnits",
    "gradientTransform", "spreadMethod", "fx", "fy", "fr", "offset", "stop-color", "stop-opacity",
    "patternUnits", "patternContentUnits", "patternTransform", "color", "display", "visibility", "overflow",
    "filter", "filterUnits", "primitiveUnits", "in", "in2", "result", "stdDeviation", "mode", "operator",
    "k1", "k2", "k3", "k4", "values", "type", "tableValues", "slope", "intercept", "amplitude", "exponent",
    "flood-color", "flood-opacity", "lighting-color", "enable-background", "image-rendering",
    "shape-rendering", "text-rendering", "color-interpolation", "color-interpolation-filters",
    "vector-effect", "paint-order", "pathLength", "xml:space", "baseFrequency", "numOctaves", "seed",
    "stitchTiles", "scale", "xChannelSelector", "yChannelSelector", "radius", "order", "kernelMatrix",
    "divisor", "bias", "targetX", "targetY", "edgeMode", "preserveAlpha", "surfaceScale",
    "diffuseConstant", "specularConstant", "specularExponent", "azimuth", "elevation", "z",
    "pointsAtX", "pointsAtY", "pointsAtZ", "limitingConeAngle", "requiredFeatures", "systemLanguage",
    "href", "xlink:href", "xmlns", "xmlns:xlink", "xlink:title")}
_SVG_NS = "http://www.w3.org/2000/svg"
_XLINK_NS = "http://www.w3.org/1999/xlink"
_SVG_PLAIN = re.compile(r"^[\w\s#%().,;:+\-*/'\"!]*$")   # values of presentation attributes
_ID = re.compile(r"^[A-Za-z_][\w\-.:]{0,127}$")
_CLASS = re.compile(r"^[\w\- ]{0,512}$")


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _attr(name: str, value: str | None) -> str:
    if value is None:                   # a bare attribute (<details open>, <style scoped>)
        return f" {name}"
    return f' {name}="{html.escape(value, quote=True)}"'


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
                canonical = _SVG_ATTRS.get(name)
                if canonical is None:
                    continue
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
                        continue
                    canonical = "xlink:href" if name == "xlink:href" else "href"
                elif name == "xmlns":
                    value = _SVG_NS
                elif name == "xmlns:xlink":
                    value = _XLINK_NS
                elif name in ("id", "class"):
                    if not (_ID if name == "id" else _CLASS).match(value):
                        continue
                elif name == "style":
                    value = safe_css(value)
                    if value is None:
                        continue
                else:
                    if not _SVG_PLAIN.match(value) or safe_css(value) is None:
                        continue
                kept[canonical] = value
                continue
            if name not in _GLOBAL_ATTRS and name not in _TAG_ATTRS.get(tag, ()):
                continue
            if name == "href":
                if not safe_url(value):
                    continue
            elif name == "src":
                if not safe_url(value, image=True):
                    continue
            elif name == "cite":
                if not safe_url(value) or not re.match(r"^\s*https?:", value, re.I):
                    continue
            elif name == "style":
                value = safe_css(value)
                if value is None:
                    continue
            elif name == "id":
                if not _ID.match(value):
                    continue
                if not value.startswith(("T_", "user-content-")):   # pandas Styler ids stay as they are
                    value = "user-content-" + value   # no clobbering of the page's globals
            elif name == "class":
                if not _CLASS.match(value):
                    continue
            elif name in _NUMBER_ATTRS:
                if not _SIZE.match(value):
                    continue
            elif name in ("dir", "lang", "align", "valign", "scope", "type", "headers", "datetime",
                          "nowrap", "open", "reversed"):
                if not re.match(r"^[\w\-.: ]{0,64}$", value):
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


# ----------------------------------------------------------------------- markdown, LaTeX
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


# ----------------------------------------------------------------------- notebooks
_KEEP = {"text/plain", "application/json"}
_RASTER = {"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"}
_CLEAN = {"text/html": sanitize_html, "text/markdown": sanitize_markdown, "text/latex": sanitize_latex,
          "image/svg+xml": sanitize_svg}
_B64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")
_CELL_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_TAG = re.compile(r"^[\w\-.:]{1,100}$")


def _text(value) -> str | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    return value if isinstance(value, str) else None


def _base64_ok(value: str) -> bool:
    if not _B64.match(value):
        return False
    try:
        base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _clean_bundle(data, removed: list[str], attachment: bool = False) -> dict:
    clean = {}
    if not isinstance(data, dict):
        return clean
    for mime, value in data.items():
        if mime in _KEEP and not attachment:
            if mime == "text/plain":
                value = _text(value)
                if value is None:
                    removed.append(mime)
                    continue
            clean[mime] = value
        elif mime in _RASTER:
            value = _text(value)
            if value is not None and _base64_ok(value):
                clean[mime] = value
            else:
                removed.append(mime)
        elif mime in _CLEAN and not (attachment and mime != "image/svg+xml"):
            value = _text(value)
            if value is None:
                removed.append(mime)
                continue
            if attachment:             # attachments are base64 encoded
                try:
                    svg = sanitize_svg(base64.b64decode(value).decode("utf-8"))
                except (binascii.Error, ValueError, UnicodeDecodeError):
                    svg = ""
                if svg:
                    clean[mime] = base64.b64encode(svg.encode()).decode("ascii")
                else:
                    removed.append(mime)
                continue
            cleaned = _CLEAN[mime](value)
            if cleaned or not value:
                clean[mime] = cleaned
            else:
                removed.append(mime)
        else:
            removed.append(mime)
    return clean


def _number(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and 0 <= value < 1e6:
        return value
    if isinstance(value, str) and re.match(r"^\d{1,6}(\.\d+)?$", value.strip()):
        return float(value) if "." in value else int(value)
    return None


def _clean_output_metadata(metadata) -> dict:
    """Output metadata keeps image sizes and backgrounds only (templates put them into attributes)."""
    clean = {}
    if not isinstance(metadata, dict):
        return clean
    for mime in [None, *sorted(_RASTER | {"image/svg+xml"})]:
        md = metadata if mime is None else metadata.get(mime)
        if not isinstance(md, dict):
            continue
        kept = {}
        for key in ("width", "height"):
            if _number(md.get(key)) is not None:
                kept[key] = _number(md[key])
        if isinstance(md.get("unconfined"), bool):
            kept["unconfined"] = md["unconfined"]
        if md.get("needs_background") in ("light", "dark"):
            kept["needs_background"] = md["needs_background"]
        if kept and mime is None:
            clean.update(kept)
        elif kept:
            clean[mime] = kept
    return clean


def _clean_output(output) -> tuple[dict | None, list[str]]:
    removed: list[str] = []
    kind = output.get("output_type") if isinstance(output, dict) else None
    if kind == "stream":
        text = _text(output.get("text"))
        name = output.get("name") if output.get("name") in ("stdout", "stderr") else "stdout"
        return NotebookNode(output_type="stream", name=name, text=text or ""), removed
    if kind == "error":
        tb = output.get("traceback")
        tb = [t for t in tb if isinstance(t, str)] if isinstance(tb, list) else []
        return NotebookNode(output_type="error", ename=_text(output.get("ename")) or "",
                            evalue=_text(output.get("evalue")) or "", traceback=tb), removed
    if kind in ("display_data", "execute_result"):
        data = _clean_bundle(output.get("data"), removed)
        if not data:
            data = {"text/plain": "[output removed by the grader: " + ", ".join(sorted(set(removed))[:5]) + "]"}
        node = NotebookNode(output_type=kind, data=NotebookNode(data),
                            metadata=NotebookNode(_clean_output_metadata(output.get("metadata"))))
        if kind == "execute_result":
            count = output.get("execution_count")
            node["execution_count"] = count if isinstance(count, int) and not isinstance(count, bool) else None
        return node, removed
    return None, [f"output of type {kind!r}"]


def sanitize_cell(cell) -> list[str]:
    """Clean one cell in place; returns what was removed or rewritten (for the log)."""
    changes: list[str] = []
    if cell.get("cell_type") in ("markdown", "raw"):
        source = _text(cell.get("source")) or ""
        is_html = cell.get("cell_type") == "markdown" or \
            str(cell.get("metadata", {}).get("raw_mimetype", "")).lower() in ("text/html",)
        if is_html:
            clean = sanitize_markdown(source) if cell.cell_type == "markdown" else sanitize_html(source)
            if clean != source:
                cell.source = clean
                changes.append(f"{cell.cell_type} source")
        if "attachments" in cell:
            atts = cell.get("attachments")
            clean_atts = {}
            for name, bundle in (atts.items() if isinstance(atts, dict) else []):
                removed: list[str] = []
                data = _clean_bundle(bundle, removed, attachment=True)
                changes += [f"attachment {name!r}: {m}" for m in removed]
                if data:
                    clean_atts[name] = data
            cell.attachments = clean_atts
    if cell.get("cell_type") == "code":
        outputs = []
        for output in cell.get("outputs") or []:
            clean, removed = _clean_output(output)
            changes += removed
            if clean is not None:
                outputs.append(clean)
        cell.outputs = outputs
        count = cell.get("execution_count")
        if count is not None and (not isinstance(count, int) or isinstance(count, bool)):
            cell.execution_count = None
            changes.append("execution_count")
    if "id" in cell and not (isinstance(cell.id, str) and _CELL_ID.match(cell.id)):
        cell.id = "cell-" + base64.b16encode(str(cell.id).encode()[:16]).decode().lower()[:20]
        changes.append("cell id")
    md = cell.get("metadata")
    if isinstance(md, dict):
        if "trusted" in md:
            del md["trusted"]
        tags = md.get("tags")
        if tags is not None:
            clean_tags = [t for t in tags if isinstance(t, str) and _TAG.match(t)] if isinstance(tags, list) else []
            if clean_tags != tags:
                md["tags"] = clean_tags
                changes.append("tags")
        nbg = md.get("nbgrader")
        if isinstance(nbg, dict) and isinstance(nbg.get("comment"), str):
            comment = sanitize_markdown(nbg["comment"])
            if comment != nbg["comment"]:
                nbg["comment"] = comment
                changes.append("comment")
    return changes


def sanitize_notebook(nb) -> list[str]:
    """Clean a notebook in place (cells and the metadata templates use); returns the changes."""
    changes: list[str] = []
    md = nb.get("metadata")
    if isinstance(md, dict):
        if "widgets" in md:
            del md["widgets"]
            changes.append("notebook widgets state")
        title = md.get("title")
        if title is not None:
            clean = re.sub(r"[<>&\"'`]", "", title) if isinstance(title, str) else ""
            if clean != title:
                md["title"] = clean
                changes.append("title")
    for index, cell in enumerate(nb.get("cells") or []):
        changes += [f"cell {index}: {c}" for c in sanitize_cell(cell)]
    return changes


class SanitizeOutputs(NbGraderPreprocessor):
    """Make a notebook safe to render for a person (autograded notebooks, feedback).

    Markdown, HTML, SVG and LaTeX are sanitized, executable outputs dropped (see
    :mod:`autograder.html_safety`). Honest notebooks (figures, tables, math) are unchanged.
    """

    def preprocess(self, nb, resources):
        changes = sanitize_notebook(nb)
        if changes:
            self.log.warning("SanitizeOutputs: removed or rewrote %d item(s) that could run in a browser: %s",
                             len(changes), "; ".join(changes[:20]) + (" ..." if len(changes) > 20 else ""))
        return nb, resources

"""What may be rendered: safe URLs and CSS, and the allowlists of HTML and SVG elements and attributes."""
from __future__ import annotations

import html
import re

__all__ = ["safe_url", "safe_css"]

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

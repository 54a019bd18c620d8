"""Stored script injection: nothing a student wrote runs where a person reads it.

Unit tests of :mod:`autograder.isolation.html_safety` over attack strings, checked with a
browser-grade HTML5 parser (html5lib, as vendored by bleach) rather than with the
sanitizer's own parser; markdown is rendered with nbconvert's own markdown filter
first. Each attack is also shown to be real: the same checker flags it unsanitized.
Then honest content (figures, pandas tables, math, course notebooks) must come
through unchanged, and one end-to-end run through stock ``nbgrader autograde`` and
``nbgrader generate_feedback`` with the course's config (slow).
"""
from __future__ import annotations

import base64
import copy
import io
import json
import re
import xml.etree.ElementTree as ET
from html import unescape
from pathlib import Path

import nbformat
import pytest
from bleach._vendor import html5lib
from nbconvert.filters.markdown_mistune import markdown2html_mistune
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from autograder.isolation.html_safety.markdown_latex import sanitize_latex, sanitize_markdown
from autograder.isolation.html_safety.outputs import SanitizeOutputs, sanitize_notebook
from autograder.isolation.html_safety.policy import safe_url
from autograder.isolation.html_safety.sanitizer import sanitize_html, sanitize_svg

REPO = Path(__file__).resolve().parent.parent
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f80f00000101000518d84e0000000049454e44ae426082")).decode()

# ------------------------------------------------------------------ the checker
URL_ATTRS = {"href", "src", "action", "formaction", "data", "poster", "background", "xlink:href", "cite",
             "codebase", "dynsrc", "lowsrc", "ping", "manifest", "icon"}
DANGEROUS = {"script", "iframe", "frame", "frameset", "object", "embed", "applet", "base", "form", "portal",
             "fencedframe", "animate", "set", "animatemotion", "animatetransform", "foreignobject", "handler",
             "listener", "meta", "link", "import", "template", "noscript"}


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _bad_url(value: str) -> bool:
    u = re.sub(r"[\x00-\x20\x7f-\x9f\\]+", "", unescape(value)).lower()
    if u.startswith(("javascript:", "vbscript:", "livescript:")):
        return True
    return u.startswith("data:") and not re.match(r"data:image/(png|jpeg|gif|webp|bmp)[;,]", u)


def findings(page: str, markers: tuple[str, ...] | None = None, fragment: bool = True) -> list[str]:
    """What could run in a browser that renders ``page``.

    With ``markers``, only things that carry one of them count (a whole nbconvert page
    has scripts of its own); without, anything executable counts.
    """
    parse = html5lib.parseFragment if fragment else html5lib.parse
    root = parse(page, treebuilder="etree", namespaceHTMLElements=False)
    found = []

    def marked(text: str) -> bool:
        return markers is None or any(m in (text or "") for m in markers)

    for el in root.iter():
        name = _local(el.tag)
        text = "".join(el.itertext())
        attrs = {_local(k) if "}" not in str(k) else "xlink:" + _local(k) if "xlink" in str(k) else _local(k): v
                 for k, v in el.attrib.items()}
        blob = text + " " + " ".join(f"{k}={v}" for k, v in attrs.items())
        if name in DANGEROUS and (markers is None and name not in ("meta", "link") or marked(blob)
                                  or name == "meta" and "refresh" in attrs.get("http-equiv", "").lower()):
            found.append(f"<{name}> {blob[:80]!r}")
        if name == "style" and re.search(r"expression|javascript|@import|url\s*\(", text, re.I) and marked(text):
            found.append(f"<style> {text[:80]!r}")
        for key, value in attrs.items():
            if key.startswith("on") and marked(value):
                found.append(f"{name} {key}={value[:60]!r}")
            elif key in URL_ATTRS | {"to", "values", "from", "by"} and _bad_url(value) and marked(value):
                found.append(f"{name} {key}={value[:60]!r}")
            elif key == "srcdoc" and marked(value):
                found.append(f"{name} srcdoc")
            elif key == "style" and re.search(r"expression|javascript|url\s*\(", value, re.I) and marked(value):
                found.append(f"{name} style={value[:60]!r}")
            elif key == "http-equiv" and value.lower() == "refresh":
                found.append(f"{name} refresh")
    return found


def rendered_markdown(source: str) -> str:
    return markdown2html_mistune(source)


# ------------------------------------------------------------------ attacks
HTML_ATTACKS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<ScRiPt>alert(1)</sCrIpT>",
    "<img src=x onerror=alert(1)>",
    "<IMG SRC=x ONERROR=alert(1)>",
    "<img src=x onerror='alert(1)'",            # unclosed
    '<img src="x" /onerror=alert(1)>',
    "<img/src=x/onerror=alert(1)>",
    "<body onload=alert(1)>",
    "<div onmouseover=alert(1)>hover</div>",
    "<details open ontoggle=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<svg onload=alert(1)>",
    "<svg><circle r=3 onclick=alert(1) /></svg>",
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    '<svg><animate attributeName="href" values="javascript:alert(1)"/></svg>',
    '<svg><a><set attributeName="href" to="javascript:alert(1)"/><text>x</text></a></svg>',
    '<svg><foreignObject><iframe src="javascript:alert(1)"></iframe></foreignObject></svg>',
    '<svg><use href="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+"/></svg>',
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="javascript&#58;alert(1)">x</a>',
    '<a href="javascript&colon;alert(1)">x</a>',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">x</a>',
    '<a href="java\tscript:alert(1)">x</a>',
    '<a href="java&#x09;script:alert(1)">x</a>',
    '<a href=" &#14;  javascript:alert(1)">x</a>',
    "<a href=javascript:alert(1)>unquoted</a>",
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="data:text/html,<script>alert(1)</script>">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<iframe srcdoc="&lt;img src=x onerror=alert(1)&gt;"></iframe>',
    '<object data="javascript:alert(1)"></object>',
    '<object data="data:text/html,<script>alert(1)</script>"></object>',
    '<embed src="javascript:alert(1)">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<link rel="import" href="data:text/html,<script>alert(1)</script>">',
    '<form action="javascript:alert(1)"><input type=submit></form>',
    '<button formaction="javascript:alert(1)">b</button>',
    '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table></mtext></math>',
    '<math><a xlink:href="javascript:alert(1)">x</a></math>',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    '<svg><style><img src=x onerror=alert(1)></style></svg>',
    '<style><img src=x onerror=alert(1)></style>',
    '<style>@import "javascript:alert(1)";</style>',
    '<div style="width: expression(alert(1))">x</div>',
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<div style="xss:ex/**/pression(alert(1))">x</div>',
    '<!--<img src=x onerror=alert(1)>-->',
    '<![CDATA[<img src=x onerror=alert(1)>]]>',
    '<div><p>unclosed <b>nested <i><img src=x onerror=alert(1)',
    '<scr<script>ipt>alert(1)</script>',
    '<<script>script>alert(1)</script>',
    '<xmp><img src=x onerror=alert(1)></xmp>',
    '<title><img src=x onerror=alert(1)></title>',
    '<textarea><img src=x onerror=alert(1)></textarea>',
    '<template><img src=x onerror=alert(1)></template>',
    '<table><td background="javascript:alert(1)">x</td></table>',
    '<img src="x" srcset="javascript:alert(1) 1x">',
    '<video><source onerror="alert(1)"></video>',
    '<audio src=x onerror=alert(1)>',
    '<isindex type=image src=1 onerror=alert(1)>',
    '<a href="#" onclick="alert(1)">x</a>',
    '<img src="x` `<script>alert(1)</script>"` `>',
    '<div id="MathJax"><a id=require href=javascript:alert(1)>x</a></div>',
]

MARKDOWN_ATTACKS = [
    "<script>alert(1)</script>",
    "Some *text* <img src=x onerror=alert(1)> more",
    "<div>\n<img src=x\nonerror=alert(1)>\n</div>",
    "<div>\n<img src=x onerror=alert(1)\n\nparagraph",
    "[click](javascript:alert(1))",
    "[click](JAVASCRIPT:alert(1))",
    "[click](javascript&#58;alert(1))",
    "[click](&#x6A;avascript:alert(1))",
    "[click](<java\tscript:alert(1)>)",
    "[click](<javascript:alert(1)>)",
    "[click](java\\script:alert(1))",
    "![img](javascript:alert(1))",
    "[click][r]\n\n[r]: javascript:alert(1)",
    "> [click][r]\n>\n> [r]: javascript:alert(1)",
    "<javascript:alert(1)>",
    "[a](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "$<img src=x onerror=alert(1)>$",
    "$$<img src=x onerror=alert(1)>$$",
    "costs $5 and <img src=x onerror=alert(1)> $6",
    "`<img src=x onerror=alert(1)>`",
    "```\n<script>alert(1)</script>\n```",
    "```mermaid\ngraph TD\nA[<img src=x onerror=alert(1)>]\n```",
    "    <img src=x onerror=alert(1)>",
    "<<!-- -->img src=x onerror=alert(1)>",
    "<!-- --><script>alert(1)</script>",
    '<a href="javascript:alert(1)">x</a>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<svg><script>alert(1)</script></svg>',
    '<svg onload=alert(1)>',
    '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>',
    '<style>body{background:url("javascript:alert(1)")}</style>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<object data="javascript:alert(1)"></object>',
    '<IMG SRC=x ONERROR=alert(1)>',
    "<details open ontoggle=alert(1)><summary>s</summary></details>",
    "<pre>\n<img src=x onerror=alert(1)>\n</pre>",
    "<img src=x alt='$' onerror=alert(1) title='$'>",
    "$\\href{javascript:alert(1)}{click}$",
    "<a href='x' \nonclick='alert(1)'>multi-line tag</a>",
]


@pytest.mark.parametrize("attack", HTML_ATTACKS)
def test_html_attack_is_inert(attack):
    out = sanitize_html(attack)
    assert findings(out) == [], out
    assert sanitize_html(out) == out          # idempotent: feedback sanitizes the autograded notebook again


def test_html_attacks_are_real():
    """The checker is not blind: most attacks are flagged before sanitizing."""
    flagged = [a for a in HTML_ATTACKS if findings(a)]
    # The rest need a second parse (mXSS), an old browser or a user's click on a text area.
    assert len(flagged) >= 50, set(HTML_ATTACKS) - set(flagged)


@pytest.mark.parametrize("attack", MARKDOWN_ATTACKS)
def test_markdown_attack_is_inert(attack):
    clean = sanitize_markdown(attack)
    assert findings(rendered_markdown(clean)) == [], (clean, rendered_markdown(clean))
    assert sanitize_markdown(clean) == clean


def test_markdown_attacks_are_real():
    flagged = [a for a in MARKDOWN_ATTACKS if findings(rendered_markdown(a))]
    # The rest nbconvert happens to escape (code, math) but another renderer may not.
    assert len(flagged) >= 25, set(MARKDOWN_ATTACKS) - set(flagged)


def test_markdown_attack_is_shown_not_run():
    """A neutralised script tag is shown as text: the instructor sees the attempt."""
    html = rendered_markdown(sanitize_markdown("before <script>alert('XSS-MD')</script> after"))
    assert findings(html) == []
    assert "XSS-MD" in html and "&lt;script&gt;" in html


SVG_ATTACKS = [
    '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(1)</script>'
    '<rect width="10" height="10" onclick="alert(1)"/></svg>',
    '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x "javascript:alert(1)">]>'
    '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
    '<a xlink:href="&x;"><text>x</text></a><a href="javascript:alert(1)"><text>y</text></a></svg>',
    '<svg xmlns="http://www.w3.org/2000/svg"><foreignObject><body xmlns="http://www.w3.org/1999/xhtml">'
    '<img src="x" onerror="alert(1)"/></body></foreignObject></svg>',
    '<svg xmlns="http://www.w3.org/2000/svg"><animate attributeName="href" to="javascript:alert(1)"/>'
    '<set attributeName="onmouseover" to="alert(1)"/><handler type="text/javascript">alert(1)</handler></svg>',
    '<svg xmlns="http://www.w3.org/2000/svg"><style>@import url(javascript:alert(1));</style>'
    '<image href="javascript:alert(1)" width="1" height="1"/><use href="https://evil.example/x.svg#a"/></svg>',
    '<svg xmlns="http://www.w3.org/2000/svg"><![CDATA[<script>alert(1)</script>]]><g><script '
    'type="text/ecmascript">alert(1)</script></g></svg>',
]


@pytest.mark.parametrize("attack", SVG_ATTACKS)
def test_svg_attack_is_inert(attack):
    out = sanitize_svg(attack)
    ET.fromstring(out)                        # still a well-formed SVG document
    assert findings(out) == [], out
    assert "evil.example" not in out and "<script" not in out and " on" not in out
    assert sanitize_svg(out) == out


HOSTILE = {
    "unclosed tags": "x<" * 100_000,
    "marked sections": "<![" * 70_000 + ">",
    "comments": "<!--" * 50_000,
    "nested divs": "<div>" * 40_000 + "</span>" * 40_000 + "</div>" * 40_000,
    "many attributes": "<a " + 'b="c" ' * 30_000 + ">",
    "css without rules": "<style>" + " " * 200_000 + "x</style>",
    "math openers": "\\[" * 100_000,
    "environments": "\\begin{a}" * 20_000,
    "dollars": "$a" * 100_000,
    "links": "](" * 100_000 + "](<" * 50_000,
    "tags in math": "$<img src=x onerror=alert(1)>" * 5_000,
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_input_is_fast_and_inert(name):
    """What a student can put in a cell cannot stall or crash the grader (it runs in nbgrader's process)."""
    import time

    text = HOSTILE[name]
    start = time.perf_counter()
    out_html, out_md, out_svg = sanitize_html(text), sanitize_markdown(text), sanitize_svg("<svg>" + text)
    assert time.perf_counter() - start < 10, name
    for out in (out_html, out_md, out_svg):   # (html5lib itself is too slow for these)
        assert not re.search(r"<(script|iframe|object|embed)|<[^<>]*(\son[a-z]+\s*=|javascript:)", out), name


def test_urls():
    assert safe_url("https://example.com/a?b=1") and safe_url("#section") and safe_url("figures/a.png")
    assert safe_url("mailto:someone@example.com") and not safe_url("mailto:x", image=True)
    assert safe_url("data:image/png;base64," + PNG, image=True)
    assert safe_url("attachment:plot.png", image=True)
    for bad in ("javascript:alert(1)", " JAVASCRIPT:alert(1)", "jav&#x0A;ascript:alert(1)", "java\\script:x",
                "vbscript:x", "data:text/html,<b>", "data:image/svg+xml;base64,PHN2Zz4=", "file:///etc/passwd",
                "&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116:x"):
        assert not safe_url(bad, image=True), bad


def test_latex_output_and_math():
    assert sanitize_latex(r"$\displaystyle x^{2} + \frac{1}{2}$") == r"$\displaystyle x^{2} + \frac{1}{2}$"
    assert sanitize_latex(r"$a < b$") == r"$a < b$"
    assert "<" not in sanitize_latex(r"$a<b$") and r"\lt b" in sanitize_latex(r"$a<b$")
    assert sanitize_latex(r"\href{javascript:alert(1)}{x}") == r"\href{#}{x}"
    assert sanitize_latex(r"\href{https://example.com}{x}") == r"\href{https://example.com}{x}"


# ------------------------------------------------------------------ honest content survives
PANDAS_HTML = """<div>
<style scoped>
    .dataframe tbody tr th:only-of-type {
        vertical-align: middle;
    }

    .dataframe tbody tr th {
        vertical-align: top;
    }

    .dataframe thead th {
        text-align: right;
    }
</style>
<table border="1" class="dataframe">
  <thead>
    <tr style="text-align: right;">
      <th></th>
      <th>loss</th>
      <th>acc</th>
    </tr>
  </thead>
  <tbody>
    <tr>
      <th>0</th>
      <td>0.693</td>
      <td>0.51</td>
    </tr>
    <tr>
      <th>1</th>
      <td>0.125</td>
      <td>0.97</td>
    </tr>
  </tbody>
</table>
</div>"""
STYLER_HTML = ('<style type="text/css">\n#T_ab12c_row0_col0, #T_ab12c_row1_col1 {\n  background-color: #08306b;\n'
               '  color: #f1f1f1;\n}\n</style>\n<table id="T_ab12c">\n  <thead>\n    <tr>\n'
               '      <th class="blank level0" >&nbsp;</th>\n      <th id="T_ab12c_level0_col0" class="col_heading '
               'level0 col0" >a</th>\n    </tr>\n  </thead>\n  <tbody>\n    <tr>\n      <td id="T_ab12c_row0_col0" '
               'class="data row0 col0" >1</td>\n    </tr>\n  </tbody>\n</table>\n')
HONEST_MARKDOWN = [
    "# Title\n\nThe output size is $\\lfloor (n + 2p - k)/s \\rfloor + 1$ and $x^2$.",
    "$$\\sum_{c=0}^{C-1} w_c x_c$$\n\nfor $0 \\le i < H$ and a < b.",
    "Yu & Koltun's context module; `x[..., :k]`; **bold** and _it_.",
    "| a | b |\n|---|---|\n| 1 | 2 |",
    "![plot](attachment:plot.png) and [docs](https://pytorch.org/docs) and <https://example.com>",
    "<img src=\"data:image/png;base64," + PNG + "\">",
    "<b>bold</b> <i>it</i> <br> <sub>2</sub> <details><summary>hint</summary>open me</details>",
    "```python\nfor i in range(3):\n    print(i)\n```",
    "\\begin{align} a &= b \\\\ c &= d \\end{align}",
]


def test_pandas_tables_survive():
    assert sanitize_html(PANDAS_HTML) == PANDAS_HTML
    out = sanitize_html(STYLER_HTML)
    assert "background-color: #08306b" in out and 'id="T_ab12c_row0_col0"' in out and "<table" in out
    assert findings(out) == []


@pytest.mark.parametrize("text", HONEST_MARKDOWN)
def test_honest_markdown_unchanged(text):
    assert sanitize_markdown(text) == text


def test_course_notebooks_unchanged():
    for path in sorted((REPO / "course" / "source").glob("*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        clean = copy.deepcopy(nb)
        assert sanitize_notebook(clean) == [], path
        assert clean == nb


def _matplotlib_outputs():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1, 2], [2, 0, 1], label="loss < 1")
    ax.imshow(np.arange(16.0).reshape(4, 4), extent=(0, 2, 0, 2))
    ax.set_title("a & <b>")
    ax.legend()
    png, svg = io.BytesIO(), io.StringIO()
    fig.savefig(png, format="png")
    fig.savefig(svg, format="svg")
    plt.close(fig)
    return base64.b64encode(png.getvalue()).decode(), svg.getvalue()


def test_figures_survive():
    png, svg = _matplotlib_outputs()
    out = sanitize_svg(svg)
    tree = ET.fromstring(out)
    ns = "{http://www.w3.org/2000/svg}"
    for tag in ("path", "g", "use", "image", "clipPath"):
        assert len(tree.findall(f".//{ns}{tag}")) == len(ET.fromstring(svg.encode()).findall(f".//{ns}{tag}")), tag
    assert tree.get("viewBox") and findings(out) == []
    nb = new_notebook(cells=[new_code_cell("plt.plot(...)", execution_count=3, outputs=[
        new_output("display_data", data={"image/png": png, "text/plain": "<Figure size 300x200 with 1 Axes>"},
                   metadata={"image/png": {"width": 300, "height": 200}, "needs_background": "light"}),
        new_output("display_data", data={"image/svg+xml": svg, "text/plain": "<Figure>"}),
        new_output("execute_result", data={"text/html": PANDAS_HTML, "text/plain": "   loss  acc"},
                   execution_count=3),
        new_output("display_data", data={"text/latex": r"$\displaystyle x^{2}$", "text/plain": "x**2"}),
        new_output("stream", name="stdout", text="epoch 1: loss < 0.5 <b>\n"),
    ])])
    clean = copy.deepcopy(nb)
    sanitize_notebook(clean)
    outputs = clean.cells[0].outputs
    assert outputs[0] == nb.cells[0].outputs[0]
    assert outputs[2:] == nb.cells[0].outputs[2:]
    assert ET.fromstring(outputs[1].data["image/svg+xml"]) is not None


# ------------------------------------------------------------------ notebooks
def attack_notebook():
    """Outputs and metadata as a kernel (or a hand-edited file) could leave them."""
    cells = [
        new_markdown_cell("# Answer <img src=x onerror=alert('XSS-M1')>\n[x](javascript:alert('XSS-M2'))",
                          metadata={"tags": ['"><script>alert("XSS-T")</script>'], "trusted": True}),
        new_code_cell("display(...)", execution_count=2, outputs=[
            new_output("display_data", data={"application/javascript": "alert('XSS-J1')",
                                             "text/plain": "<IPython.core.display.Javascript object>"}),
            new_output("display_data", data={"text/javascript": "alert('XSS-J2')"}),
            new_output("display_data", data={"application/vnd.jupyter.widget-view+json":
                                             {"model_id": "1", "version_major": 2, "version_minor": 0}}),
            new_output("display_data", data={"application/vnd.bokehjs_exec.v0+json": "",
                                             "text/vnd.mermaid": "<img src=x onerror=alert('XSS-MM')>"}),
            new_output("display_data", data={"text/html": "<script>alert('XSS-H1')</script>"
                                             "<img src=x onerror=\"alert('XSS-H2')\"><b>kept</b>"}),
            new_output("display_data", data={"image/svg+xml": "<svg xmlns='http://www.w3.org/2000/svg' "
                                             "onload=\"alert('XSS-S1')\"><script>alert('XSS-S2')</script></svg>"}),
            new_output("display_data", data={"image/png": PNG + '"><script>alert("XSS-P")</script>'}),
            new_output("display_data", data={"image/png": PNG},
                       metadata={"image/png": {"width": "1 onerror=alert('XSS-W')"},
                                 "filenames": {"image/png": "javascript:alert('XSS-F')"}}),
            new_output("display_data", data={"text/markdown": "<img src=x onerror=alert('XSS-MD')>"}),
            new_output("display_data", data={"text/latex": "$<img src=x onerror=alert('XSS-L')>$"}),
            new_output("execute_result", data={"text/plain": "1"}, execution_count=2),
        ]),
        nbformat.v4.new_raw_cell("<script>alert('XSS-R')</script>", metadata={"raw_mimetype": "text/html"}),
    ]
    nb = new_notebook(cells=cells)
    nb.cells[1].execution_count = "<script>alert('XSS-E')</script>"   # a hand-edited file
    nb.metadata["title"] = "</title><script>alert('XSS-TT')</script>"
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2}}
    return nb


MARKERS = tuple(f"XSS-{m}" for m in ("M1", "M2", "T", "J1", "J2", "MM", "H1", "H2", "S1", "S2", "P", "W", "F",
                                     "MD", "L", "R", "E", "TT"))


def _export(nb, template: str) -> str:
    from nbconvert import HTMLExporter

    html, _ = HTMLExporter(template_name=template).from_notebook_node(copy.deepcopy(nb))
    return html


def test_notebook_attacks_are_real():
    nb = attack_notebook()
    nb.cells[1].execution_count = 2                  # nbconvert refuses an invalid notebook
    html = _export(nb, "lab")
    assert len(findings(html, MARKERS, fragment=False)) >= 6


@pytest.mark.parametrize("template", ["lab", "classic"])
def test_sanitized_notebook_renders_inert(template):
    nb = attack_notebook()
    changes = sanitize_notebook(nb)
    assert changes
    nbformat.validate(nb)
    html = _export(nb, template)
    assert findings(html, MARKERS, fragment=False) == []
    outputs = nb.cells[1].outputs
    mimes = {m for o in outputs for m in o.get("data", {})}
    assert not {m for m in mimes if "javascript" in m or "widget" in m or "bokeh" in m or "mermaid" in m}
    assert "<b>kept</b>" in outputs[4].data["text/html"]
    assert outputs[7].data["image/png"] == PNG and "width" not in outputs[7].metadata.get("image/png", {})
    assert "widgets" not in nb.metadata and nb.cells[1].execution_count is None
    assert outputs[-1].data == {"text/plain": "1"}          # a score nbgrader reads is untouched
    assert sanitize_notebook(nb) == []                       # idempotent


def test_preprocessor():
    nb = attack_notebook()
    pre = SanitizeOutputs()
    nb, _ = pre.preprocess(nb, {})
    assert findings(_export(nb, "lab"), MARKERS, fragment=False) == []


# ------------------------------------------------------------------ end to end (slow)
PLOT = '''
import matplotlib
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(2, 2))
ax.plot([0, 1, 2], [1, 0, 1])
ax.set_title("HONEST-FIGURE")
plt.show()
'''
ATTACK = '''
from IPython.display import HTML, SVG, Javascript, Latex, Markdown, display
display(Javascript("alert('XSS-E2E-J')"))
display(HTML("<script>alert('XSS-E2E-H1')</script><img src=x onerror=\\"alert('XSS-E2E-H2')\\">"
             "<a href='javascript:alert(1)'>XSS-E2E-A</a><iframe srcdoc='<script>alert(1)</script>'></iframe>"))
display(SVG("<svg xmlns='http://www.w3.org/2000/svg' onload=\\"alert('XSS-E2E-S1')\\">"
            "<script>alert('XSS-E2E-S2')</script><rect width='5' height='5'/></svg>"))
display(Markdown("<img src=x onerror=alert('XSS-E2E-MD')>"))
display(Latex("$<img src=x onerror=alert('XSS-E2E-L')>$"))
display({"text/html": "<svg><animate attributeName=href to=javascript:alert('XSS-E2E-AN')/></svg>",
         "text/vnd.mermaid": "<img src=x onerror=alert('XSS-E2E-MM')>"}, raw=True)
'''
E2E_MARKERS = ("XSS-E2E-J", "XSS-E2E-H1", "XSS-E2E-H2", "XSS-E2E-S1", "XSS-E2E-S2", "XSS-E2E-MD",
               "XSS-E2E-L", "XSS-E2E-AN", "XSS-E2E-MM", "XSS-E2E-M1", "XSS-E2E-M2", "XSS-E2E-M3", "alert(1)")
MARKDOWN_ATTACK = ("## conv_output_size <img src=x onerror=alert('XSS-E2E-M1')>\n\n"
                   "<script>alert('XSS-E2E-M2')</script> [notes](javascript:alert('XSS-E2E-M3')) "
                   "and $x^2$ stays")


def _scripts(page: str) -> list[str]:
    root = html5lib.parse(page, treebuilder="etree", namespaceHTMLElements=False)
    return ["".join(el.itertext()) + str(el.attrib) for el in root.iter() if _local(el.tag) == "script"]


@pytest.mark.slow
def test_end_to_end_autograde_and_feedback(tmp_path):
    from .faults.harness import A, POINTS, filled, gradebook, make_course, nbgrader, submit
    from autograder.notebooks import reference_definitions

    root = make_course(tmp_path / "course", "c.JudgedExecute.seed = 7\nc.JudgedExecute.timeout = 60\n")
    refs = {n: reference_definitions(A)[n] for n in POINTS}

    def notebook(attack: bool):
        nb = filled(root, refs)
        for cell in nb.cells:
            if cell.cell_type == "code" and "def conv_output_size" in cell.source:
                cell.source += "\n" + PLOT + (ATTACK if attack else "")
            if attack and cell.cell_type == "markdown" and cell.source.startswith("## conv_output_size"):
                cell.source = MARKDOWN_ATTACK
        if attack:
            nb.cells.insert(1, new_markdown_cell("<iframe src=javascript:alert('XSS-E2E-M1')></iframe>"
                                                 "<svg onload=alert('XSS-E2E-M2')>"))
            nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
        return nb

    submit(root, "honest", notebook(False))
    submitted = submit(root, "attacker", notebook(True))
    # The attacks are real: the submitted markdown alone, rendered as it is, would run.
    assert findings(_export(nbformat.read(submitted, as_version=4), "classic"), E2E_MARKERS, fragment=False)
    proc = nbgrader(root, "autograde", A, "--create", "--force", timeout=900)
    assert "SanitizeOutputs" in proc.stdout + proc.stderr
    nbgrader(root, "generate_feedback", A, "--force", timeout=600)

    check_graded(root)


def check_graded(root: Path):
    """The assertions of the end-to-end test, on a graded course folder."""
    from .faults.harness import A, POINTS, gradebook

    # Grades: the attacks change nothing, and the honest notebook scores full marks.
    grades = gradebook(root)
    assert grades["honest"] == {n: POINTS[n] for n in POINTS}, grades
    assert grades["attacker"] == grades["honest"], grades

    pages = {}
    for student in ("honest", "attacker"):
        autograded = root / "autograded" / student / A / f"{A}.ipynb"
        raw = autograded.read_text()
        nb = nbformat.reads(raw, as_version=4)
        mimes = {m for c in nb.cells if c.cell_type == "code" for o in c.outputs for m in o.get("data", {})}
        assert not [m for m in mimes if "javascript" in m or "widget" in m or "mermaid" in m], mimes
        assert "widgets" not in nb.metadata
        # What formgrader shows: the autograded notebook rendered by nbconvert.
        for template in ("lab", "classic"):
            assert findings(_export(nb, template), E2E_MARKERS, fragment=False) == [], (student, template)
        feedback = (root / "feedback" / student / A / f"{A}.html").read_text()
        assert findings(feedback, E2E_MARKERS, fragment=False) == [], student
        pages[student] = feedback
        # The honest parts are still there: the figure, the math and the grade.
        assert re.search(r'<img [^>]*src="data:image/png;base64,', feedback), student
        assert "$x^2$" in feedback or student == "honest"
        assert re.search(r"Score:\s*12(\.0)?\s*/\s*12", feedback), student

    # No script in the attacker's feedback that is not in the honest one (the template's own).
    honest_scripts = set(_scripts(pages["honest"]))
    extra = [s for s in _scripts(pages["attacker"]) if s not in honest_scripts]
    assert extra == [], extra
    # The attempt is visible as text, not run.
    assert "XSS-E2E-M2" in pages["attacker"] and "&lt;script&gt;" in pages["attacker"]
    json.loads((root / "autograded" / "attacker" / A / f"{A}.ipynb").read_text())

"""Nothing a student wrote runs in a browser: sanitizers for what is rendered for a person.

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
"""
from __future__ import annotations

import base64
import binascii
import re

from nbformat import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor

from .markdown_latex import sanitize_latex, sanitize_markdown
from .sanitizer import sanitize_html, sanitize_svg

__all__ = ["sanitize_notebook", "SanitizeOutputs"]

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
    :mod:`autograder.isolation.html_safety`). Honest notebooks (figures, tables, math) are unchanged.
    """

    def preprocess(self, nb, resources):
        changes = sanitize_notebook(nb)
        if changes:
            self.log.warning("SanitizeOutputs: removed or rewrote %d item(s) that could run in a browser: %s",
                             len(changes), "; ".join(changes[:20]) + (" ..." if len(changes) > 20 else ""))
        return nb, resources

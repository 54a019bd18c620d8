"""Nothing a student wrote runs in a browser: sanitizers for what is rendered for a person.

A submitted notebook reaches people twice: formgrader renders the autograded notebook
for the instructor, and ``nbgrader generate_feedback`` turns it into the HTML the
student (and often the instructor) opens. nbconvert copies raw HTML from markdown
cells and from ``text/html`` outputs into that page, runs ``application/javascript``
outputs, and builds some attributes from output metadata; so a ``<script>``, an
``onerror=`` or a ``javascript:`` link in a submission would run there.

The pieces: :mod:`.outputs` (:class:`~.outputs.SanitizeOutputs`, the nbgrader
preprocessor, and what it does to a notebook's cells, outputs and metadata),
:mod:`.sanitizer` (HTML and SVG, re-serialised through the allowlists),
:mod:`.markdown_latex` (markdown and LaTeX) and :mod:`.policy` (which URLs, CSS,
elements and attributes may pass).
"""

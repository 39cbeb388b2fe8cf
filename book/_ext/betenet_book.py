"""Sphinx extension of the betenet book: the ``data-snapshot`` directive.

```{data-snapshot}
```

renders, when the book is *built* (not when its notebooks were executed), an admonition saying which run
executed the chapters, the data snapshot it read (record count, digest) and whether the records in the
tree have moved on since (:func:`betenet.pipeline.snapshot_report`, reading ``chapters/run.json`` beside
this book's sources): a note when they have not, a warning when they have, when the run did not finish,
or when it left no record.  A fresh clone therefore shows a stale book as stale, never as current.
"""

from __future__ import annotations

import sys
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

__all__ = ["DataSnapshotDirective", "setup"]


class DataSnapshotDirective(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        from betenet.pipeline import RUN_RECORD, snapshot_report

        chapters = Path(self.env.srcdir) / "chapters"
        # rebuild the page when the run record changes (the data themselves are re-read on every build)
        self.env.note_dependency(str(chapters / RUN_RECORD))
        kind, title, lines = snapshot_report(chapters)
        box = nodes.admonition(classes=["admonition", kind, "betenet-data-snapshot"])
        box += nodes.title(title, title)
        self.state.nested_parse(StringList("\n\n".join(lines).splitlines(), "data-snapshot"),
                                self.content_offset, box)
        return [box]


def _always_reread(app, env, added, changed, removed) -> list[str]:
    """Pages with the directive are read again on every build: the data may have moved on without any
    source file changing."""
    return sorted(d for d, flag in getattr(env, "betenet_snapshot_docs", {}).items() if flag)


def _note_snapshot_docs(app, doctree) -> None:
    env = app.env
    if not hasattr(env, "betenet_snapshot_docs"):
        env.betenet_snapshot_docs = {}
    has = any("betenet-data-snapshot" in n.get("classes", []) for n in doctree.findall(nodes.admonition))
    env.betenet_snapshot_docs[env.docname] = has


def _merge(app, env, docnames, other) -> None:
    env.betenet_snapshot_docs = {**getattr(env, "betenet_snapshot_docs", {}),
                                 **getattr(other, "betenet_snapshot_docs", {})}


def setup(app):
    # the committed book (book/ of a checkout) compares against the checkout it sits in, whichever betenet
    # the environment has installed; a book elsewhere (artifacts/<profile>/book) uses the installed one
    checkout = Path(app.srcdir).resolve().parent
    if (checkout / "betenet" / "__init__.py").is_file() and str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    app.add_directive("data-snapshot", DataSnapshotDirective)
    app.connect("doctree-read", _note_snapshot_docs)
    app.connect("env-get-outdated", _always_reread)
    app.connect("env-merge-info", _merge)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}

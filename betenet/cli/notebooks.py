"""``betenet notebooks run | book | check | list``: execute the notebooks with papermill for a profile and
build the book (:mod:`betenet.pipeline`).

Only a complete run of the ``default`` profile on our data writes the committed chapters (``book/chapters``);
any other run writes a book of its own under ``artifacts[/upstream]/<profile>/book/``
(:func:`betenet.pipeline.book_dir_for`)."""

from __future__ import annotations

import argparse
import time

from betenet import pipeline

__all__ = ["cli_main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="betenet notebooks",
                                description="Execute the notebooks with papermill, then build the Jupyter Book.")
    sub = p.add_subparsers(dest="action", required=True)
    r = sub.add_parser("run", help="execute notebooks with papermill (and optionally build the book)")
    r.add_argument("--profile", default="default", help="smoke | default | paper")
    r.add_argument("--only", nargs="*", help="notebook name prefixes, e.g. 01 03 (written to a book of their own, "
                                             "never over the committed chapters)")
    r.add_argument("--build-book", action="store_true", help="then write the results page and run jupyter-book build")
    r.add_argument("--no-progress", action="store_true")
    b = sub.add_parser("book", help="write the results page and build the book from already executed notebooks")
    b.add_argument("--profile", default="default")
    for sp in (r, b):
        sp.add_argument("--data", default="ours", choices=("ours", "upstream"),
                        help="ours: this project's QE records; upstream: the authors' database.json "
                             "(data/upstream/database.json) with the paper's split and bootstrap resamples")
    c = sub.add_parser("check", help="do a book's chapters come from one complete run? (default: the committed book)")
    c.add_argument("--profile", default="default")
    c.add_argument("--data", default="ours", choices=("ours", "upstream"))
    sub.add_parser("list", help="list the notebooks in execution order")
    return p


def cli_main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.action == "list":
        for nb in pipeline.discover_notebooks():
            print(nb.name)
        return 0
    only = getattr(args, "only", None)
    book = pipeline.book_dir_for(args.profile, args.data, only=only)
    if args.action == "check":
        problems = pipeline.check_one_run(book / "chapters", profile=args.profile)
        for line in problems:
            print(f"betenet notebooks check: {line}")
        if not problems:
            print(f"[betenet] {book / 'chapters'}: one complete run")
        return 1 if problems else 0
    if args.action == "run":
        t0 = time.perf_counter()
        pipeline.run_notebooks(args.profile, data=args.data, only=only, output_dir=book / "chapters",
                               progress=not args.no_progress)
        print(f"[betenet] notebooks done in {time.perf_counter() - t0:.0f} s -> {book / 'chapters'}", flush=True)
    if args.action == "book" or getattr(args, "build_book", False):
        pipeline.write_results_page(args.profile, book_dir=book, data=args.data)
        html = pipeline.build_book(book)
        print(f"[betenet] book: {html / 'index.html'}")
    return 0

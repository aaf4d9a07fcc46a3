"""The ``storywire`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NoReturn, Sequence

from pydantic import ValidationError

from stream.settings import Settings


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments get one line that says what is wrong and how to fix it, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="storywire", description="Streaming detection of developing news stories.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    ev = sub.add_parser("evaluate", help="replay a labelled JSON-lines stream in-process and score it")
    ev.add_argument("file", type=Path, help="JSON-lines articles with a gold `event` label")
    ev.add_argument("--embedder", choices=["minilm", "static"], help="default: $STORYWIRE_EMBEDDER or minilm")
    ev.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    ev.add_argument("--assignments", type=Path, metavar="OUT.jsonl", help="write one assignment per article")
    ev.add_argument("--report", type=Path, metavar="DIR", help="write report.md and PNG plots to DIR")
    ev.add_argument("--join-threshold", type=float, help="override the trained join threshold (0..1)")
    return parser


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"storywire: error: {message}\n")
    raise SystemExit(2)


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from stream.evaluate import print_table, run_evaluation, summary, write_assignments

    if not args.file.is_file():
        _fail(f"no such file: {args.file} (give a JSON-lines file of articles)")
    if args.join_threshold is not None and not 0.0 <= args.join_threshold <= 1.0:
        _fail(f"--join-threshold must be between 0 and 1, got {args.join_threshold}")
    embedder = args.embedder or settings.embedder
    threshold = args.join_threshold if args.join_threshold is not None else settings.join_threshold
    result, bad, seconds = run_evaluation(args.file, embedder, settings.cluster_config(), threshold,
                                          settings.embed_batch_size)
    data = summary(result, seconds)
    data["skipped_lines"] = len(bad)
    if args.assignments:
        args.assignments.parent.mkdir(parents=True, exist_ok=True)
        with args.assignments.open("w") as out:
            write_assignments(result, out)
    if args.report:
        from stream.report import write_report

        path = write_report(result, data, args.file, embedder, args.report)
        sys.stderr.write(f"report: {path}\n")
    if args.json:
        print(json.dumps(data))
    else:
        print_table(args.file, embedder, data)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        _fail(f"bad setting STORYWIRE_{str(err['loc'][0]).upper()}: {err['msg']}")
    commands = {"evaluate": cmd_evaluate}
    return commands[args.command](args, settings)


if __name__ == "__main__":
    raise SystemExit(main())

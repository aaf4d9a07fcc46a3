"""The ``storywire`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

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
    ev.add_argument(
        "--windowed",
        metavar="DURATION",
        help="also score in windows of DURATION (7d, 36h, 90m) sliding by one day (or by the window if shorter)",
    )

    wk = sub.add_parser("worker", help="run a stream worker (Faust agents, tables, web server)")
    wk.add_argument("--broker", help="kafka://host:port (default: $STORYWIRE_BROKER)")
    wk.add_argument("--embedder", choices=["minilm", "static"], help="default: $STORYWIRE_EMBEDDER or minilm")
    wk.add_argument("--web-port", type=int, help="port of the web server (default: $STORYWIRE_WEB_PORT or 6066)")
    wk.add_argument(
        "--role", choices=["all", "embed", "cluster"], help="stages to run (default: $STORYWIRE_ROLE or all)"
    )
    wk.add_argument("--loglevel", default="warning", choices=["debug", "info", "warning", "error"])

    rp = sub.add_parser("replay", help="publish a JSON-lines file of articles to the articles topic")
    rp.add_argument("file", type=Path, help="JSON-lines articles")
    rp.add_argument("--broker", help="kafka://host:port (default: $STORYWIRE_BROKER)")
    pace = rp.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, metavar="N", help="send N articles per second")
    pace.add_argument("--speed", type=float, metavar="X", help="replay event time X times faster than real time")
    pace.add_argument("--max", action="store_true", help="send as fast as possible (the default)")

    dm = sub.add_parser("demo", help="local broker + worker + replay of the bundled sample (Ctrl-C stops)")
    dm.add_argument("--input", type=Path, help="JSON-lines articles to replay (default: the bundled sample)")
    dm.add_argument("--embedder", choices=["minilm", "static"], help="default: $STORYWIRE_EMBEDDER or minilm")
    dm.add_argument("--broker", help="use this Kafka cluster instead of starting a local broker")
    dm.add_argument("--until-idle", action="store_true", help="stop once every line is assigned or dead-lettered")
    dm.add_argument("--json", action="store_true", help="with --until-idle: print one JSON summary line")
    dm.add_argument("--assignments", type=Path, metavar="OUT.jsonl", help="with --until-idle: write assignments")
    dm.add_argument(
        "--deadletters", type=Path, metavar="OUT.jsonl", help="with --until-idle: write dead letters with reasons"
    )
    dm.add_argument("--timeout", type=float, default=900.0, help="seconds to wait with --until-idle (default 900)")
    dm.add_argument("--web-port", type=int, help="port of the worker's web server (default: a free port)")
    dm.add_argument("--webhook", action="append", default=[], metavar="URL", help="POST alerts here (repeatable)")
    dm.add_argument(
        "--webhook-secret", action="append", default=[], metavar="S", help="HMAC secret of each --webhook, in order"
    )
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
    window = _duration(args.windowed) if args.windowed else None
    embedder = args.embedder or settings.embedder
    threshold = args.join_threshold if args.join_threshold is not None else settings.join_threshold
    result, bad, seconds = run_evaluation(
        args.file, embedder, settings.cluster_config(), threshold, settings.embed_batch_size, settings.merge_threshold
    )
    data = summary(result, seconds)
    data["skipped_lines"] = len(bad)
    if window is not None:
        from models.metrics import windowed_score

        times = [a.timestamp for a in result.assignments]
        w = windowed_score(result.gold, [a.story_id for a in result.assignments], times, window, min(window, 86400.0))
        data.update({f"windowed_{k}" if k != "windows" else k: round(v, 4) for k, v in w.to_dict().items()})
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


def _duration(text: str) -> float:
    """``7d``, ``36h``, ``90m``, ``45s`` or plain seconds -> seconds (> 0)."""
    units = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        _fail(f"--windowed wants a positive duration like 7d, 36h or 90m, got {text!r}")
    return seconds


def _with_flags(settings: Settings, args: argparse.Namespace) -> Settings:
    """CLI flags win over environment variables."""
    update = {}
    for flag in ("broker", "embedder", "web_port", "role"):
        value = getattr(args, flag, None)
        if value is not None:
            update[flag] = value
    if update.get("broker") and not str(update["broker"]).startswith("kafka://"):
        _fail(f"--broker must look like kafka://host:port, got {update['broker']!r}")
    return settings.model_copy(update=update)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    settings = _with_flags(settings, args)
    if not settings.broker:
        _fail("no broker: pass --broker kafka://host:port or set STORYWIRE_BROKER (or run `storywire demo`)")
    try:
        settings.webhook_endpoints()
    except (ValueError, OSError) as exc:  # the message names the field, never the secret
        _fail(f"bad STORYWIRE_WEBHOOKS / STORYWIRE_WEBHOOKS_FILE: {exc}")
    import faust
    from threadpoolctl import threadpool_limits

    from stream.app import create_app
    from stream.replay import bootstrap_of
    from stream.topics import ensure_topics

    ensure_topics(bootstrap_of(settings.broker), settings.partitions)
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    # The cluster step's matrix products are small: BLAS threads only spun against the event loop
    # and the embed process for the two cores (the worker's CPU fell 13.6 -> 9.9 s per static burst).
    threadpool_limits(1, user_api="blas")
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=args.loglevel, quiet=True)
    # Faust's terminal spinner sets the root logger to DEBUG so that every debug record spins it:
    # every record aiokafka and Faust log per message was then built and handled (half of the
    # output producer's time per record). Without it the root logger stays at --loglevel.
    worker.spinner = None
    worker.execute_from_commandline()
    return 0


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    settings = _with_flags(settings, args)
    if not args.file.is_file():
        _fail(f"no such file: {args.file} (give a JSON-lines file of articles)")
    if not settings.broker:
        _fail("no broker: pass --broker kafka://host:port or set STORYWIRE_BROKER")
    for flag in ("rate", "speed"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            _fail(f"--{flag} must be a positive number, got {value}")
    from stream.replay import replay

    summary = replay(args.file, settings.broker, rate=args.rate, speed=args.speed)
    print(
        json.dumps(
            {
                "sent": summary.sent,
                "invalid": summary.invalid,
                "failed": summary.failed,
                "seconds": round(summary.seconds, 3),
                "per_second": round(summary.rate, 1),
            }
        )
    )
    return 1 if summary.failed else 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from stream.settings import SAMPLE_STREAM

    settings = _with_flags(settings, args)
    source = args.input or SAMPLE_STREAM
    if not source.is_file():
        _fail(f"no such file: {source} (give --input a JSON-lines file of articles)")
    if (args.json or args.assignments or args.deadletters) and not args.until_idle:
        _fail("--json, --assignments and --deadletters need --until-idle (a live demo has no end to summarise)")
    if args.webhook:
        if len(args.webhook_secret) != len(args.webhook):
            _fail("give one --webhook-secret per --webhook (in the same order)")
        hooks = [{"url": u, "secret": k} for u, k in zip(args.webhook, args.webhook_secret)]
        try:
            from stream.webhooks import WebhookEndpoint

            WebhookEndpoint.parse_list(json.dumps(hooks))
        except ValueError as exc:
            _fail(str(exc))
        settings = settings.model_copy(update={"webhooks": json.dumps(hooks)})
    from stream.demo import run_demo

    try:
        return run_demo(settings, source, args.until_idle, args.json, args.assignments, args.timeout, args.deadletters)
    except KeyboardInterrupt:
        sys.stderr.write("storywire: demo stopped\n")
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        _fail(f"bad setting STORYWIRE_{str(err['loc'][0]).upper()}: {err['msg']}")
    commands = {"evaluate": cmd_evaluate, "worker": cmd_worker, "replay": cmd_replay, "demo": cmd_demo}
    return commands[args.command](args, settings)


if __name__ == "__main__":
    raise SystemExit(main())

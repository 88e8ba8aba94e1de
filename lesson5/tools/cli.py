"""`python -m lesson5 <command>`: the lesson from the command line (README, quick start).

Each subcommand imports what it needs inside, so `lesson5 data` starts fast.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Callable

# Exit statuses of a run cut short, as a shell reports them: 128 + the signal's number.
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143


def seed(text: str) -> int:
    """A seed for NumPy and torch alike: a whole number from 0 to 2**32 - 1."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(
            f"{text} is not a seed: use a whole number from 0 to {2**32 - 1}"
        )
    return value


def positive_int(text: str) -> int:
    """A whole number of at least 1 (threads, users, seconds)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive whole number")
    return value


def _not_empty(fix: str) -> Callable[[str], str]:
    """An argument type refusing an empty path, which would silently mean the current folder."""

    def check(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"an empty path: give {fix}")
        return text

    return check


path = _not_empty("a folder or file name (or leave the option out)")
source = _not_empty("a zip, a folder or a ratings.csv, or 'synthetic'")


# Each command's own errors (DataError, CrosstabError, WorkbookError, RecalcError) reach `guarded`,
# which prints them as one line and exits 2.


def cmd_data(args: argparse.Namespace) -> int:
    """Fetch (or find) and verify the data, then print a summary."""
    from lesson5 import data, download

    print(data.summary(data.load(args.source, seed=42)))
    old = download.release_2016()
    if old is not None and args.source is None:
        print(f"2016 release found at {old} (the one the lesson was taught on)")
    return 0


def cmd_excel(args: argparse.Namespace) -> int:
    """Write the lesson's workbooks (`lesson5.excel.write_all`) into --out."""
    import time
    from pathlib import Path

    from lesson5 import excel

    out = Path(args.out)
    start = time.perf_counter()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"error: cannot create the output folder {out}: {e}", file=sys.stderr)
        return 2
    written = excel.write_all(out, source=args.source, top_n=args.top_n, seed=args.seed)
    print("\n".join(f"wrote {path}" for path in written))
    print(f"exported {len(written)} workbooks in {time.perf_counter() - start:.1f} s")
    if not args.check:
        return 0
    from lesson5.excel.recalc import find_problems, recalculate_many

    t0 = time.perf_counter()
    copies = recalculate_many(written, out / "recalculated")
    problems = [p for copy in copies for p in find_problems(copy)]
    print(
        f"LibreOffice recalculated {len(copies)} workbooks in {time.perf_counter() - t0:.1f} s "
        f"into {out / 'recalculated'}: {len(problems)} error values or empty results"
    )
    for p in problems[:20]:
        print(f"  {p}", file=sys.stderr)
    return 1 if problems else 0


def cmd_run(args: argparse.Namespace) -> int:
    """Execute every notebook in order in a fresh kernel; HTML copies, workbooks, figures, summary table."""
    import importlib.util
    from pathlib import Path

    from lesson5.tools import runner

    for name in ("papermill", "nbconvert", "ipykernel"):  # the `run` extra, not the lesson's
        if importlib.util.find_spec(name) is None:
            print(f"error: `lesson5 run` needs {name}: pip install 'lesson5[run]'", file=sys.stderr)
            return 1

    out = Path(args.out)
    for folder in (out, *out.parents):  # before the runner makes folders or deletes results
        if folder.exists() and not folder.is_dir():
            which = f"--out {args.out!r}" + ("" if folder == out else f": {folder}")
            print(
                f"error: {which} is a file, not a folder; give a folder "
                f"(it is created if missing), e.g. --out build/lesson",
                file=sys.stderr,
            )
            return 2
    return runner.main(args)


def cmd_doctor(args: argparse.Namespace) -> int:
    """One line per requirement of the lesson, OK or FAIL; 1 if any failed."""
    from lesson5 import doctor

    return doctor.main()


class Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line naming it and its value (no usage block), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The `lesson5` command line: data, excel, run, doctor."""
    parser = Parser(prog="lesson5", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    data_help = "a zip, folder or ratings.csv, or 'synthetic' (default: the cached download)"

    p = sub.add_parser("data", help="fetch/verify MovieLens and print a summary")
    p.add_argument("--source", type=source, help=data_help)
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("excel", help="write the lesson's Excel workbooks into a folder")
    p.add_argument("--out", type=path, required=True, help="output folder (created if missing)")
    p.add_argument("--source", type=source, help=data_help)
    p.add_argument("--top-n", type=positive_int, default=15, help="users, movies (%(default)s)")
    p.add_argument("--seed", type=seed, default=42, help="factors' seed (%(default)s)")
    p.add_argument("--check", action="store_true", help="recalculate in LibreOffice")
    p.set_defaults(func=cmd_excel)

    p = sub.add_parser("run", help="run every notebook in order (the whole lesson)")
    p.add_argument("--out", type=path, default="build/lesson", help="output folder (%(default)s)")
    p.add_argument("--inplace", action="store_true", help="re-execute the committed notebooks")
    p.add_argument("--only", nargs="*", help="notebook name prefixes to run (e.g. 00 03)")
    p.add_argument("--timeout", type=positive_int, default=1800, help="s per cell (%(default)s)")
    p.add_argument("--jobs", type=positive_int, default=2, help="notebooks at once (%(default)s)")
    p.add_argument("--data", type=source, metavar="SOURCE", help=data_help)
    p.add_argument("--notebooks", type=path, metavar="DIR", help="folder of NN_*.ipynb")
    p.add_argument(
        "--no-workbooks", dest="workbooks", action="store_false", help="skip the Excel workbooks"
    )
    p.set_defaults(func=cmd_run)

    doctor_help = "check Python, torch, the dependencies, the data and the cache"
    sub.add_parser("doctor", help=doctor_help).set_defaults(func=cmd_doctor)
    return parser


class Terminated(BaseException):
    """SIGTERM, raised like Ctrl-C so that every `finally` and atomic write cleans up on the way out."""


def _raise_terminated(signum, frame):
    raise Terminated


def guarded(run: Callable[[], int]) -> int:
    """Run a command; Ctrl-C (130), SIGTERM (143), lesson5's and file errors (2) end in one line."""
    previous = None
    with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return run()
    except KeyboardInterrupt:
        print("lesson5: interrupted (Ctrl-C); nothing half-written was left", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print("lesson5: terminated (SIGTERM); nothing half-written was left", file=sys.stderr)
        return EXIT_TERMINATED
    except (ValueError, OSError, RuntimeError) as e:
        # The package's own errors (DataError, DeviceError, ...) carry a message meant for the user.
        if not (isinstance(e, OSError) or type(e).__module__.partition(".")[0] == "lesson5"):
            raise
        print(f"error: {str(e).replace(chr(10), ' ')}", file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m lesson5` and the `lesson5` console script."""
    for stream in (sys.stdout, sys.stderr):
        # A console or pipe that is not UTF-8 (Windows' cp1252 when redirected) cannot encode
        # every title: a character it lacks prints as '?' instead of ending the command.
        if hasattr(stream, "reconfigure") and stream.errors == "strict":
            stream.reconfigure(errors="replace")
    args = build_parser().parse_args(argv)
    return guarded(lambda: args.func(args))

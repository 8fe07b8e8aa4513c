"""Section `report`: one JSON run report at exit."""

from shim.config.option import STR, Option

SECTION = "report"

OPTIONS = (
    Option("report", ["--report"], "report.target", STR, None,
           "at exit, write the run report (JSON) to PATH or POST it to an http(s) URL",
           metavar="PATH_OR_URL"),
)

"""Section `results`: the result record and the termination message."""

from shim.config.option import PATH, Option

SECTION = "results"

OPTIONS = (
    Option("result_file", ["--result-file"], "results.file", PATH, None,
           "write the JSON result record to PATH (atomically)", metavar="PATH"),
    Option("termination_path", ["--termination-path"], "results.termination_path", PATH, None,
           "write the record, capped at 4096 bytes, for Kubernetes' terminationMessagePath",
           metavar="PATH"),
    Option("results_dir", ["--results-dir"], "results.dir", PATH, None,
           "include each file of DIR as a named result in the record", metavar="DIR"),
)

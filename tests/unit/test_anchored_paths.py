"""Issue 22: the resident shim moves to "/" once the delegate runs, so every relative path
in the settings is anchored to the start directory first (files it writes or re-reads later:
post/result/cancel files, tee files, secret files and dirs, template sources and
destinations, secret items); references and absolute paths are left alone."""

from shim.config import options


def test_relative_paths_are_anchored_to_the_start_directory():
    c = options.resolve([
        "--post-file", "done", "--result-file", "/abs/r.json", "--cancel-file", "c/x",
        "--stdout-path", "out.log", "--secret-file", "s/token=ref+env://A",
        "--secret-dir", "/run/s=ref+env://B", "--template", "a.tpl=conf/app.conf",
        "--template", "ref+file:///etc/x=/etc/y",
        "--secret-items", '[{"ref": "ref+env://C", "file": "c.txt"}, {"ref": "ref+env://D", "env": "D"}]',
        "--report", "report.json",
        "--", "true"], {})
    a = options.anchored(c, "/start")
    assert a.steps.post_file == "/start/done" and a.results.file == "/abs/r.json"
    assert a.steps.cancel_file == "/start/c/x" and a.logs.stdout_path == "/start/out.log"
    assert a.secrets.files == {"/start/s/token": "ref+env://A"}
    assert a.secrets.dirs == {"/run/s": "ref+env://B"}
    assert [(t["source"], t["destination"]) for t in a.value("template")] == [
        ("/start/a.tpl", "/start/conf/app.conf"), ("ref+file:///etc/x", "/etc/y")]
    assert a.secrets.items == [{"ref": "ref+env://C", "file": "/start/c.txt"},
                               {"ref": "ref+env://D", "env": "D"}]
    assert a.report.target == "/start/report.json"
    assert a.command == c.command and a.sources == c.sources

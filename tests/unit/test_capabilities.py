"""The capability registry (shim/config/capabilities.py) is the one list: every option has
exactly one home, the exec/supervise decision, the services, --help and the README's list
of resident options all come from it."""

import re
from pathlib import Path

import pytest

from shim.config import capabilities, options
from shim.config.capabilities import CAPABILITIES, MOST_USED, resident_options, service_options
from shim.run import pipeline, services

REPO = Path(__file__).resolve().parents[2]


def test_every_option_belongs_to_exactly_one_capability():
    homes = {}
    for cap in CAPABILITIES:
        for name in cap.options:
            assert name in options.BY_NAME, f"{cap.name}: unknown option {name}"
            homes.setdefault(name, []).append(cap.name)
    assert {n: h for n, h in homes.items() if len(h) > 1} == {}
    assert sorted(set(options.BY_NAME) - set(homes)) == []


def test_enabling_options_are_options_of_their_capability():
    for cap in CAPABILITIES:
        assert set(cap.enabled_by) <= set(cap.options), cap.name
        assert cap.phase in ("start", "beside", "after"), cap.name
        if cap.service:
            assert cap.phase in ("beside", "after") and cap.resident, cap.name


def test_every_capability_names_a_module_that_exists():
    for cap in CAPABILITIES:
        assert cap.module and cap.module.startswith("shim."), cap.name
        base = REPO / cap.module.replace(".", "/")
        assert base.with_suffix(".py").is_file() or (base / "__init__.py").is_file(), cap.module


def test_the_pipeline_and_the_services_read_the_registry():
    assert pipeline.RESIDENT_FEATURES == resident_options()
    # Every option that starts a service keeps shim resident, and is a resident option.
    assert set(service_options()) <= set(resident_options())


@pytest.mark.parametrize("name", service_options())
def test_each_service_option_turns_services_on(name):
    opt = options.BY_NAME[name]
    raw = {"stdout_path": "/tmp/o", "stderr_path": "/tmp/e", "mask_env": "X", "log_sink": "file:///tmp/s",
           "statsd_gateway": "udp://127.0.0.1:8125", "heartbeat": "http://127.0.0.1:1/h",
           "status_url": "http://127.0.0.1:1/s", "stdin_from": "tcp://127.0.0.1:1",
           "stdout_to": "tcp://127.0.0.1:1", "stderr_to": "tcp://127.0.0.1:1",
           "report": "/tmp/report.json"}[name]
    config = options.resolve([opt.flags[0], raw, "--", "true"], {})
    assert services.wanted(config)
    assert opt.flags[0] in " ".join(pipeline.resident_reasons(config, is_pid1=False))


def test_nothing_configured_wants_no_service_and_can_exec():
    config = options.resolve(["--", "true"], {})
    assert not services.wanted(config)
    assert pipeline.resident_reasons(config, is_pid1=False) == []


def test_readme_lists_exactly_the_registrys_resident_options():
    readme = (REPO / "README.md").read_text()
    block = re.search(r"<!-- resident-options.*?-->(.*?)<!-- /resident-options -->", readme, re.S)
    assert block, "README lost its resident-options block"
    text = " ".join(block.group(1).split())
    listed = re.findall(r"([a-z][a-z ]*?) \(((?:`--[a-z-]+`(?:, )?)+)\)", text)
    found = {name.strip().split("; ")[-1]: re.findall(r"`(--[a-z-]+)`", flags) for name, flags in listed}
    want = {}
    resident = set(resident_options())
    for cap in CAPABILITIES:
        flags = [options.BY_NAME[n].flags[0] for n in cap.enabled_by if n in resident]
        if flags:
            want[cap.name] = flags
    assert found == want


def test_help_shows_the_most_used_options_and_every_capability():
    text = options.render_help()
    for name in MOST_USED:
        assert options.BY_NAME[name].flags[0] in text
    for cap in CAPABILITIES:
        assert f"  {cap.name}" in text and cap.summary in text
    assert "--help-all" in text
    # Short: the most used options only, not all of them.
    assert "--sagemaker-network-interface" not in text


def test_help_all_lists_every_option_once_under_its_capability():
    text = options.render_help(full=True)
    for cap in CAPABILITIES:
        assert f"\n{cap.name}: {cap.summary}\n" in text
    for opt in options.OPTIONS:
        assert len(re.findall(rf"env {opt.env}\b", text)) == 1, opt.env
    # Grouped: each option comes after its capability's heading and before the next one's.
    order = [text.index(f"\n{cap.name}: ") for cap in CAPABILITIES]
    assert order == sorted(order)
    for opt in options.OPTIONS:
        cap = capabilities.owner(opt.name)
        i = CAPABILITIES.index(cap)
        where = re.search(rf"env {opt.env}\b", text).start()
        assert order[i] < where < (order[i + 1] if i + 1 < len(order) else len(text)), opt.name


def test_help_names_every_exit_code():
    from shim import errors

    text = " ".join(options.render_help().split())
    for reason, code in errors.REASON_CODES.items():
        assert f"{code} {reason}" in text


def test_help_all_is_a_flag_of_the_run_command():
    with pytest.raises(options.HelpRequested) as asked:
        options.resolve(["--help-all"], {})
    assert asked.value.full
    with pytest.raises(options.HelpRequested) as asked:
        options.resolve(["--help"], {})
    assert not asked.value.full

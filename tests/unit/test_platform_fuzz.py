"""Fuzzing the platform code: any environment decides some runtime; any payload either
lands whole or fails with one ShimError line and nothing written."""

import json
import os
import tempfile

from hypothesis import given, settings, strategies as st

from shim.errors import ShimError
from shim.platform import detect, sagemaker
from shim.sources import targets

SCALE = int(os.environ.get("SHIM_FUZZ_SCALE", "1"))  # `scripts/test explore` raises it

MARKER_NAMES = sorted({arg for _, any_of, all_of in detect.RULES for kind, arg in any_of + all_of
                       if kind in (detect.ENV, detect.NOT_ENV)} | {"PATH", "X"})
MARKER_FILES = sorted({arg for _, any_of, all_of in detect.RULES for kind, arg in any_of + all_of
                       if kind in (detect.FILE, detect.DIR)})


class Files:
    def __init__(self, present):
        self.present = present

    def exists(self, path):
        return path in self.present

    isdir = exists


# Values carry a mark no evidence text has, so "never a value" can be checked by search.
values = st.one_of(st.just(""), st.text(max_size=4).map(lambda t: "\u00a7" + t))


@settings(max_examples=200 * SCALE, deadline=None)
@given(st.dictionaries(st.sampled_from(MARKER_NAMES), values, max_size=8),
       st.sets(st.sampled_from(MARKER_FILES)), st.one_of(st.none(), st.sampled_from(["train", "serve", "x"])))
def test_any_environment_decides_one_known_runtime(environ, files, word):
    first = detect.detect(environ, Files(files), word)
    assert first.runtime in detect.RUNTIMES and first.evidence
    assert first.runtime not in first.also
    again = detect.detect(dict(environ), Files(set(files)), word)
    assert again.as_dict() == first.as_dict()  # a pure function
    assert "\u00a7" not in json.dumps(first.as_dict(), ensure_ascii=False)  # names, never values


keys = st.text(min_size=0, max_size=12)


@settings(max_examples=60 * SCALE, deadline=None)
@given(st.dictionaries(keys, st.binary(max_size=16), max_size=5))
def test_write_dir_whole_or_nothing(payload):
    with tempfile.TemporaryDirectory() as tmp:
        target = os.path.join(tmp, "d")
        try:
            targets.write_dir(target, payload)
        except ShimError as err:
            assert "\n" not in err.message()
            assert not os.path.exists(target)
            return
        for key, data in payload.items():
            with open(os.path.join(target, key), "rb") as f:
                assert f.read() == data


@settings(max_examples=200 * SCALE, deadline=None)
@given(st.text(max_size=6), st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=6))
def test_hyperparameter_env_names_are_valid_or_one_error(prefix, hyperparameters):
    try:
        env = sagemaker.hyperparameter_env(prefix, hyperparameters)
    except ShimError as err:
        assert "\n" not in err.message()
        return
    for name in env:
        assert name and (name[0].isalpha() or name[0] == "_") and all(c.isalnum() or c == "_" for c in name)
        assert name.isascii()

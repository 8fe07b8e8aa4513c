"""The mask engine under random value sets and random output splits: no value leaks, every
other byte passes through exactly, the result does not depend on how the output was cut,
and the work (automaton steps and bytes pre-checked, counted, not timed) is linear in the
output whatever the values are."""

import os

from hypothesis import given, settings, strategies as st

from shim.util.mask import MASK, Masker

SCALE = int(os.environ.get("SHIM_FUZZ_SCALE", "1"))


def examples(n):
    return settings(max_examples=n * SCALE, deadline=None)


def oracle(data, values):
    """Every byte of every occurrence (overlapping ones too) masked; overlapping
    occurrences form one ***; found by plain search, one value at a time."""
    spans = []
    for v in values:
        i = data.find(v)
        while i >= 0:
            spans.append((i, i + len(v) - 1))
            i = data.find(v, i + 1)
    groups = []
    for start, end in sorted(spans):
        if groups and start <= groups[-1][1]:
            groups[-1][1] = max(groups[-1][1], end)
        else:
            groups.append([start, end])
    out, cursor = bytearray(), 0
    for start, end in groups:
        out += data[cursor:start] + MASK
        cursor = end + 1
    return bytes(out + data[cursor:])


# Small alphabets make overlaps, shared prefixes and near misses common.
ALPHABETS = st.sampled_from([b"ab", b"abc\n", b"ab*", bytes(range(256))])


@st.composite
def case(draw):
    alphabet = draw(ALPHABETS)
    byte = st.sampled_from(alphabet)
    values = draw(st.lists(st.binary(min_size=2, max_size=12).map(
        lambda b: bytes(alphabet[c % len(alphabet)] for c in b)), min_size=1, max_size=25))
    data = bytes(draw(st.lists(byte, max_size=400)))
    # Embed some values so they occur (randomly split later).
    for v in draw(st.lists(st.sampled_from(values), max_size=6)):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + v + data[at:]
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=30)))
    flushes = draw(st.booleans())
    return values, data, cuts, flushes


@examples(400)
@given(case())
def test_nothing_leaks_the_rest_is_exact_and_splits_do_not_matter(c):
    values, data, cuts, _ = c
    m = Masker()
    for v in values:
        m.add_secret(v)
    registered = list(m._pieces)
    want = oracle(data, registered)
    s, out, last = m.stream(), b"", 0
    for cut in cuts + [len(data)]:
        out += s.feed(data[last:cut])
        last = cut
        assert len(s.carry) <= max(map(len, registered), default=0)  # bounded memory
    out += s.flush()
    assert out == want
    assert out == m.scrub(data)
    # Linear: each byte is one step, failure links are paid for by earlier steps.
    assert s.work <= 2 * len(data) and s.scanned <= (len(registered) + 1) * len(data) * 2


@examples(200)
@given(case())
def test_flushes_between_writes_never_show_a_whole_value(c):
    """--mask-delay may release a held prefix; the rest of that value is still masked."""
    values, data, cuts, _ = c
    m = Masker()
    for v in values:
        m.add_secret(v)
    s, out, last = m.stream(), b"", 0
    for cut in cuts + [len(data)]:
        out += s.feed(data[last:cut]) + s.flush()
        last = cut
    for v in m._pieces:
        if b"*" not in v:  # a value with '*' can be made by *** and what follows it
            assert v not in out


@examples(30)
@given(st.integers(1, 3000), st.integers(1, 64))
def test_work_does_not_grow_with_the_number_or_length_of_values(n, chunk):
    # Values that share long prefixes with the output: the worst case of naive matching.
    m = Masker()
    for i in range(n):
        m.add_secret(b"a" * 40 + str(i).encode() + b"z")
    data = (b"a" * 45 + b"1z " + b"a" * 39 + b"b") * 20
    s = m.stream()
    for i in range(0, len(data), chunk):
        s.feed(data[i:i + chunk])
    s.flush()
    assert s.work <= 2 * len(data)


@examples(200)
@given(case())
def test_messages_scrubbed_before_the_build_match_the_automaton(c):
    """A message scrubbed while the automaton is not built (plain search) reads the same."""
    from shim.util.mask import scrub_plain
    values, data, _, _ = c
    m = Masker()
    for v in values:
        m.add_secret(v)
    assert scrub_plain(data, list(m._pieces)) == oracle(data, list(m._pieces)) == m.scrub(data)

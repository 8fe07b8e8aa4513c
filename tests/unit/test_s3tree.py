"""The S3 channel walk over fake list/get ports: pagination, folder markers, XML escapes."""

import pytest

from shim.errors import ShimError
from shim.platform import s3tree


def page(keys, token=None):
    body = "<ListBucketResult>" + "".join(f"<Contents><Key>{k}</Key></Contents>" for k in keys)
    body += f"<IsTruncated>{'true' if token else 'false'}</IsTruncated>"
    if token:
        body += f"<NextContinuationToken>{token}</NextContinuationToken>"
    return (body + "</ListBucketResult>").encode()


class FakeBucket:
    """Serves ListObjectsV2 pages of `size` keys; records every query and every get."""

    def __init__(self, keys, size=2):
        self.keys, self.size, self.queries, self.gets = keys, size, [], []

    def list_page(self, query):
        self.queries.append(dict(query))
        start = int(query.get("continuation-token", "0"))
        chunk = [k for k in self.keys if k.startswith(query["prefix"])][start:start + self.size]
        more = start + self.size < len([k for k in self.keys if k.startswith(query["prefix"])])
        return page([k.replace("&", "&amp;") for k in chunk], str(start + self.size) if more else None)

    def get(self, key):
        self.gets.append(key)
        return key.encode()


def test_walk_pages_through_the_prefix():
    bucket = FakeBucket(["train/", "train/a.csv", "train/sub/b&c.csv", "train/z", "train2/x", "other"])
    items = list(s3tree.walk(bucket.list_page, bucket.get, "train/"))
    assert items == [("a.csv", b"train/a.csv"), ("sub/b&c.csv", b"train/sub/b&c.csv"), ("z", b"train/z")]
    assert [q.get("continuation-token") for q in bucket.queries] == [None, "2"]
    assert all(q["list-type"] == "2" and q["prefix"] == "train/" for q in bucket.queries)
    assert "train/" not in bucket.gets  # a folder marker holds no data


def test_truncated_listing_without_a_token_is_an_error():
    with pytest.raises(ValueError):
        list(s3tree.walk(lambda q: page(["p/a"], token=None).replace(b"false", b"true"), lambda k: b"", "p/"))


def test_without_the_sources_layer_s3_is_one_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_sources(name, *args, **kw):
        if name.startswith("shim.sources.aws") or name == "shim.net.http":
            raise ImportError(name)
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_sources)
    with pytest.raises(ShimError) as caught:
        s3tree.tree("ref+s3://bucket/train/", {})
    assert "this build has no S3 source" in caught.value.message()


@pytest.mark.parametrize("ref,expected", [
    ("ref+s3://ml-data/", ("ml-data", "", None)),
    ("ref+s3://ml-data", ("ml-data", "", None)),
    ("ref+s3://ml-data/train", ("ml-data", "train/", None)),
    ("ref+s3://ml-data/a/b/?region=eu-west-1", ("ml-data", "a/b/", "eu-west-1")),
])
def test_channel_references(ref, expected):
    assert s3tree._parse(ref) == expected


@pytest.mark.parametrize("ref", ["ref+s3://", "ref+s3://B/x/", "ref+s3://ml/x#/k", "ref+s3://ml-data/?version_id=1"])
def test_bad_channel_references(ref):
    with pytest.raises(ShimError) as caught:
        s3tree._parse(ref)
    assert "expected ref+s3://BUCKET/PREFIX/" in caught.value.message()


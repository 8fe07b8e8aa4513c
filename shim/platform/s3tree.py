"""An S3 prefix as a SageMaker channel: ListObjectsV2 page by page, then GetObject per key.

`walk` is the policy over two ports (one list page, one object) so it is tested without a
server; `tree` wires it to the sources layer's signed S3 calls (shim.sources.aws: SigV4,
the credential chain, AWS_ENDPOINT_URL_S3), imported only when a channel names S3.
"""

import re

from shim.errors import REASON_SETUP, ShimError

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Callable, Iterator, Mapping

MAX_PAGES = 10000  # 10 million keys: a listing that never ends is a server bug, not a channel


def walk(list_page: "Callable[[dict[str, str]], bytes]", get: "Callable[[str], bytes]",
         prefix: str) -> "Iterator[tuple[str, bytes]]":
    """(path relative to `prefix`, bytes) of every object under `prefix` (a "directory"),
    fetched one at a time after the whole listing.

    list_page(query dict) -> the ListObjectsV2 XML body; get(key) -> the object's bytes.
    Keys ending in "/" are the console's folder markers and hold no data.
    """
    keys, token = [], None
    for _ in range(MAX_PAGES):
        query = {"list-type": "2", "prefix": prefix}
        if token:
            query["continuation-token"] = token
        body = list_page(query)
        keys += [_text(k) for k in re.findall(rb"<Key>(.*?)</Key>", body, re.DOTALL)]
        if _field(body, "IsTruncated") != "true":
            break
        token = _field(body, "NextContinuationToken")
        if not token:
            raise ValueError("a truncated listing without NextContinuationToken")
    else:
        raise ValueError(f"more than {MAX_PAGES} pages")
    for key in keys:
        if key.startswith(prefix) and not key.endswith("/"):
            yield key[len(prefix):], get(key)  # one object at a time: a channel is never all in memory


def tree(ref_text: str, environ: "Mapping[str, str]") -> "Iterator[tuple[str, bytes]]":
    """The channel's files for `ref+s3://bucket/prefix/` (a missing trailing / is implied),
    one at a time; every failure, also a late one, is one ShimError naming the channel.
    A build without the sources layer and a malformed reference fail here, at once."""
    try:
        from shim.net.http import Client
        from shim.sources.aws import api, s3
        from shim.sources.aws.sigv4 import aws_quote
        from shim.sources.base import Context, SourceError
    except ImportError:
        raise ShimError("fetch", ref_text, "this build has no S3 source",
                        "use a ref+file:// channel, or a shim build that has the secret sources",
                        reason=REASON_SETUP) from None
    bucket, prefix, region = _parse(ref_text)
    ctx = Context(environ, Client(env=environ))

    def objects() -> "Iterator[tuple[str, bytes]]":
        try:
            where = region or api.region_for(None, environ)
            base, custom = api.endpoint_for("s3", where, environ)
            # The bucket's URL as s3.get_object builds an object's: path style on custom endpoints.
            if custom or "." in bucket:
                bucket_url = f"{base}/{aws_quote(bucket)}"
            else:
                scheme, _, host = base.partition("://")
                bucket_url = f"{scheme}://{bucket}.{host}"

            def list_page(query: "dict[str, str]") -> bytes:
                qs = "&".join(f"{aws_quote(k)}={aws_quote(v)}" for k, v in sorted(query.items()))
                resp = api.signed_request(ctx, "s3", where, "GET", f"{bucket_url}/?{qs}", [], b"", s3=True)
                if not resp.ok:
                    raise api.error_from(resp)
                return resp.body

            yield from walk(list_page, lambda key: s3.get_object(ctx, bucket, key, where), prefix)
        except (SourceError, ValueError) as err:
            raise ShimError("fetch", f"channel {ref_text}", f"aws-s3: {getattr(err, 'cause', err)}",
                            "check the bucket, the prefix and the credentials", reason=REASON_SETUP) from None

    return objects()


def _parse(ref_text):
    """(bucket, prefix ending in "/" or "", ?region=) of ref+s3://BUCKET[/PREFIX/][?region=R].

    Parsed here rather than by the ref+ parser: a channel may be a whole bucket, which names
    no object, and a fragment means nothing for a directory.
    """
    from urllib.parse import parse_qsl, unquote

    body, _, query = ref_text[len("ref+s3://"):].partition("?")
    bucket, _, prefix = body.partition("/")
    params = dict(parse_qsl(query, keep_blank_values=True))
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket) or "#" in ref_text or set(params) - {"region"}:
        raise ShimError("parse", f"channel {ref_text}",
                        "expected ref+s3://BUCKET/PREFIX/ (only ?region=, no #fragment)",
                        "write ref+s3://BUCKET/PREFIX/")
    prefix = unquote(prefix)
    return bucket, prefix if not prefix or prefix.endswith("/") else prefix + "/", params.get("region")


def _field(body, name):
    # A regex, not an XML parser: why in shim.sources.aws.api.xml_field.
    match = re.search(rf"<{name}>(.*?)</{name}>".encode(), body, re.DOTALL)
    return _text(match.group(1)).strip() if match else ""


def _text(raw):
    # Not xml.sax.saxutils: it imports urllib.request (getpass, termios) into the binary.
    from shim.sources.aws.api import xml_unescape

    return xml_unescape(raw.decode("utf-8", "replace"))

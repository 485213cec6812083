"""Where each party writes in a bucket store: a bucket and a key prefix.

The seed keeps updates in one bucket per participant, with access shared between parties.
A :class:`BucketLocation` is that place (``s3://zkadapt-alice/`` or, with a prefix,
``s3://shared/alice/``); a party writes only under its own and reads the others'. The
names follow the S3 rules (which Storj and SeaweedFS also apply), checked here once, so a
bad bucket name is a config error instead of a failed upload in round 3.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from zkadapt.storage.local import validate_key

#: The placeholder of ``storage.bucket``, ``prefix``, ``profile`` and ``read_profile``.
PARTY_FIELD = "party"
#: ``storage.read_profile`` may also name the party whose bucket is read.
OWNER_FIELD = "owner"

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IPV4 = re.compile(r"\d+\.\d+\.\d+\.\d+")


def bucket_name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid S3/Storj bucket name, or None if it is."""
    if not _BUCKET.fullmatch(name):
        return (
            f"bucket name {name!r} must be 3-63 characters of lowercase letters, digits, '.' "
            "and '-', starting and ending with a letter or digit"
        )
    if ".." in name or _IPV4.fullmatch(name):
        return f"bucket name {name!r} must not contain '..' or look like an IP address"
    return None


def template_fields(template: str) -> set[str]:
    """The placeholders in ``template`` (ValueError if it is not a valid template)."""
    return {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}


def template_problem(template: str, allowed: tuple[str, ...] = (PARTY_FIELD,)) -> str | None:
    """Why ``template`` is not a valid template over ``allowed`` placeholders, or None."""
    try:
        fields = template_fields(template)
    except ValueError as exc:
        return f"not a valid template: {exc}"
    bad = sorted(fields - set(allowed))
    if bad:
        names = " and ".join("{" + a + "}" for a in allowed)
        return f"only the placeholder(s) {names} are allowed, found {{{bad[0]}}}"
    return None


def fill(template: str, party: str, owner: str = "") -> str:
    """``template`` with ``{party}`` (and ``{owner}``) filled in (see template_problem)."""
    return template.format_map({PARTY_FIELD: party, OWNER_FIELD: owner})


def normalize_prefix(prefix: str) -> str:
    """``""`` or ``"a/b/"``: a safe key prefix that ends with a slash.

    Raises:
        ValueError: the prefix has an unsafe segment (``..``, empty, hidden).
    """
    prefix = prefix.strip("/")
    if not prefix:
        return ""
    validate_key(prefix)
    return prefix + "/"


@dataclass(frozen=True)
class BucketLocation:
    """A party's place in a bucket store.

    Attributes:
        scheme: URI scheme with separator, ``"s3://"`` or ``"sj://"``.
        bucket: the bucket name.
        prefix: ``""`` or a key prefix ending in ``/``.
    """

    scheme: str
    bucket: str
    prefix: str = ""

    @property
    def uri(self) -> str:
        """The URI prefix of every object here, e.g. ``s3://zkadapt-alice/``."""
        return f"{self.scheme}{self.bucket}/{self.prefix}"

    def object_name(self, key: str) -> str:
        """The bucket-relative name of ``key`` (prefix + key; ValueError if unsafe)."""
        return self.prefix + validate_key(key)

    def contains(self, other: BucketLocation) -> bool:
        """Whether ``other`` lies inside this location (same place, or a sub-prefix)."""
        return (
            self.scheme == other.scheme
            and self.bucket == other.bucket
            and other.prefix.startswith(self.prefix)
        )


def split_uri(uri: str, scheme: str) -> tuple[str, str]:
    """``(bucket, name)`` of an object URI such as ``s3://bucket/zkadapt/x.bin``.

    Raises:
        ValueError: not this scheme, a bad bucket name, or an unsafe object name.
    """
    if not isinstance(uri, str) or not uri.startswith(scheme):
        raise ValueError(f"not a {scheme} URI")
    bucket, sep, name = uri[len(scheme) :].partition("/")
    problem = bucket_name_problem(bucket)
    if problem:
        raise ValueError(problem)
    if not sep:
        raise ValueError("the URI names no object")
    validate_key(name)
    return bucket, name


class PartyLocations(Mapping[str, BucketLocation]):
    """Every party's place: the session file's parties, and a newcomer's (a party that
    joined a running session, docs/membership.md) derived from its name by the storage
    templates when it is first asked for.

    A newcomer has a place only when the templates give it one of its own: ``derive`` fails
    (a bucket template without ``{party}`` and no prefix with it) or the place overlaps
    another party's, and the newcomer has none (``KeyError``): a store then reports "no
    storage location", which the round protocol turns into a rejection.
    """

    def __init__(
        self,
        listed: Mapping[str, BucketLocation],
        derive: Callable[[str], BucketLocation] | None = None,
    ) -> None:
        self._places = dict(listed)
        self._derive = derive

    def __getitem__(self, name: str) -> BucketLocation:
        if name in self._places:
            return self._places[name]
        if self._derive is None or not isinstance(name, str):
            raise KeyError(name)
        try:
            place = self._derive(name)
        except ValueError:
            raise KeyError(name) from None
        if any(place.contains(other) or other.contains(place) for other in self._places.values()):
            raise KeyError(name)  # someone else's place: never a newcomer's
        self._places[name] = place
        return place

    def __iter__(self) -> Iterator[str]:
        return iter(dict(self._places))

    def __len__(self) -> int:
        return len(self._places)

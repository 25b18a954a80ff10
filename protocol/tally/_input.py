"""The ``TallyInput`` interchange document: what a tally is computed from.

Replay (:mod:`protocol.state`) produces one of these for a complete record; outside verifiers
read and write the same JSON (docs/TALLY.md). :meth:`TallyInput.from_dict` is the only way in and
validates everything the engine relies on, raising :class:`~protocol.errors.TallyInputError`
with the path of the offending item (``ballots.m5.i9``, ``delegations[3].trustees``). Missing
policy keys take LiquidFeedback's defaults.

A city's input holds up to a million voters and rows, so validation has two paths: bulk checks
made of C-level passes (``map``, ``set``, ``str.isprintable`` over all ids joined) that accept
a valid document fast, and, whenever a bulk check fails, item-by-item checks that find and name
the offending item. Rows are kept per scope, truster → trustees: a truster has at most one row
per scope, and row order carries no meaning.

Validation looks up every truster, trustee and ballot's voter anyway, to check that they are
voters. The bulk path makes those lookups in a table from voter id to *number* (the position in
sorted id order) and keeps what they return: a validated input carries its :class:`Numbering`,
the form the engine works on, so no id is looked up twice. An input built by the constructor
computes its numbering on first use.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain, compress, repeat
from operator import contains, itemgetter, ne
from typing import Any, NamedTuple

from protocol.errors import TallyInputError

__all__ = [
    "DEFEAT_STRENGTHS",
    "DELEGATION_RULES",
    "MAX_GRADE",
    "MAX_ID_LENGTH",
    "MAX_OPTIONS",
    "MAX_TOTAL_WEIGHT",
    "MAX_TRUSTEES",
    "MAX_VOTERS",
    "SCOPES",
    "TALLY_VERSION",
    "TIE_BREAKINGS",
    "Delegation",
    "Majority",
    "Policy",
    "TallyInput",
]

TALLY_VERSION = 1
#: Longest ranked trustee list a delegation row may carry (protocol constant).
MAX_TRUSTEES = 8
#: Most options (initiatives) one issue may have; the status quo comes on top.
MAX_OPTIONS = 32
#: Most voters in one tally.
MAX_VOTERS = 10_000_000
#: Longest voter or option id, in characters.
MAX_ID_LENGTH = 256
#: Largest absolute grade (LiquidFeedback stores grades as INT4).
MAX_GRADE = 2**31 - 1
#: Largest sum of all voter weights. LiquidFeedback counts votes in INT4 and packs a tuple defeat
#: strength as ``winning·2^31 − losing``, which is only an exact tuple below this bound.
MAX_TOTAL_WEIGHT = 2**31 - 1

#: Scopes from the broadest to the narrowest; a narrower row wins.
SCOPES = ("assembly", "area", "issue")
DELEGATION_RULES = ("dfd", "bfd", "minsum")
DEFEAT_STRENGTHS = ("tuple", "simple")
TIE_BREAKINGS = ("variant1", "variant2", "simple")

#: Scope → its position in SCOPES.
_SCOPE_CODES = {scope: code for code, scope in enumerate(SCOPES)}
_TOP_KEYS = frozenset({"version", "voters", "options", "delegations", "ballots", "policy"})
_ROW_KEYS = frozenset({"truster", "scope", "trustees"})
_MAJORITY_KEYS = frozenset({"num", "den", "strict", "positive", "non_negative"})
_POLICY_KEYS = frozenset(
    {
        "delegation_rule",
        "defeat_strength",
        "tie_breaking",
        "direct_majority",
        "indirect_majority",
        "no_reverse_beat_path",
        "no_multistage_majority",
    }
)


def _fail(where: str, message: str) -> TallyInputError:
    return TallyInputError(f"{where}: {message}")


def _check_id(value: Any, where: str) -> str:
    if type(value) is not str:
        raise _fail(where, f"must be a string, not {type(value).__name__}")
    if (
        not 0 < len(value) <= MAX_ID_LENGTH
        or not value.isascii()
        or not value.isprintable()
        or '"' in value
        or "\\" in value
    ):
        raise _fail(
            where,
            f"id {value[:40]!r} must be 1..{MAX_ID_LENGTH} printable ASCII characters"
            ' other than " and \\',
        )
    return value


def _check_int(value: Any, where: str, low: int, high: int) -> int:
    if type(value) is not int:  # bool is a subclass of int and is refused here
        raise _fail(where, f"must be an integer, not {type(value).__name__}")
    if not low <= value <= high:
        raise _fail(where, f"{value} is out of range {low}..{high}")
    return value


def _check_bool(value: Any, where: str) -> bool:
    if type(value) is not bool:
        raise _fail(where, f"must be true or false, not {type(value).__name__}")
    return value


def _check_choice(value: Any, where: str, choices: tuple[str, ...]) -> str:
    if type(value) is not str or value not in choices:
        raise _fail(where, f"unknown value {value!r} (expected one of {', '.join(choices)})")
    return value


def _check_keys(obj: Any, where: str, allowed: frozenset[str], required: frozenset[str]) -> None:
    if type(obj) is not dict:
        raise _fail(where, f"must be an object, not {type(obj).__name__}")
    extra = obj.keys() - allowed
    if extra:
        raise _fail(where, f"unknown key {sorted(map(str, extra))[0]!r}")
    missing = required - obj.keys()
    if missing:
        raise _fail(where, f"missing key {sorted(missing)[0]!r}")


@dataclass(frozen=True, slots=True)
class Majority:
    """A majority requirement, LiquidFeedback's ``*_majority_*`` policy columns.

    Met when ``for·den > num·(for + against)`` (``≥`` when not ``strict``), ``for ≥ positive`` and
    ``voter_count − against ≥ non_negative``.
    """

    num: int = 1
    den: int = 2
    strict: bool = True
    positive: int = 0
    non_negative: int = 0

    @classmethod
    def from_dict(cls, d: Any, where: str = "majority") -> Majority:
        """Parse a majority object; missing keys take the defaults. Raise TallyInputError."""
        _check_keys(d, where, _MAJORITY_KEYS, frozenset())
        return cls(
            num=_check_int(d.get("num", 1), f"{where}.num", 0, MAX_TOTAL_WEIGHT),
            den=_check_int(d.get("den", 2), f"{where}.den", 1, MAX_TOTAL_WEIGHT),
            strict=_check_bool(d.get("strict", True), f"{where}.strict"),
            positive=_check_int(d.get("positive", 0), f"{where}.positive", 0, MAX_TOTAL_WEIGHT),
            non_negative=_check_int(
                d.get("non_negative", 0), f"{where}.non_negative", 0, MAX_TOTAL_WEIGHT
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form, every key present."""
        return {
            "num": self.num,
            "den": self.den,
            "strict": self.strict,
            "positive": self.positive,
            "non_negative": self.non_negative,
        }

    def met(self, votes_for: int, votes_against: int, voter_count: int) -> bool:
        """Return whether ``votes_for`` against ``votes_against`` meets this requirement."""
        lhs = votes_for * self.den
        rhs = self.num * (votes_for + votes_against)
        ratio = lhs > rhs if self.strict else lhs >= rhs
        return (
            ratio
            and votes_for >= self.positive
            and voter_count - votes_against >= self.non_negative
        )


@dataclass(frozen=True, slots=True)
class Policy:
    """How an issue is counted. The defaults are LiquidFeedback's recommended settings."""

    delegation_rule: str = "bfd"
    defeat_strength: str = "tuple"
    tie_breaking: str = "variant1"
    direct_majority: Majority = field(default_factory=Majority)
    indirect_majority: Majority = field(default_factory=Majority)
    no_reverse_beat_path: bool = False
    no_multistage_majority: bool = False

    @classmethod
    def from_dict(cls, d: Any, where: str = "policy") -> Policy:
        """Parse a policy object; missing keys take the defaults. Raise TallyInputError."""
        _check_keys(d, where, _POLICY_KEYS, frozenset())
        policy = cls(
            delegation_rule=_check_choice(
                d.get("delegation_rule", "bfd"), f"{where}.delegation_rule", DELEGATION_RULES
            ),
            defeat_strength=_check_choice(
                d.get("defeat_strength", "tuple"), f"{where}.defeat_strength", DEFEAT_STRENGTHS
            ),
            tie_breaking=_check_choice(
                d.get("tie_breaking", "variant1"), f"{where}.tie_breaking", TIE_BREAKINGS
            ),
            direct_majority=Majority.from_dict(
                d.get("direct_majority", {}), f"{where}.direct_majority"
            ),
            indirect_majority=Majority.from_dict(
                d.get("indirect_majority", {}), f"{where}.indirect_majority"
            ),
            no_reverse_beat_path=_check_bool(
                d.get("no_reverse_beat_path", False), f"{where}.no_reverse_beat_path"
            ),
            no_multistage_majority=_check_bool(
                d.get("no_multistage_majority", False), f"{where}.no_multistage_majority"
            ),
        )
        if policy.no_reverse_beat_path and policy.defeat_strength != "tuple":
            # LiquidFeedback's CHECK no_reverse_beat_path_requires_tuple_defeat_strength: with
            # "simple" strengths a reverse beat path is undefined (NULL).
            raise _fail(f"{where}.no_reverse_beat_path", 'requires defeat_strength "tuple"')
        return policy

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form, every key present."""
        return {
            "delegation_rule": self.delegation_rule,
            "defeat_strength": self.defeat_strength,
            "tie_breaking": self.tie_breaking,
            "direct_majority": self.direct_majority.to_dict(),
            "indirect_majority": self.indirect_majority.to_dict(),
            "no_reverse_beat_path": self.no_reverse_beat_path,
            "no_multistage_majority": self.no_multistage_majority,
        }


class Delegation(NamedTuple):
    """One delegation row: ``truster`` trusts ``trustees`` (ranked; empty blocks) at ``scope``."""

    truster: str
    scope: str
    trustees: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {"truster": self.truster, "scope": self.scope, "trustees": list(self.trustees)}


Rows = dict[str, dict[str, tuple[str, ...]]]


def _empty_rows() -> Rows:
    return {s: {} for s in SCOPES}


#: Voter numbers, e.g. a row's trustees who are voters, in rank order.
Numbers = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Numbering:
    """An input's voters by number (their position in sorted id order), for the engine.

    ``trusters[scope]`` and ``trustees[scope]`` are aligned with the rows of
    ``delegations[scope]``, in its order; a row's trustees who are not voters are left out (the
    engine skips them, and leaving them out keeps the order of the others). ``casting`` holds
    the numbers of the ballots' voters, in the order of ``ballots``.
    """

    #: Every voter, in sorted order (the canonical key order).
    ids: list[str]
    #: Voter id → number.
    index: dict[str, int]
    trusters: dict[str, list[int]]
    trustees: dict[str, list[Numbers]]
    casting: list[int]


def _number_voters(voters: Mapping[str, int]) -> tuple[list[str], dict[str, int]]:
    """Return the sorted voter ids and the table from id to number."""
    ids = sorted(voters)  # linear when the document is canonical (sorted)
    # A copy of ``voters`` is made without hashing and holds the very key objects of ``ids``, so
    # overwriting its values with numbers is cheaper than inserting a million new keys.
    index = dict(voters)
    index.update(zip(ids, range(len(ids)), strict=True))
    return ids, index


def _numbered(index: Mapping[str, int], lists: Iterable[Iterable[str]]) -> list[Numbers]:
    """Each list of trustees by number, without the trustees who are not voters."""
    lists = list(lists)
    try:  # the usual case: every trustee votes
        return list(map(tuple, map(map, repeat(index.__getitem__), lists)))
    except KeyError:
        return [_voters_only(index, names) for names in lists]


def _voters_only(index: Mapping[str, int], names: Iterable[str]) -> Numbers:
    try:
        return tuple(map(index.__getitem__, names))  # the usual case: every trustee votes
    except KeyError:
        return tuple(t for t in map(index.get, names) if t is not None)


def _number_input(
    voters: Mapping[str, int],
    delegations: Mapping[str, Mapping[str, tuple[str, ...]]],
    ballots: Mapping[str, Mapping[str, int]],
) -> Numbering:
    """Number a valid input's voters, rows and ballots (for an input not built by from_dict)."""
    ids, index = _number_voters(voters)
    rows = {s: delegations.get(s, {}) for s in SCOPES}
    return Numbering(
        ids=ids,
        index=index,
        trusters={s: list(map(index.__getitem__, rows[s])) for s in SCOPES},
        trustees={s: _numbered(index, rows[s].values()) for s in SCOPES},
        casting=list(map(index.__getitem__, ballots)),
    )


# --- the item-by-item checks: complete, and they name the offending item ----------------------


def _check_voters(voters: Any) -> dict[str, int]:
    if type(voters) is not dict:
        raise _fail("voters", f"must be an object, not {type(voters).__name__}")
    if len(voters) > MAX_VOTERS:
        raise _fail("voters", f"{len(voters)} voters (at most {MAX_VOTERS})")
    total = 0
    for voter, weight in voters.items():
        _check_id(voter, "voters")
        if type(weight) is int and weight < 0:
            raise _fail(f"voters.{voter}", f"negative weight {weight}")
        total += _check_int(weight, f"voters.{voter}", 0, MAX_TOTAL_WEIGHT)
    if total > MAX_TOTAL_WEIGHT:
        raise _fail("voters", f"total weight {total} exceeds {MAX_TOTAL_WEIGHT}")
    return dict(voters)


def _check_rows(rows: Any, voters: Mapping[str, int]) -> Rows:
    if type(rows) is not list:
        raise _fail("delegations", f"must be an array, not {type(rows).__name__}")
    out = _empty_rows()
    for n, row in enumerate(rows):
        where = f"delegations[{n}]"
        _check_keys(row, where, _ROW_KEYS, _ROW_KEYS)
        truster = row["truster"]
        _check_id(truster, f"{where}.truster")
        if truster not in voters:
            raise _fail(f"{where}.truster", f"{truster!r} is not in voters")
        scope = _check_choice(row["scope"], f"{where}.scope", SCOPES)
        if truster in out[scope]:
            raise _fail(where, f"second {scope} row for truster {truster!r}")
        trustees = row["trustees"]
        if type(trustees) is not list:
            raise _fail(f"{where}.trustees", f"must be an array, not {type(trustees).__name__}")
        if len(trustees) > MAX_TRUSTEES:
            raise _fail(f"{where}.trustees", f"{len(trustees)} trustees (at most {MAX_TRUSTEES})")
        for k, trustee in enumerate(trustees):  # unknown trustees are skipped, but must be ids
            _check_id(trustee, f"{where}.trustees[{k}]")
        if truster in trustees:
            raise _fail(f"{where}.trustees", f"self-delegation by {truster!r}")
        if len(set(trustees)) != len(trustees):
            raise _fail(f"{where}.trustees", "a trustee is listed twice")
        out[scope][truster] = tuple(trustees)
    return out


def _check_ballots(
    ballots: Any, voters: Mapping[str, int], options: tuple[str, ...]
) -> dict[str, dict[str, int]]:
    if type(ballots) is not dict:
        raise _fail("ballots", f"must be an object, not {type(ballots).__name__}")
    option_set = frozenset(options)
    out: dict[str, dict[str, int]] = {}
    for voter, grades in ballots.items():
        _check_id(voter, "ballots")
        if voter not in voters:
            raise _fail(f"ballots.{voter}", "ballot by a voter who is not in voters")
        if type(grades) is not dict:
            raise _fail(f"ballots.{voter}", f"must be an object, not {type(grades).__name__}")
        for option, grade in grades.items():
            if option not in option_set:
                raise _fail(f"ballots.{voter}", f"unknown option {str(option)[:40]!r}")
            _check_int(grade, f"ballots.{voter}.{option}", -MAX_GRADE, MAX_GRADE)
        out[voter] = dict(grades)
    return out


# --- the bulk checks: the same rules in C-level passes, for city-sized documents --------------
#
# Each returns None as soon as anything is off; the caller then runs the item-by-item checks
# above, which raise the precise error (tests/protocol/test_tally_input.py checks that the bulk
# checks accept nothing that the item-by-item checks reject).


def _ids_ok(ids: Any) -> bool:
    ids = list(ids)
    if not ids:
        return True
    if set(map(type, ids)) != {str}:
        return False
    blob = "".join(ids)
    return (
        blob.isascii()
        and blob.isprintable()
        and '"' not in blob
        and "\\" not in blob
        and min(map(len, ids)) > 0
        and max(map(len, ids)) <= MAX_ID_LENGTH
    )


def _bulk_voters(voters: Any) -> dict[str, int] | None:
    if type(voters) is not dict or len(voters) > MAX_VOTERS or not _ids_ok(voters):
        return None
    weights = list(voters.values())
    if weights and (
        set(map(type, weights)) != {int} or min(weights) < 0 or sum(weights) > MAX_TOTAL_WEIGHT
    ):
        return None
    return dict(voters)


_TRUSTER = itemgetter("truster")
_SCOPE = itemgetter("scope")
_TRUSTEES = itemgetter("trustees")


class _NumberedRows(NamedTuple):
    rows: Rows
    trusters: dict[str, list[int]]  # aligned with ``rows``, as in Numbering
    trustees: dict[str, list[Numbers]]


def _bulk_rows(rows: Any, index: Mapping[str, int]) -> _NumberedRows | None:
    if type(rows) is not list:
        return None
    if not rows:
        return _NumberedRows(_empty_rows(), {s: [] for s in SCOPES}, {s: [] for s in SCOPES})
    if set(map(type, rows)) != {dict} or set(map(len, rows)) != {3}:
        return None
    number = index.__getitem__
    try:
        trusters = list(map(_TRUSTER, rows))
        # Decoded scopes are distinct strings: compare them once, then compare the small codes.
        codes = list(map(_SCOPE_CODES.get, map(_SCOPE, rows)))
        lists = list(map(_TRUSTEES, rows))
        numbers = list(map(number, trusters))  # KeyError: a truster who is not a voter
        if None in codes:
            return None
        if set(map(type, lists)) != {list} or max(map(len, lists)) > MAX_TRUSTEES:
            return None
        try:
            numbered = list(map(tuple, map(map, repeat(number), lists)))
            listed = numbered  # every trustee is a voter: compare numbers, not ids
        except KeyError:  # a trustee who is not a voter: skipped by the engine, but an id
            if not _ids_ok(set(chain.from_iterable(lists)).difference(index)):
                return None
            numbered = [_voters_only(index, names) for names in lists]
            listed = lists
    except (KeyError, TypeError):  # a missing key, or an unhashable truster, scope or trustee
        return None
    # Self-delegation, on numbers: a truster is a voter, so it is listed iff its number is.
    if any(map(contains, numbered, numbers)):
        return None
    long = [x for x in listed if len(x) > 1]
    if any(map(ne, map(len, map(set, long)), map(len, long))):  # a trustee listed twice
        return None
    out = _NumberedRows(_empty_rows(), {}, {})
    for code, scope in enumerate(SCOPES):
        mask = list(map(code.__eq__, codes))
        names = list(compress(trusters, mask))
        group = dict(zip(names, map(tuple, compress(lists, mask)), strict=True))
        if len(group) != len(names):  # two rows for one truster at one scope
            return None
        out.rows[scope] = group  # in row order, as the numbers below
        out.trusters[scope] = list(compress(numbers, mask))
        out.trustees[scope] = list(compress(numbered, mask))
    return out


class _NumberedBallots(NamedTuple):
    ballots: dict[str, dict[str, int]]
    casting: list[int]  # the voters' numbers, in the order of ``ballots``


def _bulk_ballots(
    ballots: Any, index: Mapping[str, int], options: tuple[str, ...]
) -> _NumberedBallots | None:
    if type(ballots) is not dict:
        return None
    try:
        casting = list(map(index.__getitem__, ballots))
    except KeyError:  # a ballot by a voter who is not in voters
        return None
    grades = list(ballots.values())
    if grades and set(map(type, grades)) != {dict}:
        return None
    if not set(chain.from_iterable(grades)) <= set(options):
        return None
    values = list(chain.from_iterable(map(dict.values, grades)))
    if values and (
        set(map(type, values)) != {int} or min(values) < -MAX_GRADE or max(values) > MAX_GRADE
    ):
        return None
    return _NumberedBallots(dict(zip(ballots, map(dict, grades), strict=True)), casting)


@dataclass(frozen=True, slots=True)
class TallyInput:
    """Everything a tally is a function of (docs/TALLY.md, "TallyInput").

    ``voters`` maps each member of the electorate to a weight; ``options`` are in their fixed
    order (the status quo is implicit); ``delegations`` maps each scope (assembly, area, issue)
    to its rows, truster → ranked trustees (an empty tuple blocks broader scopes); ``ballots`` map
    a voter to grades (a missing grade is 0). Build it with :meth:`from_dict`, which validates;
    the engine trusts a TallyInput to be valid. :meth:`numbering` gives the engine's form.
    """

    voters: Mapping[str, int]
    options: tuple[str, ...]
    delegations: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=_empty_rows)
    ballots: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    policy: Policy = field(default_factory=Policy)
    version: int = TALLY_VERSION
    #: Set by from_dict from the lookups it validates with; otherwise computed on first use.
    _numbering: Numbering | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: Any) -> TallyInput:
        """Validate a TallyInput JSON document and return it.

        Raises :class:`~protocol.errors.TallyInputError` naming the item for: wrong types,
        unknown keys, an unknown option in a ballot, a non-integer grade, a ballot or a truster
        not in ``voters``, two rows for one truster and scope, self-delegation, a trustee listed
        twice, a negative weight, an unknown policy value, duplicate options, and any size beyond
        the protocol constants (:data:`MAX_TRUSTEES`, :data:`MAX_OPTIONS`, ...). A trustee that
        is not in ``voters`` is not an error: the engine skips it.
        """
        _check_keys(d, "input", _TOP_KEYS, frozenset({"version", "voters", "options"}))
        version = d["version"]
        if type(version) is not int or version != TALLY_VERSION:
            raise _fail("version", f"unsupported version {version!r} (expected {TALLY_VERSION})")
        voters = _bulk_voters(d["voters"]) or _check_voters(d["voters"])
        options = d["options"]
        if type(options) is not list:
            raise _fail("options", f"must be an array, not {type(options).__name__}")
        if not 1 <= len(options) <= MAX_OPTIONS:
            raise _fail("options", f"{len(options)} options (expected 1..{MAX_OPTIONS})")
        for n, option in enumerate(options):
            _check_id(option, f"options[{n}]")
        if len(set(options)) != len(options):
            dup = next(o for n, o in enumerate(options) if o in options[:n])
            raise _fail("options", f"duplicate option {dup!r}")
        opts = tuple(options)
        rows = d.get("delegations", [])
        ballots = d.get("ballots", {})
        # The bulk checks look ids up in the numbering table, and keep the numbers.
        ids, index = _number_voters(voters)
        numbered_rows = _bulk_rows(rows, index)
        numbered_ballots = _bulk_ballots(ballots, index, opts)
        # A bulk check that fails leaves it to the item-by-item check to name the problem.
        delegations = _check_rows(rows, voters) if numbered_rows is None else numbered_rows.rows
        if numbered_ballots is None:
            checked = _check_ballots(ballots, voters, opts)
        else:
            checked = numbered_ballots.ballots
        inp = cls(
            voters=voters,
            options=opts,
            delegations=delegations,
            ballots=checked,
            policy=Policy.from_dict(d.get("policy", {})),
            version=version,
        )
        if numbered_rows is not None and numbered_ballots is not None:
            numbering = Numbering(
                ids=ids,
                index=index,
                trusters=numbered_rows.trusters,
                trustees=numbered_rows.trustees,
                casting=numbered_ballots.casting,
            )
            object.__setattr__(inp, "_numbering", numbering)
        return inp

    def numbering(self) -> Numbering:
        """Return the voters, rows and ballots by voter number (see :class:`Numbering`)."""
        if self._numbering is None:
            numbering = _number_input(self.voters, self.delegations, self.ballots)
            object.__setattr__(self, "_numbering", numbering)
            return numbering
        return self._numbering

    def rows(self) -> Iterator[Delegation]:
        """Yield the delegation rows, scope by scope (assembly, area, issue)."""
        for scope in SCOPES:
            for truster, trustees in self.delegations.get(scope, {}).items():
                yield Delegation(truster, scope, trustees)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form, with every policy key spelled out."""
        return {
            "version": self.version,
            "voters": dict(self.voters),
            "options": list(self.options),
            "delegations": [row.to_dict() for row in self.rows()],
            "ballots": {v: dict(g) for v, g in self.ballots.items()},
            "policy": self.policy.to_dict(),
        }

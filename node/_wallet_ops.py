"""The citizen wallet's online logic: build, sign and submit events, verify what the node answers.

:mod:`node._cli_wallet` and :mod:`node._cli_submit` are the thin click edge; everything here is
plain functions and small classes that take a :class:`~node.client.NodeClient`, the citizen's
key and a clock value, so tests can drive them directly.

* **Building.** :func:`parse_target`, :func:`parse_trustees` and :func:`parse_grades` turn
  command-line values into event bodies, with the protocol's bounds (``MAX_TRUSTEES``).
* **Submitting.** :func:`send_event` signs an event at the local chain head and posts it. A 409
  ``seq_used`` (the node names its chain head) or a chain-gap refusal means the local chain state
  is stale: it adopts the node's head, signs again and retries once, saying so through
  ``notify``. Every receipt is checked against the node's pinned key (:class:`NodePin`) or a
  key its handovers named (:func:`verify_receipt_following`).
* **Pins.** A wallet pins its home node's origin and C2SP verifier key at ``wallet use`` time
  (or on first contact), and trusts nothing that key did not sign, directly or through a chain
  of ``handover`` events replayed from it in a log verified against a signed checkpoint
  (docs/SECURITY.md §3.3).
* **Records.** Each signed event is kept locally with its receipt (:class:`EventStore`) so that
  ``check`` can later prove inclusion or, failing that, hold a portable proof of censorship.
* **Reading.** :func:`fetch_verified_log` downloads a log, replays it from the pinned key and
  checks it against a checkpoint signed by the key in effect at its size; :func:`replay_log` replays it with :mod:`protocol.state`, keeping the
  state at every seal; :func:`status_report` and :func:`check_report` explain with
  :mod:`protocol.tally` where the citizen's weight flows now and how each sealed tally counted it.

Errors: :class:`WalletOpsError` (with a ``hint``) and its subclasses below; node failures come
as :class:`~node.errors.PeerError` / :class:`~node.errors.ApiError` and are re-raised with a
hint by :func:`explain_node_error`.

    LiquideError
    └── WalletOpsError            a wallet operation cannot proceed (bad input, bad answer)
        ├── NotEnrolledError      the home node does not know the key as an enrolled citizen
        └── ReceiptError          a receipt or proof from the node does not verify
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from crypto import (
    BadSignatureError,
    KeyFormatError,
    LiquideError,
    PublicKey,
    SecretKey,
    write_private_file,
)
from protocol.checkpoint import (
    BatchedReceipt,
    Checkpoint,
    SignedCheckpoint,
    parse_receipt,
)
from protocol.errors import (
    CheckpointError,
    ProofError,
    ProtocolError,
    TallyInputError,
    ValidationError,
)
from protocol.events import (
    MAX_TRUSTEES,
    AreaBody,
    AssemblyBody,
    BallotBody,
    DelegateBody,
    Event,
    IssueBody,
    RevokeBody,
    WithdrawBody,
)
from protocol.merkle import leaf_hash, root_from_leaves, verify_inclusion
from protocol.state import Finding, State, tally_input
from protocol.tally import Explanation, TallyEngine, explain

from ._wallet_state import ChainHead
from .errors import ApiError, PeerError

if TYPE_CHECKING:
    from .client import NodeClient

__all__ = [
    "EVENT_STORE_VERSION",
    "EventStore",
    "NodePin",
    "NotEnrolledError",
    "ReceiptError",
    "Record",
    "SeenCheckpoints",
    "Sent",
    "Target",
    "VerifiedLog",
    "WalletOpsError",
    "check_id",
    "check_report",
    "describe_event",
    "explain_node_error",
    "fetch_pin",
    "fetch_verified_log",
    "follow_handovers",
    "issue_doc",
    "load_event_file",
    "node_head",
    "parse_grades",
    "parse_target",
    "parse_trustees",
    "replay_log",
    "send_event",
    "status_report",
    "submit_signed",
    "target_exists",
    "verify_receipt",
    "verify_receipt_following",
    "voter_doc",
    "write_event_file",
]

EVENT_STORE_VERSION: Final = 1
_MAX_STORE_BYTES: Final = 64 * 1024 * 1024
_MAX_EVENT_FILE_BYTES: Final = 1024 * 1024
_HEX64 = re.compile(r"[0-9a-f]{64}")
_GRADE = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]{0,63})=([+-]?[0-9]{1,10})")
_MAX_GRADE: Final = 2**31 - 1
#: Most log entries the wallet downloads to explain a tally (beyond it, it asks the node).
MAX_REPLAY_ENTRIES: Final = 2_000_000

Notify = Callable[[str], None]


class WalletOpsError(LiquideError):
    """A wallet operation cannot proceed; ``hint`` says what to do."""

    code = "wallet"

    def __init__(self, message: str, *, hint: str | None = None, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.hint = hint


class NotEnrolledError(WalletOpsError):
    """The home node does not know this key as an enrolled citizen."""

    code = "not_enrolled"


class ReceiptError(WalletOpsError):
    """A receipt, checkpoint or proof from the node does not verify against the pinned key."""

    code = "bad_receipt"


# Building events --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """A delegation scope: ``assembly``, ``area`` or ``issue``, and the target's id."""

    scope: str
    id: str

    def to_dict(self) -> dict[str, str]:
        """``{"scope", "target"}`` as in delegate and revoke bodies."""
        return {"scope": self.scope, "target": self.id}


def _hex_id(value: str, what: str) -> str:
    v = value.strip().lower()
    if not _HEX64.fullmatch(v):
        raise ValueError(f"{what} {value!r} is not an id (64 hex digits)")
    return v


def check_id(value: str, what: str = "id") -> str:
    """Return ``value`` as a lower-case 64-hex id; raise :class:`ValueError` naming ``what``."""
    return _hex_id(value, what)


def parse_target(assembly: str | None, area: str | None, issue: str | None) -> Target:
    """The single scope given; raise :class:`ValueError` unless exactly one is."""
    given = [(s, v) for s, v in (("assembly", assembly), ("area", area), ("issue", issue)) if v]
    if len(given) != 1:
        raise ValueError("give exactly one of --assembly ID, --area ID or --issue ID")
    scope, value = given[0]
    return Target(scope, _hex_id(value, scope))


def parse_trustees(texts: Sequence[str], me: PublicKey) -> tuple[str, ...]:
    """Canonical ``lqpk1…`` texts of a ranked trustee list; raise :class:`ValueError`.

    The list must hold 1 to ``MAX_TRUSTEES`` distinct keys, none of them the citizen's own.
    """
    if not texts:
        raise ValueError("name at least one trustee (to block broader scopes, use `block`)")
    if len(texts) > MAX_TRUSTEES:
        raise ValueError(
            f"{len(texts)} trustees: a ranked list holds at most {MAX_TRUSTEES} (protocol limit)"
        )
    out: list[str] = []
    for i, text in enumerate(texts, 1):
        try:
            key = PublicKey.from_text(text.strip()).to_text()
        except KeyFormatError as exc:
            raise ValueError(f"trustee {i} ({text!r}) is not a public key: {exc.message}") from None
        if key == me.to_text():
            raise ValueError(f"trustee {i} is your own key: you cannot delegate to yourself")
        if key in out:
            raise ValueError(f"trustee {i} ({key}) is listed twice")
        out.append(key)
    return tuple(out)


def parse_grades(
    grades: Sequence[str], approve: Sequence[str], reject: Sequence[str]
) -> dict[str, int]:
    """Grades from ``OPTION=+1`` items and the ``--approve``/``--reject`` shortcuts.

    Raises :class:`ValueError` for a malformed item, a grade out of range, or an option graded
    twice.
    """
    out: dict[str, int] = {}

    def put(option: str, grade: int, what: str) -> None:
        if option in out:
            raise ValueError(f"option {option!r} is graded twice ({what})")
        if abs(grade) > _MAX_GRADE:
            raise ValueError(f"grade {grade} of {option!r} is out of range ±{_MAX_GRADE}")
        out[option] = grade

    for item in grades:
        m = _GRADE.fullmatch(item.strip())
        if m is None:
            raise ValueError(f"--grade {item!r}: write OPTION=GRADE, such as yes=+1 or no=-1")
        put(m.group(1), int(m.group(2)), f"--grade {item}")
    for option in approve:
        put(option.strip(), 1, f"--approve {option}")
    for option in reject:
        put(option.strip(), -1, f"--reject {option}")
    return out


def delegate_body(target: Target, trustees: Sequence[str]) -> dict[str, Any]:
    """A validated ``delegate`` body (an empty list blocks broader scopes)."""
    d = {**target.to_dict(), "trustees": list(trustees)}
    return DelegateBody.from_dict(d).to_dict()


def revoke_body(target: Target) -> dict[str, Any]:
    """A validated ``revoke`` body."""
    return RevokeBody.from_dict(target.to_dict()).to_dict()


def ballot_body(issue: str, grades: Mapping[str, int]) -> dict[str, Any]:
    """A validated ``ballot`` body."""
    return BallotBody.from_dict({"issue": issue, "grades": dict(grades)}).to_dict()


def withdraw_body(issue: str) -> dict[str, Any]:
    """A validated ``withdraw`` body."""
    return WithdrawBody.from_dict({"issue": issue}).to_dict()


def short(key: str) -> str:
    """A key text shortened for prose (the full text is in ``--json``)."""
    return key if len(key) < 24 else f"{key[:14]}…{key[-6:]}"


def describe_event(ev: Event) -> str:
    """One line saying what a citizen's event does."""
    b: Any = ev.body
    if ev.type == "delegate":
        if not b.trustees:
            return f"block broader delegations at {b.scope} {b.target[:12]}…"
        return f"delegate {b.scope} {b.target[:12]}… to " + ", then ".join(
            short(t) for t in b.trustees
        )
    if ev.type == "revoke":
        return f"revoke the delegation at {b.scope} {b.target[:12]}…"
    if ev.type == "ballot":
        grades = " ".join(f"{k}={v:+d}" for k, v in sorted(b.grades.items())) or "(no grades)"
        return f"vote on issue {b.issue[:12]}…: {grades}"
    if ev.type == "withdraw":
        return f"withdraw the ballot on issue {b.issue[:12]}…"
    return ev.type


# Pins and receipts --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodePin:
    """The home node's log origin and its C2SP verifier key (``origin+keyid+base64``)."""

    origin: str
    vkey: str

    def __post_init__(self) -> None:
        try:
            name, _ = PublicKey.from_vkey(self.vkey)
        except KeyFormatError as exc:
            raise WalletOpsError(f"node key {self.vkey!r}: {exc.message}") from None
        if name != self.origin:
            raise WalletOpsError(
                f"node key {self.vkey!r} is named {name!r}, not the origin {self.origin!r}"
            )

    @property
    def key(self) -> PublicKey:
        """The node's public key."""
        return PublicKey.from_vkey(self.vkey)[1]

    @property
    def fingerprint(self) -> str:
        """The short fingerprint people compare."""
        return self.key.fingerprint()

    @classmethod
    def from_vkey(cls, vkey: str) -> NodePin:
        """The pin of a verifier key (its name is the origin)."""
        try:
            name, _ = PublicKey.from_vkey(vkey.strip())
        except KeyFormatError as exc:
            raise WalletOpsError(f"node key {vkey!r}: {exc.message}") from None
        return cls(name, vkey.strip())


async def fetch_pin(client: NodeClient) -> NodePin:
    """The node's own log origin and verifier key, as it announces them on ``/v1/logs``.

    Only trust-on-first-use: the wallet shows the fingerprint so the citizen can compare it
    with the one the city publishes. Raises :class:`WalletOpsError` if no own log is listed.
    """
    logs = await client.logs()
    own = [x for x in logs if isinstance(x, dict) and x.get("own")]
    if len(own) != 1 or not isinstance(own[0].get("vkey"), str):
        raise WalletOpsError("the node lists no log of its own on /v1/logs")
    pin = NodePin.from_vkey(own[0]["vkey"])
    if own[0].get("origin") != pin.origin:
        raise WalletOpsError("the node's own log and its key name different origins")
    return pin


def _chain(pin: NodePin, keys: Iterable[str | PublicKey]) -> list[PublicKey]:
    """The pinned key, then the other keys of ``keys`` (its followed handovers), once each."""
    out = [pin.key]
    for k in keys:
        key = k if isinstance(k, PublicKey) else PublicKey.from_text(k)
        if key not in out:
            out.append(key)
    return out


def verify_receipt(
    doc: object,
    pin: NodePin,
    event_id: str | None = None,
    leaf: bytes | None = None,
    *,
    keys: Iterable[str | PublicKey] = (),
) -> dict[str, Any]:
    """Check a receipt's signature by the pinned key or a key of ``keys`` (the keys its
    handovers named, as a verified log showed them), and its event id; return it.

    ``doc`` is a receipt in its dict form, of either form (docs/PROTOCOL.md §6.4): a
    :class:`~protocol.checkpoint.Receipt`, or a :class:`~protocol.checkpoint.BatchedReceipt`
    (a signed batch root and the event's path to it), for which ``leaf`` — the event's
    canonical bytes — is also checked to be the leaf it names. Raises :class:`ReceiptError`
    naming what is wrong; code ``receipt_key`` when no key of the chain signed it (a key the
    wallet has not followed yet, or an impostor's: :func:`verify_receipt_following`).
    """
    if not isinstance(doc, dict):
        raise ReceiptError("the receipt is not a JSON object")
    if doc.get("origin") != pin.origin:
        raise ReceiptError(
            f"the receipt is for origin {doc.get('origin')!r}, not the home node's {pin.origin!r}"
        )
    if event_id is not None and doc.get("event_id") != event_id:
        raise ReceiptError(
            f"the receipt is for event {doc.get('event_id')!r}, not {event_id}",
            hint="the node answered about another event",
        )
    chain = _chain(pin, keys)
    what = f"the receipt of event {str(doc.get('event_id'))[:16]}…"
    hint = (
        "the file may be corrupted, or the node signed with another key; keep it and compare"
        " the node's key fingerprint with the one your city publishes"
    )
    try:
        receipt = parse_receipt(doc)
    except ValidationError as exc:
        raise ReceiptError(f"{what} is malformed: {exc.message}", hint=hint) from None
    signed = receipt.batch if isinstance(receipt, BatchedReceipt) else receipt
    first: CheckpointError | None = None
    for key in chain:
        try:
            signed.verify(key)
        except CheckpointError as exc:
            first = first or exc
            continue
        if isinstance(receipt, BatchedReceipt):
            try:
                receipt.verify(key, leaf=leaf)
            except CheckpointError as exc:
                raise ReceiptError(f"{what} does not verify: {exc.message}", hint=hint) from None
        return dict(doc)
    assert first is not None
    followed = (
        f" nor the {len(chain) - 1} key(s) its handovers named (in effect: {chain[-1].to_text()})"
        if len(chain) > 1
        else ""
    )
    raise ReceiptError(
        f"{what} does not verify against the pinned key of {pin.origin} ({pin.fingerprint})"
        f"{followed}: {first.message}",
        hint=hint,
        code="receipt_key",
    )


# The local record of signed events ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """A signed event of this wallet, with the home node's receipt once submitted."""

    event: Event
    origin: str | None = None
    receipt: dict[str, Any] | None = None

    @property
    def submitted(self) -> bool:
        """Whether the node gave a receipt for it."""
        return self.receipt is not None

    def to_dict(self) -> dict[str, Any]:
        """The file form."""
        return {"event": self.event.to_dict(), "origin": self.origin, "receipt": self.receipt}

    @classmethod
    def from_dict(cls, d: object, where: str) -> Record:
        """Parse the file form; raise :class:`WalletOpsError` naming ``where``."""
        if not isinstance(d, dict) or set(d) != {"event", "origin", "receipt"}:
            raise WalletOpsError(f"{where}: must be {{event, origin, receipt}}")
        try:
            ev = Event.from_dict(d["event"], f"{where}.event")
        except ProtocolError as exc:
            raise WalletOpsError(exc.message) from None
        if d["origin"] is not None and not isinstance(d["origin"], str):
            raise WalletOpsError(f"{where}.origin: must be a string or null")
        if d["receipt"] is not None and not isinstance(d["receipt"], dict):
            raise WalletOpsError(f"{where}.receipt: must be an object or null")
        return cls(ev, d["origin"], d["receipt"])


@dataclass(frozen=True, slots=True)
class EventStore:
    """``<wallet>.events.json``: every event the wallet signed, in signing order, with receipts."""

    path: Path

    def load(self) -> list[Record]:
        """The records (empty when the file does not exist); raise :class:`WalletOpsError`."""
        try:
            with self.path.open("rb") as f:
                data = f.read(_MAX_STORE_BYTES + 1)
        except FileNotFoundError:
            return []
        hint = f"move {self.path} aside (check then knows only events signed from now on)"
        if len(data) > _MAX_STORE_BYTES:
            raise WalletOpsError(f"{self.path}: file too large", hint=hint)
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WalletOpsError(f"{self.path}: not valid JSON ({exc})", hint=hint) from None
        if (
            not isinstance(doc, dict)
            or doc.get("version") != EVENT_STORE_VERSION
            or not isinstance(doc.get("events"), list)
        ):
            raise WalletOpsError(
                f'{self.path}: must be {{"version": 1, "events": [...]}}', hint=hint
            )
        try:
            return [Record.from_dict(r, f"events[{i}]") for i, r in enumerate(doc["events"])]
        except WalletOpsError as exc:
            raise WalletOpsError(f"{self.path}: {exc.message}", hint=hint) from None

    def save(self, records: Sequence[Record]) -> None:
        """Write all records atomically (mode 0600)."""
        doc = {"version": EVENT_STORE_VERSION, "events": [r.to_dict() for r in records]}
        write_private_file(self.path, (json.dumps(doc, indent=1) + "\n").encode(), overwrite=True)

    def put(self, record: Record) -> None:
        """Add a record, replacing one for the same event (a receipt arriving for it)."""
        records = [r for r in self.load() if r.event.id != record.event.id]
        records.append(record)
        self.save(records)


def load_event_file(data: bytes, source: str) -> Event:
    """A signed event from an ``--offline`` file (canonical or pretty JSON); signature checked.

    Raises :class:`WalletOpsError` naming ``source`` and the defect.
    """
    if len(data) > _MAX_EVENT_FILE_BYTES:
        raise WalletOpsError(f"{source}: too large for an event")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WalletOpsError(f"{source}: not valid JSON ({exc})") from None
    try:
        ev = Event.from_dict(doc)
        ev.verify()
    except ProtocolError as exc:
        raise WalletOpsError(f"{source}: not a valid signed event: {exc.message}") from None
    except BadSignatureError:
        raise WalletOpsError(
            f"{source}: the event's signature does not verify (the file was altered)"
        ) from None
    return ev


def write_event_file(path: Path, ev: Event, *, overwrite: bool) -> None:
    """Write a signed event as its canonical bytes and a newline (mode 0600)."""
    write_private_file(path, ev.encode() + b"\n", overwrite=overwrite)


# Talking to the home node ---------------------------------------------------------------------


def explain_node_error(exc: PeerError, url: str) -> WalletOpsError:
    """A wallet error with a hint for a node failure (unreachable, refusal)."""
    if not isinstance(exc, ApiError):
        return WalletOpsError(
            f"cannot reach the home node {url}: {exc.message}",
            hint="check the address (`liquide wallet show`) and your connection; to sign now"
            " and send later, add --offline FILE, then run `liquide submit FILE`",
            code="node_unreachable",
        )
    hints = {
        "unknown_author": "your key is not enrolled at this node: bring your public key"
        " (`liquide wallet show`) to your city's registrar",
        "outside_window": "ballots are accepted only while the issue is open",
        "clock_skew": "set this computer's clock right (the node allows a few minutes)",
        "rate_limited": "wait a little and try again",
        "not_found": "check the id (`liquide wallet status` lists the open issues)",
    }
    return WalletOpsError(
        f"the home node refused: {exc.message}", hint=hints.get(exc.code), code=exc.code
    )


async def voter_doc(client: NodeClient, key: str) -> dict[str, Any] | None:
    """``/v1/voters/{key}``, or None when the node does not know the key."""
    try:
        return await client.voter(key)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def _head_of(doc: object) -> ChainHead:
    if doc is None:
        return ChainHead()
    if not isinstance(doc, dict):
        raise WalletOpsError("the node's chain head is not an object")
    seq, event_id = doc.get("seq"), doc.get("event_id")
    if type(seq) is not int or not isinstance(event_id, str):
        raise WalletOpsError(f"the node's chain head {doc!r} is malformed")
    try:
        return ChainHead(seq, event_id)
    except LiquideError as exc:
        raise WalletOpsError(f"the node's chain head: {exc.message}") from None


async def node_head(client: NodeClient, key: PublicKey) -> ChainHead:
    """The key's chain head as the home node holds it; raise :class:`NotEnrolledError`."""
    doc = await voter_doc(client, key.to_text())
    if doc is None:
        raise NotEnrolledError(
            f"the home node does not know your key {key.to_text()}",
            hint="bring your public key (`liquide wallet show`) to your city's registrar to be"
            " enrolled, and check the home node (`liquide wallet use NODE_URL`)",
        )
    return _head_of(doc.get("head"))


@dataclass(frozen=True, slots=True)
class Sent:
    """An event the node accepted, its receipt, and whether the chain state was recovered."""

    event: Event
    receipt: dict[str, Any]
    recovered: bool = False

    def verify(self, pin: NodePin, keys: Iterable[str | PublicKey] = ()) -> dict[str, Any]:
        """The receipt, checked against the pinned key or a followed one of ``keys`` (see
        :func:`verify_receipt`); raise :class:`ReceiptError`."""
        return verify_receipt(self.receipt, pin, self.event.id, self.event.encode(), keys=keys)


def _stale(exc: ApiError) -> bool:
    return exc.code in ("seq_used", "chain_gap", "chain_prev", "seq_reused")


async def submit_signed(client: NodeClient, ev: Event) -> dict[str, Any]:
    """Post a signed event; return the node's receipt (not yet verified: see :meth:`Sent.verify`)."""
    receipt = await client.submit(ev)
    if not isinstance(receipt, dict):
        raise WalletOpsError("the node answered without a receipt")
    return receipt


async def send_event(
    client: NodeClient,
    sk: SecretKey,
    type_: str,
    body: Mapping[str, Any],
    head: ChainHead,
    *,
    now: int,
    notify: Notify,
) -> Sent:
    """Sign ``body`` at ``head`` (recovered from the node when empty) and submit it.

    On a stale-chain refusal (409 ``seq_used`` naming the head, or a chain gap) it adopts the
    node's head, signs again and retries once, calling ``notify``. Returns the accepted event
    and its receipt, which the caller checks with :meth:`Sent.verify` once it has recorded the
    new chain head (the node accepted the event either way). Raises
    :class:`~node.errors.ApiError` for other refusals and for a second stale-chain refusal.
    """
    me = sk.public_key
    if head.seq == 0:
        head = await node_head(client, me)
    ev = Event.create(sk, type_, dict(body), head.next_seq, head.prev, now)
    try:
        return Sent(ev, await submit_signed(client, ev))
    except ApiError as exc:
        if not _stale(exc):
            raise
        named = exc.details.get("head") if exc.code == "seq_used" else None
        fresh = _head_of(named) if named is not None else await node_head(client, me)
        notify(
            f"the local chain state was stale (seq {head.seq}); the home node's chain head is seq"
            f" {fresh.seq}: recovered it and signed again at seq {fresh.next_seq}"
        )
    ev = Event.create(sk, type_, dict(body), fresh.next_seq, fresh.prev, now)
    return Sent(ev, await submit_signed(client, ev), recovered=True)


async def _pages(
    client: NodeClient, path: str, key: str, params: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        doc = await client.get_json(path, {**(params or {}), "offset": str(len(out))})
        items = doc.get(key) if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise WalletOpsError(f"{path}: the node's answer has no {key!r} list")
        out.extend(x for x in items if isinstance(x, dict))
        limit = doc.get("limit")
        if not items or type(limit) is not int or len(items) < limit:
            return out


async def issue_doc(client: NodeClient, issue_id: str) -> dict[str, Any]:
    """``/v1/issues/{id}``; raise :class:`WalletOpsError` (code ``not_found``) if unknown."""
    try:
        return await client.issue(issue_id)
    except ApiError as exc:
        if exc.status == 404:
            raise WalletOpsError(
                f"issue {issue_id} is not known at the home node",
                hint="check the id: `liquide wallet status` lists the open issues",
                code="not_found",
            ) from None
        raise


async def target_exists(client: NodeClient, target: Target) -> str:
    """The name or title of a delegation target at the home node; raise if unknown."""
    if target.scope == "issue":
        return str((await issue_doc(client, target.id)).get("title", ""))
    key = "assemblies" if target.scope == "assembly" else "areas"
    for item in await _pages(client, f"/v1/{key}", key):
        if item.get("id") == target.id:
            return str(item.get("name", ""))
    raise WalletOpsError(
        f"{target.scope} {target.id} is not known at the home node",
        hint="check the id (`liquide wallet status --json` lists the scopes you can use)",
        code="not_found",
    )


# Verified logs and replay -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Replayed:
    """A replay of a verified log's leaves: the final state, the state right after each seal,
    and the findings."""

    state: State
    at_seal: dict[str, State]
    findings: tuple[Finding, ...]


@dataclass(frozen=True, slots=True)
class VerifiedLog:
    """A log prefix whose leaves hash to the root of a checkpoint signed by the key in effect
    at its size, as replay of those leaves from the pinned ``key`` found it (the pinned key,
    then each key a handover signed by its predecessor named).

    ``tail`` holds the entries after that checkpoint, when asked for: their signatures are
    checked by replay, but no signed checkpoint covers them yet. ``replayed`` is the replay of
    ``leaves`` (:func:`fetch_verified_log` does it to follow the handovers).
    """

    origin: str
    key: PublicKey
    checkpoint: SignedCheckpoint
    leaves: tuple[bytes, ...]
    tail: tuple[bytes, ...] = ()
    replayed: _Replayed | None = None

    @property
    def city_keys(self) -> tuple[str, ...]:
        """The pinned key, then each key a handover in the verified prefix named."""
        if self.replayed is None:
            return (self.key.to_text(),)
        return tuple(self.replayed.state.city_keys())

    @property
    def key_in_effect(self) -> str:
        """The key that signed the checkpoint: the key in effect at its size."""
        return self.city_keys[-1]

    @property
    def size(self) -> int:
        """The leaves held: the verified prefix and the tail."""
        return len(self.leaves) + len(self.tail)

    def chain(self) -> tuple[str, ...]:
        """:attr:`city_keys`, then the keys named by handovers in the tail: the keys receipts
        may be signed by. A handover in the tail is not covered by a checkpoint yet, but replay
        accepts it only when it is signed by the key in effect, which is what names the key."""
        if not self.tail:
            return self.city_keys
        return tuple(replay_log(self)[0].city_keys())


async def _entries(client: NodeClient, origin: str, start: int, end: int) -> list[bytes]:
    out: list[bytes] = []
    while start + len(out) < end:
        page = await client.entries(origin, start + len(out), end)
        if not page:
            raise WalletOpsError(
                f"the node stopped sending entries of {origin} at {start + len(out)}"
            )
        out.extend(page)
    return out[: end - start]


@dataclass(frozen=True, slots=True)
class SeenCheckpoints:
    """``<wallet>.seen.json``: the latest checkpoint of the home log this wallet verified.

    A later checkpoint must extend it: a log that shrinks or rewrites what a wallet already saw
    is caught even if every checkpoint is validly signed (a split view, seen from one wallet).
    File: ``{"version": 1, "logs": {origin: {"size": n, "root": base64}}}``.
    """

    path: Path

    def load(self) -> dict[str, tuple[int, bytes]]:
        """The remembered ``(size, root)`` per origin (empty if the file is missing or bad)."""
        try:
            doc = json.loads(self.path.read_bytes()[: 1 << 20].decode("utf-8"))
            return {
                str(o): (int(v["size"]), base64.b64decode(v["root"], validate=True))
                for o, v in doc["logs"].items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}

    def save(self, seen: Mapping[str, tuple[int, bytes]]) -> None:
        """Write the remembered checkpoints atomically (mode 0600)."""
        logs = {
            o: {"size": n, "root": base64.b64encode(r).decode("ascii")}
            for o, (n, r) in sorted(seen.items())
        }
        data = json.dumps({"version": 1, "logs": logs}, indent=1) + "\n"
        write_private_file(self.path, data.encode(), overwrite=True)


def _extends(origin: str, leaves: Sequence[bytes], cp: Checkpoint, seen: tuple[int, bytes]) -> None:
    old_size, old_root = seen
    if cp.size < old_size:
        raise ReceiptError(
            f"the latest checkpoint of {origin} has {cp.size} entries, but this wallet verified"
            f" one of {old_size} before: the log went back",
            hint="the node may be showing you a different history: keep this wallet's files and"
            " report it to an observer",
            code="log_rollback",
        )
    if root_from_leaves([leaf_hash(x) for x in leaves[:old_size]]) != old_root:
        raise ReceiptError(
            f"the log of {origin} does not extend the checkpoint of size {old_size} this wallet"
            " verified before: the node rewrote its history (a split view)",
            hint="keep this wallet's files (they hold both signed views) and report it to an"
            " observer",
            code="split_view",
        )


def _replay(
    origin: str,
    key: PublicKey,
    leaves: Iterable[bytes],
    start: int = 0,
    base: _Replayed | None = None,
) -> _Replayed:
    """Replay ``leaves`` (from leaf ``start``) from the pinned ``key``, or on a copy of ``base``."""
    state = State(origin, key.to_text()) if base is None else base.state.copy()
    at_seal = {} if base is None else dict(base.at_seal)
    findings: list[Finding] = [] if base is None else list(base.findings)
    for i, leaf in enumerate(leaves, start):
        before = len(state.seals)
        findings.extend(state.apply(i, leaf))
        if len(state.seals) != before:
            for issue_id, idx in state.seals.items():
                if idx == i:
                    at_seal[issue_id] = state.copy()
    return _Replayed(state, at_seal, tuple(findings))


def _check_signed_by_key_in_effect(origin: str, sc: SignedCheckpoint, state: State) -> None:
    """Check that the checkpoint is signed by the key in effect at its size (``state`` is the
    replay of exactly its leaves); raise :class:`ReceiptError` naming the key problem."""
    size = sc.checkpoint.size
    expected = state.key_at(size)
    try:
        sc.verify(origin, PublicKey.from_text(expected))
        return
    except CheckpointError as exc:
        problem = exc.message
    pinned = PublicKey.from_text(state.key)
    for retired in state.city_keys():
        if retired == expected:
            continue
        try:
            sc.verify(origin, PublicKey.from_text(retired))
        except CheckpointError:
            continue
        raise ReceiptError(
            f"the checkpoint of {origin} (size {size}) is signed by {retired}, a key a handover"
            f" retired: the key in effect at that size is {expected}",
            hint="the retired key may be in other hands: keep this wallet's files and report it"
            " to an observer",
            code="retired_key",
        )
    which = (
        f"the key {expected} that the handovers from its pinned key {state.key}"
        f" ({pinned.fingerprint()}) put in effect at size {size}"
        if expected != state.key
        else f"its pinned key {expected} ({pinned.fingerprint()}), in effect at size {size}"
    )
    raise ReceiptError(
        f"the checkpoint of {origin} does not verify against {which}: it is signed by a key that"
        f" no handover from the pinned key names (a possible impostor node): {problem}",
        hint="a city's new key is followed only through a handover signed by the key before it;"
        " compare the node's fingerprint with the one your city publishes, and if your city"
        " announced a new key out of band, run `liquide wallet use URL --node-key VKEY`",
        code="unknown_key",
    )


async def fetch_verified_log(
    client: NodeClient,
    origin: str,
    key: PublicKey,
    *,
    tail: bool = False,
    seen: dict[str, tuple[int, bytes]] | None = None,
) -> VerifiedLog:
    """Download ``origin``'s log up to its latest signed checkpoint and verify it.

    The leaves must hash to the checkpoint's root; they are replayed from the pinned ``key``
    (so each handover is checked to be signed by the key in effect), and the checkpoint must be
    signed by the key in effect at its size (:meth:`protocol.state.State.key_at`). With
    ``tail``, also the entries appended since (see :class:`VerifiedLog`). With ``seen``, the
    log must extend the checkpoint remembered for ``origin``, and ``seen`` is updated. Raises
    :class:`ReceiptError` if the checkpoint is malformed or not signed by the key in effect
    (code ``unknown_key`` for a key no handover names, ``retired_key`` for a retired one), the
    leaves do not hash to its root or the log does not extend what was seen, and
    :class:`WalletOpsError` if the log is too long to download here.
    """
    text = await client.checkpoint(origin)
    try:
        sc = SignedCheckpoint.parse(text)
    except CheckpointError as exc:
        raise ReceiptError(
            f"the checkpoint of {origin} does not verify: it is malformed: {exc.message}"
        ) from None
    cp = sc.checkpoint
    if cp.origin != origin:
        raise ReceiptError(
            f"the checkpoint of {origin} does not verify: it is for origin {cp.origin!r}"
        )
    if cp.size > MAX_REPLAY_ENTRIES:
        raise WalletOpsError(f"the log of {origin} holds {cp.size} entries: too many to replay")
    leaves = await _entries(client, origin, 0, cp.size)
    if root_from_leaves([leaf_hash(x) for x in leaves]) != cp.root:
        try:
            sc.verify(origin, key)
        except CheckpointError:
            pass
        else:
            raise ReceiptError(
                f"the entries of {origin} the node sent do not match its signed checkpoint of"
                f" size {cp.size}: the node serves a log other than the one it signed"
            )
        raise ReceiptError(
            f"the checkpoint of {origin} does not verify: the entries the node sent do not hash"
            f" to its root (size {cp.size}), so no handover from the pinned key can be followed"
        )
    replayed = _replay(origin, key, leaves)
    _check_signed_by_key_in_effect(origin, sc, replayed.state)
    if seen is not None:
        if origin in seen:
            _extends(origin, leaves, cp, seen[origin])
        seen[origin] = (cp.size, cp.root)
    extra: list[bytes] = []
    if tail:
        sizes = [x.get("size") for x in await client.logs() if x.get("origin") == origin]
        size = sizes[0] if sizes and type(sizes[0]) is int else cp.size
        if cp.size < size <= MAX_REPLAY_ENTRIES:
            extra = await _entries(client, origin, cp.size, size)
    return VerifiedLog(origin, key, sc, tuple(leaves), tuple(extra), replayed)


async def follow_handovers(
    client: NodeClient, pin: NodePin, *, seen: dict[str, tuple[int, bytes]] | None = None
) -> VerifiedLog:
    """The home log verified from the pin (:func:`fetch_verified_log`), with its tail: its
    :meth:`~VerifiedLog.chain` is the key chain the wallet may accept receipts from."""
    return await fetch_verified_log(client, pin.origin, pin.key, tail=True, seen=seen)


async def verify_receipt_following(
    client: NodeClient,
    doc: object,
    pin: NodePin,
    keys: Sequence[str],
    *,
    event_id: str | None = None,
    leaf: bytes | None = None,
    seen: dict[str, tuple[int, bytes]] | None = None,
) -> tuple[dict[str, Any], VerifiedLog | None]:
    """:func:`verify_receipt` with the known chain ``keys``; if no key of it signed the receipt
    (a handover the wallet has not followed yet), follow the home log's handovers from the pin
    (:func:`follow_handovers`) and check again with the chain it shows.

    Returns the receipt and the log followed (None when the known chain sufficed). Raises
    :class:`ReceiptError` as :func:`verify_receipt` does, naming a key no handover names.
    """
    try:
        return verify_receipt(doc, pin, event_id, leaf, keys=keys), None
    except ReceiptError as exc:
        if exc.code != "receipt_key":
            raise
    log = await follow_handovers(client, pin, seen=seen)
    try:
        return verify_receipt(doc, pin, event_id, leaf, keys=_merged(log.chain(), keys)), log
    except ReceiptError as exc:
        if exc.code != "receipt_key":
            raise
        raise ReceiptError(
            f"{exc.message}; the home log (checkpoint of size {log.checkpoint.checkpoint.size},"
            f" {log.size} entries) names no handover to the key that signed it (a possible"
            " impostor node)",
            hint=exc.hint,
            code=exc.code,
        ) from None


def replay_log(
    log: VerifiedLog, findings: list[Finding] | None = None
) -> tuple[State, dict[str, State]]:
    """Replay a verified log; return the final state and the state right after each seal.

    The replay's findings (leaves that break a rule and do not count) go to ``findings``. The
    replay :func:`fetch_verified_log` did is reused (on a copy when there is a tail).
    """
    done = log.replayed
    if done is None:
        done = _replay(log.origin, log.key, log.leaves)
    if log.tail:
        done = _replay(log.origin, log.key, log.tail, len(log.leaves), done)
    if findings is not None:
        findings.extend(done.findings)
    return done.state, done.at_seal


@dataclass(slots=True)
class _Record:
    """The member cities' states of one issue's record, as far as the wallet could verify."""

    parts: dict[str, State] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


async def _member_parts(
    client: NodeClient,
    home: tuple[State, dict[str, State]],
    assembly: AssemblyBody,
    issue_id: str,
    *,
    sealed: bool,
    cache: dict[str, tuple[State, dict[str, State]] | None],
) -> _Record:
    """Each member city's state for the issue: at its seal, or (open issues) now."""
    out = _Record()
    home_state = home[0]
    for m in assembly.members:
        if m.origin == home_state.origin:
            replayed: tuple[State, dict[str, State]] | None = home
        else:
            if m.origin not in cache:
                try:
                    log = await fetch_verified_log(
                        client, m.origin, PublicKey.from_text(m.key), tail=not sealed
                    )
                    cache[m.origin] = replay_log(log)
                except (PeerError, WalletOpsError, KeyFormatError):
                    cache[m.origin] = None
            replayed = cache[m.origin]
        if replayed is None:
            out.missing.append(m.origin)
            continue
        state = replayed[1].get(issue_id) if sealed else replayed[0]
        if state is None:
            out.missing.append(m.origin)
        else:
            out.parts[m.origin] = state
    return out


def _engine_for(issue_id: str, parts: Mapping[str, State]) -> TallyEngine:
    built = tally_input(issue_id, parts)
    return TallyEngine(built.prepared)


def _unenrolled(states: Iterable[State], key: str) -> bool:
    """Whether some state's roll shows ``key`` unenrolled and not enrolled again."""
    for s in states:
        last = [r.kind for r in s.roll if r.key == key]
        if last and last[-1] == "unenrol":
            return True
    return False


def explain_text(e: Explanation, states: Sequence[State], *, future: bool = False) -> str:
    """A sentence for the citizen: who cast their weight, through which scope, or why lost."""
    me = e.voter
    would = "would be" if future else "was"
    skipped_dead = [t for t in e.skipped if _unenrolled(states, t)]
    note = ""
    if skipped_dead:
        note = (
            "; trustee "
            + ", ".join(short(t) for t in skipped_dead)
            + " is no longer enrolled (a lost or replaced key?): delegate to their new key"
        )
    if e.status == "direct":
        return f"you voted directly with weight {e.weight}" + (
            f" (your {e.scope} delegation is overridden)" if e.scope else ""
        )
    if e.status == "delegated":
        # The path may or may not start with the voter: take the hops after them.
        hops = [x for x in e.path if x != me]
        caster = hops[-1] if hops else "?"
        via = hops[:-1]
        through = f" via {' → '.join(short(x) for x in via)}" if via else ""
        verb = "would be counted" if future else "counted"
        return f"{verb}, weight cast by {caster} through your {e.scope} delegation{through}" + note
    if e.status == "lost":
        chain = [x for x in e.path if x != me]
        if e.reason == "cycle":
            names = list(dict.fromkeys(chain))
            joined = (
                " and ".join(short(x) for x in names)
                if len(names) <= 2
                else ", ".join(short(x) for x in names)
            )
            return f"lost: cycle through {joined} (your {e.scope} delegation; nobody on it votes)"
        if chain:
            return (
                f"lost: dead end at {short(chain[-1])}, who does not vote and does not delegate"
                f" (your {e.scope} delegation){note}"
            )
        if skipped_dead:
            return (
                f"lost: dead end: your {e.scope} delegation names only keys that are no longer"
                f" enrolled ({', '.join(short(t) for t in skipped_dead)}); they may have lost"
                " their key: delegate to their new key"
            )
        return f"lost: dead end: none of the trustees of your {e.scope} delegation is a voter"
    if e.reason == "blocked":
        return f"not counted: you did not vote and your {e.scope} block stops broader delegations"
    return (
        f"not counted: you did not vote and have no delegation for this issue (your weight {would}"
        " unused)"
    )


def _explanation_dict(e: Explanation, text: str) -> dict[str, Any]:
    return {**e.to_dict(), "text": text}


# status -------------------------------------------------------------------------------------


def _home_node(pin: NodePin, keys: Sequence[str], size: int) -> dict[str, Any]:
    """The home node in a report: origin, pinned fingerprint, the key chain followed from the
    pin over the first ``size`` leaves of the log, and the key in effect when a handover
    replaced the pinned one."""
    out: dict[str, Any] = {
        "origin": pin.origin,
        "fingerprint": pin.fingerprint,
        "keys": list(keys),
        "replayed": size,
    }
    if keys[-1] != pin.key.to_text():
        out["key_in_effect"] = keys[-1]
        out["fingerprint_in_effect"] = PublicKey.from_text(keys[-1]).fingerprint()
    return out


def _merged(verified: Sequence[str], kept: Sequence[str]) -> tuple[str, ...]:
    """The longer of two key chains from one pin; raise :class:`ReceiptError` if they diverge
    (two different handovers from one key: a split view)."""
    a, b = tuple(verified), tuple(kept)
    if not b or a[: len(b)] == b:
        return a
    if b[: len(a)] == a:
        return b
    raise ReceiptError(
        f"the home log names the key chain {', '.join(a)}, but this wallet followed"
        f" {', '.join(b)} before: two different handovers from one key (a split view)",
        hint="keep this wallet's files (they hold both views) and report it to an observer",
        code="split_view",
    )


def _unknown_key(rec: Record, pin: NodePin, keys: Sequence[str]) -> bool:
    """Whether ``rec``'s receipt (of the home node) is signed by no key of ``keys``."""
    if rec.receipt is None or rec.origin not in (None, pin.origin):
        return False
    try:
        verify_receipt(rec.receipt, pin, rec.event.id, rec.event.encode(), keys=keys)
    except ReceiptError as exc:
        return exc.code == "receipt_key"
    return False


def _names(state: State) -> dict[str, str]:
    out: dict[str, str] = {}
    for i in state.assemblies:
        a = state.assembly(i)
        if a is not None:
            out[i] = a.name
    for i, d in state.areas.items():
        body = d.event.body
        if isinstance(body, AreaBody):
            out[i] = body.name
    for i in state.issues:
        iss = state.issue(i)
        if iss is not None:
            out[i] = iss.title
    return out


async def status_report(
    client: NodeClient,
    pin: NodePin,
    me: PublicKey,
    *,
    local_head: ChainHead,
    now: int,
    seen: dict[str, tuple[int, bytes]] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The citizen's delegations per scope and, for each open issue, where their weight flows.

    Returns the report (JSON-able) and warnings for stderr. Delegations come from
    ``/v1/voters/{key}``; the flows are computed here with :mod:`protocol.tally` on the home
    node's log, verified against its latest signed checkpoint (and member cities' logs it
    mirrors).
    """
    warnings: list[str] = []
    mine = me.to_text()
    doc = await voter_doc(client, mine)
    node_chain = _head_of(doc.get("head")) if doc else ChainHead()
    log = await fetch_verified_log(client, pin.origin, pin.key, tail=True, seen=seen)
    home = replay_log(log)
    state = home[0]
    names = _names(state)
    report: dict[str, Any] = {
        "key": mine,
        "home_node": _home_node(pin, state.city_keys(), log.size),
        "enrolled": bool(doc and doc.get("enrolled")),
        "chain": {"node": node_chain.to_dict(), "local": local_head.to_dict()},
        "as_of_checkpoint": log.checkpoint.checkpoint.size,
        "log_size": len(log.leaves) + len(log.tail),
        "delegations": [],
        "ballots": [],
        "issues": [],
    }
    if not report["enrolled"]:
        warnings.append(
            f"your key is not enrolled at {pin.origin}: nothing you sign counts until the"
            " registrar enrols it"
        )
    trustee_state: dict[str, str] = {}

    async def enrolment(t: str) -> str:
        if t not in trustee_state:
            d = await voter_doc(client, t)
            if d is None:
                trustee_state[t] = "unknown"
            else:
                trustee_state[t] = "enrolled" if d.get("enrolled") else "unenrolled"
        return trustee_state[t]

    for d in (doc or {}).get("delegations", []):
        if not isinstance(d, dict):
            continue
        trustees = [str(t) for t in d.get("trustees", [])]
        rows = []
        for t in trustees:
            st = await enrolment(t)
            rows.append({"key": t, "enrolment": st})
            if st == "unenrolled":
                warnings.append(
                    f"trustee {t} of your {d.get('scope')} delegation is no longer enrolled (a"
                    " lost or replaced key?): that link is a dead end; delegate to their new key"
                )
            elif st == "unknown":
                warnings.append(
                    f"trustee {t} of your {d.get('scope')} delegation is not known at"
                    f" {pin.origin} (enrolled in another member city, or not at all)"
                )
        target = str(d.get("target"))
        report["delegations"].append(
            {
                "scope": d.get("scope"),
                "target": target,
                "name": names.get(target),
                "trustees": rows,
                "blocks": not trustees,
            }
        )
    for b in (doc or {}).get("ballots", []):
        if isinstance(b, dict):
            issue = str(b.get("issue"))
            report["ballots"].append({**b, "title": names.get(issue)})
    cache: dict[str, tuple[State, dict[str, State]] | None] = {}
    for issue_id in list(state.issues):
        iss = state.issue(issue_id)
        if iss is None or issue_id in state.seals or not iss.opens <= now < iss.closes:
            continue
        item: dict[str, Any] = {"id": issue_id, "title": iss.title, "closes": iss.closes}
        assembly = state.assembly(iss.assembly)
        rec = (
            await _member_parts(client, home, assembly, issue_id, sealed=False, cache=cache)
            if assembly is not None
            else _Record(missing=["?"])
        )
        if rec.missing:
            item["flow"] = None
            item["text"] = "cannot preview: the home node holds no verifiable log of " + ", ".join(
                rec.missing
            )
        else:
            try:
                engine = _engine_for(issue_id, rec.parts)
                e = explain(engine, mine)
            except TallyInputError:
                item["flow"] = None
                item["text"] = "not in the electorate of this issue (your key is not enrolled)"
            else:
                text = explain_text(e, list(rec.parts.values()), future=True)
                item["flow"] = _explanation_dict(e, text)
                item["text"] = text
        report["issues"].append(item)
    return report, warnings


# check --------------------------------------------------------------------------------------


def _cosignatures(sc: SignedCheckpoint, assembly: AssemblyBody | None) -> tuple[int, list[str]]:
    if assembly is None:
        return 0, []
    names: list[str] = []
    for w in assembly.witnesses:
        try:
            sc.verify_cosignature(w.name, PublicKey.from_text(w.key))
        except (CheckpointError, KeyFormatError):
            continue
        names.append(w.name)
    return len(names), names


def _assembly_of(state: State, ev: Event) -> AssemblyBody | None:
    b: Any = ev.body
    if ev.type in ("delegate", "revoke"):
        if b.scope == "assembly":
            return state.assembly(b.target)
        if b.scope == "area":
            d = state.areas.get(b.target)
            area = d.event.body if d is not None else None
            return state.assembly(area.assembly) if isinstance(area, AreaBody) else None
        iss = state.issue(b.target)
    else:
        iss = state.issue(b.issue)
    return state.assembly(iss.assembly) if isinstance(iss, IssueBody) else None


async def _check_record(
    client: NodeClient,
    pin: NodePin,
    rec: Record,
    state: State,
    rejected: Mapping[str, Finding],
    *,
    keys: Sequence[str] = (),
) -> dict[str, Any]:
    ev = rec.event
    out: dict[str, Any] = {
        "event_id": ev.id,
        "type": ev.type,
        "seq": ev.seq,
        "what": describe_event(ev),
        "index": None,
        "status": "failed",
        "problems": [],
    }
    problems: list[str] = out["problems"]
    if rec.origin is not None and rec.origin != pin.origin:
        out["status"] = "elsewhere"
        problems.append(f"sent to {rec.origin}, not the current home node: not checked here")
        return out
    if rec.receipt is None:
        out["status"] = "unsent"
        problems.append("signed offline and never submitted: run `liquide submit FILE`")
        return out
    try:
        receipt = verify_receipt(rec.receipt, pin, ev.id, ev.encode(), keys=keys)
    except ReceiptError as exc:
        problems.append(exc.message)
        return out
    promised = receipt.get("index")
    out["index"] = promised
    if type(promised) is not int:
        problems.append("the receipt names no leaf index")
        return out
    try:
        doc = await client.receipt(ev.id)
    except ApiError as exc:
        if exc.status != 404:
            raise
        problems.append(
            f"MISSING: the node promised this event at index {promised} but does not have it;"
            " keep the receipt: it is a portable proof of censorship"
        )
        return out
    if doc.get("index") != promised:
        problems.append(f"the node now puts it at index {doc.get('index')}, not at {promised}")
        return out
    leaf = str(doc.get("leaf", "")).encode("utf-8")
    if leaf != ev.encode():
        problems.append(f"the leaf at index {promised} is not your event")
        return out
    note, proof = doc.get("checkpoint"), doc.get("proof")
    if not isinstance(note, str) or not isinstance(proof, list):
        out["status"] = "pending"
        problems.append("no signed checkpoint covers it yet: run check again in a minute")
        return out
    try:
        sc = SignedCheckpoint.parse(note)
        size = sc.checkpoint.size
        if size > state.size:
            # Newer than the verified checkpoint: its key is known only up to state.size.
            try:
                sc.verify(pin.origin, PublicKey.from_text(state.city_key))
            except CheckpointError:
                out["status"] = "pending"
                problems.append(
                    f"the node's checkpoint of size {size} is newer than the verified one"
                    f" ({state.size}) and not signed by the key in effect there: run check again"
                )
                return out
        cp: Checkpoint = sc.verify(
            pin.origin, PublicKey.from_text(state.key_at(min(size, state.size)))
        )
        hashes = [base64.b64decode(str(h), validate=True) for h in proof]
        verify_inclusion(leaf_hash(ev.encode()), promised, cp.size, hashes, cp.root)
    except (CheckpointError, ProofError, ValueError) as exc:
        msg = exc.message if isinstance(exc, LiquideError) else str(exc)
        problems.append(f"the inclusion proof does not verify: {msg}")
        return out
    assembly = _assembly_of(state, ev)
    k = assembly.k if assembly is not None else 0
    count, names = _cosignatures(sc, assembly)
    out.update(checkpoint_size=cp.size, cosignatures=count, witnesses=names, k=k)
    if count < k:
        out["status"] = "pending"
        problems.append(
            f"included under checkpoint {cp.size}, but it has {count} of the {k} witness"
            " cosignatures the assembly requires: not yet independently witnessed"
        )
        return out
    finding = rejected.get(ev.id)
    if finding is not None:
        problems.append(
            f"the log holds it, but replaying the log rejects it ({finding.reason}:"
            f" {finding.message}): it does not count"
        )
        return out
    out["status"] = "verified"
    return out


async def _node_explanation(client: NodeClient, key: str, issue_id: str) -> Explanation | None:
    """The node's own explanation of how ``key`` was counted (unverified), or None."""
    try:
        d = await client.explain(key, issue_id)
        path, skipped = d.get("path") or [], d.get("skipped") or []
        return Explanation(
            voter=key,
            status=str(d["status"]),
            message=str(d.get("message", "")),
            weight=d.get("weight") if type(d.get("weight")) is int else None,
            scope=str(d["scope"]) if d.get("scope") else None,
            path=tuple(map(str, path)),
            reason=str(d["reason"]) if d.get("reason") else None,
            skipped=tuple(map(str, skipped)),
        )
    except (PeerError, KeyError, TypeError):
        return None


def _intent(records: Sequence[Record], issue_id: str, seal: int) -> str | None:
    """``vote`` if the citizen's last ballot/withdraw on the issue before the seal is a ballot."""
    last = None
    for r in records:
        b: Any = r.event.body
        idx = (r.receipt or {}).get("index")
        if type(idx) is not int or idx >= seal:
            continue
        if r.event.type in ("ballot", "withdraw") and b.issue == issue_id:
            last = r.event.type
    return "vote" if last == "ballot" else None


async def check_report(
    client: NodeClient,
    pin: NodePin,
    me: PublicKey,
    records: Sequence[Record],
    *,
    seen: dict[str, tuple[int, bytes]] | None = None,
    keys: Sequence[str] = (),
) -> dict[str, Any]:
    """Verify each recorded event's inclusion, and how each sealed tally counted the citizen.

    Receipts may be signed by the pinned key or a key its handovers named: in the verified log,
    in ``keys`` (the chain this wallet followed before, which must agree with the log), or, if
    a receipt is signed by none of them, in the log's latest entries (:func:`follow_handovers`).

    Returns ``{"events": [...], "issues": [...], "ok": bool}``; ``ok`` is False when anything
    failed (a missing event, a bad proof or receipt, a tally that differs from the node's, a
    ballot not counted as a direct vote).
    """
    mine = me.to_text()
    log = await fetch_verified_log(client, pin.origin, pin.key, seen=seen)
    findings: list[Finding] = []
    home = replay_log(log, findings)
    state = home[0]
    rejected = {f.event_id: f for f in findings if f.event_id is not None}
    chain, chain_size = _merged(state.city_keys(), keys), state.size
    if any(_unknown_key(r, pin, chain) for r in records):
        # A receipt by a key the verified prefix does not name: a handover after the checkpoint?
        followed = await follow_handovers(client, pin)
        chain, chain_size = _merged(followed.chain(), chain), followed.size
    events = [await _check_record(client, pin, r, state, rejected, keys=chain) for r in records]
    issues: list[dict[str, Any]] = []
    cache: dict[str, tuple[State, dict[str, State]] | None] = {}
    for issue_id, seal in sorted(state.seals.items(), key=lambda x: x[1]):
        iss = state.issue(issue_id)
        assembly = state.assembly(iss.assembly) if iss is not None else None
        if iss is None or assembly is None:
            continue
        item: dict[str, Any] = {
            "id": issue_id,
            "title": iss.title,
            "sealed_index": seal,
            "status": "failed",
            "problems": [],
        }
        issues.append(item)
        rec = await _member_parts(client, home, assembly, issue_id, sealed=True, cache=cache)
        if rec.missing:
            item["status"] = "unverified"
            item["problems"].append(
                "cannot recompute: the home node holds no sealed, verifiable log of "
                + ", ".join(rec.missing)
            )
            reported = await _node_explanation(client, mine, issue_id)
            if reported is not None:
                item["explanation"] = _explanation_dict(reported, explain_text(reported, []))
                item["text"] = "as the node reports it (not recomputed): " + explain_text(
                    reported, []
                )
            continue
        engine = _engine_for(issue_id, rec.parts)
        digest = engine.result.digest
        item["digest"] = digest
        try:
            e = explain(engine, mine)
        except TallyInputError:
            item["status"] = "absent"
            item["text"] = "you were not in the electorate of this issue (not enrolled at the seal)"
            continue
        text = explain_text(e, list(rec.parts.values()))
        item["explanation"] = _explanation_dict(e, text)
        item["text"] = text
        item["status"] = "ok"
        if _intent(records, issue_id, seal) == "vote" and e.status != "direct":
            item["status"] = "failed"
            item["problems"].append("you voted, but the tally does not count your ballot")
        try:
            published = await client.tally(issue_id)
        except ApiError as exc:
            item["node_tally"] = None
            item["problems"].append(f"the node publishes no tally ({exc.code}); recomputed here")
            continue
        node_digest = published.get("digest") if isinstance(published, dict) else None
        if not isinstance(node_digest, str):
            node_digest = (published.get("result") or {}).get("digest")
        item["node_tally"] = node_digest
        standins = published.get("standins") if isinstance(published, dict) else None
        if node_digest != digest and isinstance(standins, list) and standins:
            # The settled record stands in a witnessed checkpoint for a city that did not seal in
            # time; this recomputation reads seals only, so it cannot judge that record.
            item["status"] = "unverified"
            item["problems"].append(
                "the node's record stands in a witnessed checkpoint for "
                + ", ".join(map(str, standins))
                + " (no seal in time); the wallet recomputes from seals only: check it with"
                " `liquide verify`"
            )
        elif node_digest != digest:
            item["status"] = "failed"
            item["problems"].append(
                f"the node's published tally (digest {node_digest}) differs from the one"
                f" recomputed from its signed log ({digest})"
            )
    ok = all(e["status"] in ("verified", "pending", "unsent", "elsewhere") for e in events) and all(
        i["status"] != "failed" for i in issues
    )
    return {
        "key": mine,
        "home_node": _home_node(pin, chain, chain_size),
        "checkpoint": log.checkpoint.checkpoint.size,
        "events": events,
        "issues": issues,
        "ok": ok,
    }

"""Tests of protocol/checkpoint.py: signed notes against Go's ``sumdb/note`` test vectors,
checkpoints and cosignatures against the C2SP spec examples and transparency-dev/formats vectors,
receipts, and split-view proofs (including the forged "failing consistency proof").

Sources of the published values:

* golang.org/x/mod ``sumdb/note/note_test.go`` (TestSign, TestOpen): the PeterNeumann and
  EnochRoot keys and their signatures of the Peter Neumann quote;
* c2sp.org/tlog-checkpoint and c2sp.org/tlog-cosignature: the ``example.com/behind-the-sofa``
  checkpoint, its witness cosignature and the signed message with ``time 1679315147``;
* transparency-dev/formats ``note/note_cosigv1_test.go``: a 0x04 cosigner verifier key
  (``remora.n621.de``) and a cosignature whose timestamp is 1727964367.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import PublicKey, SecretKey
from protocol import CheckpointError, ProofError, ValidationError
from protocol.checkpoint import (
    MAX_NOTE_SIGNATURES,
    BatchedReceipt,
    BatchReceipt,
    Checkpoint,
    Cosignature,
    NoteSignature,
    Receipt,
    SignedCheckpoint,
    SignedNote,
    SplitViewProof,
    cosign,
    cosignature_message,
    cosigner_key_id,
    cosigner_vkey,
    parse_cosigner_vkey,
    parse_receipt,
    sign_checkpoint,
)
from protocol.merkle import EMPTY_ROOT, MemoryTree, leaf_hash, verify_consistency

# --- golang.org/x/mod/sumdb/note/note_test.go --------------------------------------------------

GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"


def go_secret_key() -> SecretKey:
    blob = base64.b64decode(GO_SKEY.split("+", 4)[4])
    assert blob[0] == 0x01
    return SecretKey(blob[1:])


def peter() -> PublicKey:
    return PublicKey.from_vkey(GO_VKEY)[1]


def enoch() -> PublicKey:
    return PublicKey.from_vkey(ENOCH_VKEY)[1]


def test_signing_a_note_matches_go_note_sign_byte_for_byte() -> None:
    sk = go_secret_key()
    assert sk.public_key == peter()
    sig = NoteSignature(
        "PeterNeumann", sk.public_key.note_key_id("PeterNeumann"), sk.sign_raw(GO_TEXT.encode())
    )
    note = SignedNote(GO_TEXT, (sig,))
    assert note.to_text() == GO_TEXT + "\n" + PETER_SIG
    assert sig.line() == PETER_SIG


def test_opening_notes_as_go_note_open_does() -> None:
    msg = GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG
    note = SignedNote.parse(msg)
    assert note.text == GO_TEXT
    assert [s.name for s in note.signatures] == ["PeterNeumann", "EnochRoot"]
    assert note.signatures[1].key_id.hex() == "af0cfe78"
    assert note.to_text() == msg
    # One known key verifies; the other signature is from an unknown key and is ignored.
    assert note.verify("PeterNeumann", peter()).name == "PeterNeumann"
    assert note.verify("EnochRoot", enoch()).name == "EnochRoot"
    # A key that signed nothing here: the note must be rejected.
    with pytest.raises(CheckpointError, match="no signature by PeterNeumann"):
        SignedNote.parse(GO_TEXT + "\n" + ENOCH_SIG).verify("PeterNeumann", peter())
    # Same key ID under another name, or same name with another key: unknown, so no signature.
    with pytest.raises(CheckpointError, match="no signature"):
        note.verify("CarmenSandiego", peter())
    with pytest.raises(CheckpointError, match="no signature"):
        note.verify("PeterNeumann", enoch())
    # Duplicated signatures are fine.
    SignedNote.parse(GO_TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG).verify(
        "PeterNeumann", peter()
    )


def test_a_known_key_with_a_bad_signature_rejects_the_note() -> None:
    bad = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]  # Go's "invalid signature" case
    with pytest.raises(CheckpointError, match=r"PeterNeumann\+c74f20a3 does not verify"):
        SignedNote.parse(GO_TEXT + "\n" + bad).verify("PeterNeumann", peter())
    flipped = SignedNote.parse(GO_TEXT.replace("answer", "Answer") + "\n" + PETER_SIG)
    with pytest.raises(CheckpointError, match="does not verify"):
        flipped.verify("PeterNeumann", peter())


@pytest.mark.parametrize(
    ("msg", "needle"),
    [  # Go's badMsgs, each "malformed note" there
        (GO_TEXT, "no blank line"),
        (GO_TEXT + "\n", "no signature lines"),
        (GO_TEXT + "\n" + PETER_SIG[:-1], "newline"),
        ("\x01" + GO_TEXT + "\n" + PETER_SIG, "control character U\\+0001"),
        (b"\xff" + GO_TEXT.encode() + b"\n" + PETER_SIG.encode(), "UTF-8"),
        (
            GO_TEXT
            + "\n"
            + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
            "base64",
        ),
        (GO_TEXT + "\n" + PETER_SIG + "Unexpected line.\n", "em dash"),
        # and a few more
        (GO_TEXT + "\n" + PETER_SIG.replace("—", "-"), "em dash"),
        (GO_TEXT + "\n" + "— a+b " + PETER_SIG.rsplit(maxsplit=1)[-1] + "\n", "key name"),
        (GO_TEXT + "\n" + "—  x08go/ZJ\n", "key name"),
        (GO_TEXT + "\n" + "— PeterNeumann \n", "carries no signature"),
        (GO_TEXT + "\n" + "— PeterNeumann AAAA\n", "shorter"),
        (GO_TEXT + "\n" + PETER_SIG.replace("=\n", "\n"), "base64"),  # missing padding
        (GO_TEXT + "\n" + PETER_SIG.replace("AM=\n", "AN=\n"), "base64"),  # non-zero pad bits
        (GO_TEXT + "\n" + PETER_SIG + "\n", "no signature lines"),  # the last blank line splits
        (GO_TEXT + "\n" + PETER_SIG.replace("\n", "\r\n"), "control character U\\+000D"),
        ("\ud800" + GO_TEXT + "\n" + PETER_SIG, "surrogate"),
        (GO_TEXT + "\n" + PETER_SIG * (MAX_NOTE_SIGNATURES + 1), "more than 100"),
        (42, "text"),
    ],
)
def test_malformed_notes_are_rejected(msg: str | bytes, needle: str) -> None:
    with pytest.raises(CheckpointError, match=needle):
        SignedNote.parse(msg)


def test_a_note_may_carry_up_to_the_limit_and_text_with_blank_lines() -> None:
    assert len(SignedNote.parse(GO_TEXT + "\n" + PETER_SIG * MAX_NOTE_SIGNATURES).signatures) == 100
    # The text is separated from the signatures by the *last* blank line.
    note = SignedNote.parse("a\n\nb\n\n" + PETER_SIG)
    assert note.text == "a\n\nb\n"


def test_note_signature_constructor_checks() -> None:
    for args, needle in [
        (("bad name", b"1234", b"s"), "key name"),
        (("ok", b"123", b"s"), "4 bytes"),
        (("ok", b"1234", b""), "signature bytes"),
        (("a\x01", b"1234", b"s"), "key name"),
    ]:
        with pytest.raises(CheckpointError, match=needle):
            NoteSignature(*args)
    with pytest.raises(CheckpointError, match="single line"):
        NoteSignature.from_line(PETER_SIG + PETER_SIG)
    with pytest.raises(CheckpointError, match="text"):
        NoteSignature.from_line(b"x")  # type: ignore[arg-type]


# --- checkpoints: the C2SP examples ------------------------------------------------------------

SOFA_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SOFA_LOG_SIG = "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
SOFA_COSIG = "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
SOFA_COSIGNED_MESSAGE = (
    "cosignature/v1\ntime 1679315147\n"
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)


def test_c2sp_example_checkpoint_parses_and_round_trips() -> None:
    text = SOFA_BODY + "\n" + SOFA_LOG_SIG + SOFA_COSIG
    sc = SignedCheckpoint.parse(text)
    cp = sc.checkpoint
    assert (cp.origin, cp.size) == ("example.com/behind-the-sofa", 20852163)
    assert cp.root == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert cp.body().decode() == SOFA_BODY
    assert sc.to_text() == text
    assert sc.to_bytes() == text.encode()
    assert SignedCheckpoint.parse(text.encode()) == sc
    # The witness line is a cosignature/v1: key ID, then the 8-byte time of the spec's example.
    cosig = Cosignature.from_line(SOFA_COSIG)
    assert cosig.name == "witness.example.com/w1"
    assert cosig.key_id.hex() == "8d66cf3f"
    assert cosig.time == 1679315147
    assert cosig.line() == SOFA_COSIG
    assert cosignature_message(cp, cosig.time).decode() == SOFA_COSIGNED_MESSAGE
    # The log's own line is a plain (68-byte) Ed25519 note signature, not a cosignature.
    with pytest.raises(CheckpointError, match="not a cosignature"):
        Cosignature.from_line(SOFA_LOG_SIG)


def test_transparency_dev_cosignature_vectors() -> None:
    line = "— w ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==\n"
    assert Cosignature.from_line(line).time == 1727964367
    wrong_type = "— w eQjRQm6eSKzFoiYalgwCPXu2y3ijtg68is9M46JKxuZB+dRfTmeQeDBoXnvxZx2ugnkyV+MUMLXpWs1hPb/W/4xkNQY=\n"
    with pytest.raises(CheckpointError, match="not a cosignature"):
        Cosignature.from_line(wrong_type)
    # A native 0x04 (cosignature/v1) verifier key: its key ID uses the 0x04 type byte.
    vkey = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
    name, key = parse_cosigner_vkey(vkey)
    assert name == "remora.n621.de"
    assert cosigner_key_id(name, key).hex() == "da77ade7"
    assert cosigner_vkey(name, key) == vkey
    # A 0x01 vkey with '+' in its base64 is an ordinary note key, not a cosigner key.
    plain = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"
    n2, k2 = PublicKey.from_vkey(plain)
    with pytest.raises(CheckpointError, match="0x04"):
        parse_cosigner_vkey(plain)
    assert parse_cosigner_vkey(cosigner_vkey(n2, k2)) == (n2, k2)


@pytest.mark.parametrize(
    "vkey",
    [
        "remora.n621.de+da77ade8+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",  # wrong key ID
        "remora.n621.de+da77ade7",
        "remora.n621.de+DA77ADE7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
        "remora n621+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
        "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw",
        "remora.n621.de+da77ade7+" + base64.b64encode(b"\x04" * 34).decode(),
        7,
    ],
)
def test_bad_cosigner_vkeys(vkey: str) -> None:
    with pytest.raises(CheckpointError):
        parse_cosigner_vkey(vkey)


ROOT = bytes(range(32))
ROOT_B64 = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("o\n1\n" + ROOT_B64, "end with a newline"),
        ("o\n1\n", "origin, a size and a root"),
        ("\n1\n" + ROOT_B64 + "\n", "origin line is empty"),
        ("o\n01\n" + ROOT_B64 + "\n", "leading zeros"),
        ("o\n+1\n" + ROOT_B64 + "\n", "decimal"),
        ("o\n1_0\n" + ROOT_B64 + "\n", "decimal"),
        ("o\n\u0661\n" + ROOT_B64 + "\n", "decimal"),  # ARABIC-INDIC DIGIT ONE: int() takes it
        ("o\n 1\n" + ROOT_B64 + "\n", "decimal"),
        ("o\n-0\n" + ROOT_B64 + "\n", "decimal"),
        ("o\n\n" + ROOT_B64 + "\n", "decimal"),
        ("o\n9223372036854775808\n" + ROOT_B64 + "\n", "2\\^63-1"),
        ("o\n1\n" + ROOT_B64[:-1] + "\n", "base64"),
        ("o\n1\n" + base64.b64encode(ROOT[:31]).decode() + "\n", "base64 of 32 bytes"),
        ("o\n1\n" + ROOT_B64[:-2] + "9=\n", "base64"),  # non-zero pad bits
        ("o\n1\n" + ROOT_B64 + "\next\n\n", "extension lines must not be empty"),
        ("o\t\n1\n" + ROOT_B64 + "\n", "control character"),
        (b"o\xc3\n1\n" + ROOT_B64.encode() + b"\n", "UTF-8"),
    ],
)
def test_malformed_checkpoint_texts(text: str | bytes, needle: str) -> None:
    with pytest.raises(CheckpointError, match=needle):
        Checkpoint.from_body(text)


def test_checkpoint_constructor_checks() -> None:
    for args, needle in [
        (("", 0, ROOT), "origin"),
        (("a\nb", 0, ROOT), "single line"),
        (("o", -1, ROOT), "size"),
        (("o", 2**63, ROOT), "size"),
        (("o", True, ROOT), "size"),
        (("o", 0, b"short"), "32 bytes"),
        (("o", 0, ROOT, ["x"]), "tuple"),
        (("o", 0, ROOT, ("",)), "extension"),
        (("o", 0, ROOT, ("a\nb",)), "extension"),
    ]:
        with pytest.raises(CheckpointError, match=needle):
            Checkpoint(*args)  # type: ignore[arg-type]


def test_checkpoint_with_extensions_and_dict_form() -> None:
    cp = Checkpoint("example.liquide/log", 0, EMPTY_ROOT, ("ext one", "ext two"))
    body = cp.body().decode()
    assert (
        body
        == f"example.liquide/log\n0\n{base64.b64encode(EMPTY_ROOT).decode()}\next one\next two\n"
    )
    assert Checkpoint.from_body(body) == cp
    assert Checkpoint.from_dict(cp.to_dict()) == cp
    plain = Checkpoint("o", 5, ROOT)
    assert plain.to_dict() == {"origin": "o", "size": 5, "root": ROOT_B64}
    assert Checkpoint.from_dict(plain.to_dict()) == plain


@pytest.mark.parametrize(
    ("d", "needle"),
    [
        ([], "must be an object"),
        ({"origin": "o", "size": 1}, "must be an object"),
        ({"origin": "o", "size": 1, "root": ROOT_B64, "x": 1}, "must be an object"),
        ({"origin": "o", "size": -1, "root": ROOT_B64}, "checkpoint.size"),
        ({"origin": "o", "size": 2**53, "root": ROOT_B64}, "checkpoint.size"),
        ({"origin": "o", "size": 1, "root": "AAAA"}, "checkpoint.root"),
        ({"origin": "o", "size": 1, "root": 5}, "checkpoint.root"),
        ({"origin": "o", "size": 1, "root": ROOT_B64, "extensions": []}, "extensions"),
        ({"origin": "o", "size": 1, "root": ROOT_B64, "extensions": "x"}, "extensions"),
        ({"origin": "", "size": 1, "root": ROOT_B64}, "origin"),
        ({"origin": "o", "size": 1, "root": ROOT_B64, "extensions": [""]}, "extension"),
    ],
)
def test_checkpoint_from_dict_rejects(d: object, needle: str) -> None:
    with pytest.raises(ValidationError, match=needle):
        Checkpoint.from_dict(d)


# --- signing and verifying checkpoints -----------------------------------------------------------

ORIGIN = "example.liquide/log"
CITY = SecretKey(bytes(range(32)))
WITNESS = SecretKey(bytes(range(32, 64)))
WITNESS_NAME = "witness.example/w1"


def tree_of(n: int, fork_at: int | None = None) -> MemoryTree:
    return MemoryTree(
        leaf_hash(b"event %d%s" % (i, b"'" if fork_at is not None and i >= fork_at else b""))
        for i in range(n)
    )


def checkpoint_of(tree: MemoryTree, size: int | None = None, origin: str = ORIGIN) -> Checkpoint:
    n = tree.size if size is None else size
    return Checkpoint(origin, n, tree.root(n))


def test_sign_and_verify_a_checkpoint() -> None:
    cp = checkpoint_of(tree_of(7))
    sc = sign_checkpoint(cp, CITY)
    text = sc.to_text()
    assert text.startswith(cp.body().decode() + "\n— example.liquide/log ")
    parsed = SignedCheckpoint.parse(text)
    assert parsed == sc
    assert parsed.verify(ORIGIN, CITY.public_key) == cp
    # The signature is plain Ed25519 over the note text, as Go's note.Open checks it.
    blob = base64.b64decode(text.rsplit(" ", 1)[1])
    assert blob[:4] == CITY.public_key.note_key_id(ORIGIN)
    CITY.public_key.verify_raw(cp.body(), blob[4:])
    assert SignedNote.parse(text).verify(ORIGIN, CITY.public_key)


def test_checkpoint_verification_failures() -> None:
    sc = sign_checkpoint(checkpoint_of(tree_of(7)), CITY)
    with pytest.raises(CheckpointError, match="origin"):
        sc.verify("other.example/log", CITY.public_key)
    with pytest.raises(CheckpointError, match="no signature"):
        sc.verify(ORIGIN, WITNESS.public_key)
    forged = SignedCheckpoint(checkpoint_of(tree_of(8)), sc.signatures)
    with pytest.raises(CheckpointError, match="does not verify"):
        forged.verify(ORIGIN, CITY.public_key)
    with pytest.raises(CheckpointError, match="key name"):
        sign_checkpoint(Checkpoint("has space", 0, EMPTY_ROOT), CITY)
    with pytest.raises(CheckpointError, match="key name"):
        sign_checkpoint(Checkpoint("a+b", 0, EMPTY_ROOT), CITY)


def test_cosign_attach_and_verify() -> None:
    cp = checkpoint_of(tree_of(9))
    sc = sign_checkpoint(cp, CITY)
    line = cosign(cp, WITNESS_NAME, WITNESS, 1_700_000_000)
    assert line.startswith(f"— {WITNESS_NAME} ")
    cosigned = sc.with_signature(line)
    text = cosigned.to_text()
    assert text == sc.to_text() + line
    back = SignedCheckpoint.parse(text)
    assert back.verify(ORIGIN, CITY.public_key) == cp  # the cosignature is ignored here
    got = back.verify_cosignature(WITNESS_NAME, WITNESS.public_key)
    assert got.time == 1_700_000_000
    assert got.key_id == cosigner_key_id(WITNESS_NAME, WITNESS.public_key)
    # The bytes signed are exactly the C2SP message.
    WITNESS.public_key.verify_raw(
        f"cosignature/v1\ntime 1700000000\n{cp.body().decode()}".encode(), got.signature
    )
    # A newer cosignature by the same witness replaces the older one.
    newer = back.with_signature(
        Cosignature.from_line(cosign(cp, WITNESS_NAME, WITNESS, 1_700_000_100)).to_note_signature()
    )
    assert len(newer.signatures) == 2
    assert newer.verify_cosignature(WITNESS_NAME, WITNESS.public_key).time == 1_700_000_100
    # The city key does not pass as a cosigner of its own checkpoint, nor the reverse.
    with pytest.raises(CheckpointError, match="no cosignature"):
        back.verify_cosignature(ORIGIN, CITY.public_key)
    with pytest.raises(CheckpointError, match="no signature"):
        back.verify(ORIGIN, WITNESS.public_key)


def test_tampered_cosignatures_fail() -> None:
    cp = checkpoint_of(tree_of(9))
    sc = sign_checkpoint(cp, CITY)
    cosig = Cosignature.from_line(cosign(cp, WITNESS_NAME, WITNESS, 1_700_000_000))
    # Another time.
    moved = Cosignature(cosig.name, cosig.key_id, cosig.time + 1, cosig.signature)
    with pytest.raises(CheckpointError, match="does not verify"):
        sc.with_signature(moved.line()).verify_cosignature(WITNESS_NAME, WITNESS.public_key)
    # Another checkpoint (a witness's signature of size 9 is not one of size 8).
    other = sign_checkpoint(checkpoint_of(tree_of(9), 8), CITY)
    with pytest.raises(CheckpointError, match="does not verify"):
        other.with_signature(cosig.line()).verify_cosignature(WITNESS_NAME, WITNESS.public_key)
    # Same name and key ID, but not 8 + 64 bytes.
    short = NoteSignature(WITNESS_NAME, cosig.key_id, cosig.signature)
    with pytest.raises(CheckpointError, match="not a cosignature"):
        sc.with_signature(short).verify_cosignature(WITNESS_NAME, WITNESS.public_key)
    # Checked directly against the wrong key.
    with pytest.raises(CheckpointError, match="not by key"):
        cosig.verify(cp, CITY.public_key)
    with pytest.raises(CheckpointError, match="no cosignature"):
        sc.verify_cosignature(WITNESS_NAME, WITNESS.public_key)


def test_cosignature_argument_checks() -> None:
    cp = checkpoint_of(tree_of(2))
    with pytest.raises(CheckpointError, match="witness name"):
        cosign(cp, "bad name", WITNESS, 1)
    for t in (-1, 2**63, True, "1"):
        with pytest.raises(CheckpointError, match="time"):
            cosign(cp, WITNESS_NAME, WITNESS, t)  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match="64-byte"):
        Cosignature(WITNESS_NAME, b"abcd", 1, b"x" * 63)
    big = NoteSignature("w", b"abcd", (2**63).to_bytes(8, "big") + b"s" * 64)
    with pytest.raises(CheckpointError, match="2\\^63-1"):
        Cosignature.from_note_signature(big)
    with pytest.raises(CheckpointError, match="cosigner name"):
        cosigner_vkey("a b", WITNESS.public_key)
    sc = sign_checkpoint(cp, CITY)
    many = sc
    for i in range(MAX_NOTE_SIGNATURES - 1):
        many = many.with_signature(cosign(cp, f"w{i}", WITNESS, 1))
    with pytest.raises(CheckpointError, match="at most 100"):
        many.with_signature(cosign(cp, "one-too-many", WITNESS, 1))


names = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=20,
).filter(lambda s: "+" not in s and not any(c.isspace() for c in s))
lines = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=20
).filter(lambda s: "\n" not in s)


@settings(max_examples=100, deadline=None)
@given(
    names,
    st.integers(0, 2**63 - 1),
    st.binary(min_size=32, max_size=32),
    st.lists(lines, max_size=3),
    st.integers(0, 2**63 - 1),
)
def test_checkpoint_round_trips(
    origin: str, size: int, root: bytes, ext: list[str], t: int
) -> None:
    cp = Checkpoint(origin, size, root, tuple(ext))
    assert Checkpoint.from_body(cp.body()) == cp
    sc = sign_checkpoint(cp, CITY).with_signature(cosign(cp, "w", WITNESS, t))
    back = SignedCheckpoint.parse(sc.to_text())
    assert back == sc
    assert back.verify(origin, CITY.public_key) == cp
    assert back.verify_cosignature("w", WITNESS.public_key).time == t


# --- receipts ---------------------------------------------------------------------------------

EVENT_ID = "ab" * 32


def test_receipt_round_trip_and_verify() -> None:
    r = Receipt.create(CITY, ORIGIN, EVENT_ID, 41, time=1_700_000_000, size=42)
    r.verify(CITY.public_key)
    d = r.to_dict()
    assert set(d) == {"v", "origin", "event_id", "index", "time", "size", "sig"}
    assert len(base64.b64decode(d["sig"])) == 64
    back = Receipt.from_dict(d)
    assert back == r
    back.verify(CITY.public_key)
    # Without the size.
    r2 = Receipt.create(CITY, ORIGIN, EVENT_ID, 0, time=5)
    assert "size" not in r2.to_dict()
    Receipt.from_dict(r2.to_dict()).verify(CITY.public_key)
    # The signature covers the canonical unsigned form under the "receipt" context.
    CITY.public_key.verify("receipt", r2.unsigned_bytes(), r2.sig)


def test_altered_receipts_fail() -> None:
    r = Receipt.create(CITY, ORIGIN, EVENT_ID, 41, time=1_700_000_000, size=42)
    d = r.to_dict()
    for field, value in [
        ("origin", "other.example/log"),
        ("event_id", "cd" * 32),
        ("index", 40),
        ("time", 1_700_000_001),
        ("size", 43),
    ]:
        altered = Receipt.from_dict({**d, field: value})
        with pytest.raises(CheckpointError, match="not signed by that key"):
            altered.verify(CITY.public_key)
    no_size = {k: v for k, v in d.items() if k != "size"}
    with pytest.raises(CheckpointError):
        Receipt.from_dict(no_size).verify(CITY.public_key)
    with pytest.raises(CheckpointError):
        r.verify(WITNESS.public_key)
    # A signature made for another purpose over the same bytes is not a receipt.
    other = Receipt(
        r.origin, r.event_id, r.index, r.time, r.size, CITY.sign("attest", r.unsigned_bytes())
    )
    with pytest.raises(CheckpointError):
        other.verify(CITY.public_key)


BATCH_LEAVES = [b"first", b"second", b"third", b"fourth", b"fifth"]
BATCH_HASHES = [leaf_hash(x) for x in BATCH_LEAVES]


def _batched(k: int, first: int = 40) -> BatchedReceipt:
    batch = BatchReceipt.create(CITY, ORIGIN, first, BATCH_HASHES, time=1_700_000_000)
    path = MemoryTree(BATCH_HASHES).inclusion_proof(k)
    return batch.receipt(EVENT_ID, first + k, BATCH_HASHES[k], path)


def test_batched_receipts_round_trip_and_verify_every_leaf() -> None:
    for k in range(len(BATCH_LEAVES)):
        r = _batched(k)
        back = BatchedReceipt.from_dict(r.to_dict())
        assert back == r
        back.verify(CITY.public_key, leaf=BATCH_LEAVES[k])
        assert parse_receipt(r.to_dict()) == r
    # The statement is signed under its own context: a receipt signature is not one.
    b = _batched(0).batch
    CITY.public_key.verify("receipt-batch", b.unsigned_bytes(), b.sig)
    forged = BatchReceipt(
        b.origin, b.first, b.count, b.root, b.time, CITY.sign("receipt", b.unsigned_bytes())
    )
    with pytest.raises(CheckpointError, match="not signed by that key"):
        forged.verify(CITY.public_key)
    assert isinstance(
        parse_receipt(Receipt.create(CITY, ORIGIN, EVENT_ID, 3, time=5).to_dict()), Receipt
    )


def test_altered_batched_receipts_fail() -> None:
    d = _batched(2).to_dict()
    for field, value in [("origin", "other.example/log"), ("time", 1_700_000_001)]:
        with pytest.raises(CheckpointError, match="not signed by that key"):
            BatchedReceipt.from_dict({**d, field: value}).verify(CITY.public_key)
    for change in ({"index": 41}, {"leaf_hash": d["path"][0]}, {"path": d["path"][:1]}):
        with pytest.raises(CheckpointError, match="path"):
            BatchedReceipt.from_dict({**d, **change}).verify(CITY.public_key)
    with pytest.raises(CheckpointError, match="another leaf"):
        BatchedReceipt.from_dict(d).verify(CITY.public_key, leaf=BATCH_LEAVES[1])
    with pytest.raises(CheckpointError):
        BatchedReceipt.from_dict(d).verify(WITNESS.public_key)
    for change, needle in [
        ({"index": 45}, "outside the batch"),
        ({"batch": {**d["batch"], "count": 0}}, "count"),
        ({"batch": {**d["batch"], "first": -1}}, "first"),
        ({"batch": {**d["batch"], "root": "AAAA"}}, "root"),
        ({"path": ["AAAA"]}, r"path\[0\]"),
        ({"extra": 1}, "exactly"),
        ({"batch": {k: x for k, x in d["batch"].items() if k != "sig"}}, "batch"),
    ]:
        with pytest.raises(ValidationError, match=needle):
            BatchedReceipt.from_dict({**d, **change})


@settings(max_examples=150)
@given(
    key=st.sampled_from(
        [
            "v",
            "origin",
            "event_id",
            "index",
            "time",
            "leaf_hash",
            "path",
            "first",
            "count",
            "root",
            "sig",
        ]
    ),
    value=st.one_of(
        st.none(),
        st.integers(-3, 2**54),
        st.text(max_size=6),
        st.lists(st.text(max_size=4), max_size=3),
        st.sampled_from(["AAAA", base64.b64encode(bytes(32)).decode(), "ab" * 32]),
    ),
)
def test_batched_receipts_from_hostile_dicts(key: str, value: object) -> None:
    """A changed field is refused with a named problem, or leaves the genuine receipt."""
    genuine = _batched(3).to_dict()
    if key in BatchedReceipt.BATCH_KEYS:
        doc = {**genuine, "batch": {**genuine["batch"], key: value}}
    else:
        doc = {**genuine, key: value}
    try:
        r = BatchedReceipt.from_dict(doc)
        r.verify(CITY.public_key, leaf=BATCH_LEAVES[3])
    except (ValidationError, CheckpointError) as exc:
        problem = exc.message
    else:
        assert r.to_dict() == genuine
        return
    assert problem.startswith(("receipt", "batch receipt")), problem


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"v": 2}, "receipt.v"),
        ({"v": True}, "receipt.v"),
        ({"sig": "AAAA"}, "receipt.sig"),
        ({"sig": 1}, "receipt.sig"),
        ({"origin": ""}, "receipt.origin"),
        ({"origin": 3}, "receipt.origin"),
        ({"event_id": "AB" * 32}, "receipt.event_id"),
        ({"event_id": "ab" * 31}, "receipt.event_id"),
        ({"index": -1}, "receipt.index"),
        ({"index": 1.0}, "receipt.index"),
        ({"time": 2**53}, "receipt.time"),
        ({"size": 41}, "receipt.size"),
        ({"size": None}, "receipt.size"),
        ({"size": "42"}, "receipt.size"),
        ({"extra": 1}, "must be an object"),
    ],
)
def test_receipt_from_dict_rejects(change: dict[str, object], needle: str) -> None:
    d = {**Receipt.create(CITY, ORIGIN, EVENT_ID, 41, time=1, size=42).to_dict(), **change}
    with pytest.raises(ValidationError, match=needle):
        Receipt.from_dict(d)


def test_receipt_constructor_and_create_check_fields() -> None:
    with pytest.raises(ValidationError, match=r"receipt\.sig"):
        Receipt(ORIGIN, EVENT_ID, 1, 1, None, b"short")
    with pytest.raises(ValidationError, match=r"receipt\.size"):
        Receipt.create(CITY, ORIGIN, EVENT_ID, 5, time=1, size=5)
    with pytest.raises(ValidationError, match="must be an object"):
        Receipt.from_dict([])


# --- split-view proofs -------------------------------------------------------------------------


def signed(tree: MemoryTree, size: int | None = None, key: SecretKey = CITY) -> SignedCheckpoint:
    return sign_checkpoint(checkpoint_of(tree, size), key)


def roots_proof() -> SplitViewProof:
    honest, fork = tree_of(10), tree_of(10, fork_at=6)
    return SplitViewProof.of_roots(signed(honest), signed(fork))


def inclusion_proof_pair() -> SplitViewProof:
    honest, fork = tree_of(8), tree_of(12, fork_at=6)
    a, b = signed(honest), signed(fork)
    return SplitViewProof.of_inclusions(
        6,
        (a, honest.leaf(6), honest.inclusion_proof(6)),
        (b, fork.leaf(6), fork.inclusion_proof(6)),
    )


def test_same_size_different_roots_is_a_split_view() -> None:
    p = roots_proof()
    p.verify(CITY.public_key)
    assert p.origin == ORIGIN
    d = p.to_dict()
    assert d["type"] == "split-view"
    assert d["kind"] == "roots"
    back = SplitViewProof.from_dict(d)
    assert back == p
    back.verify(CITY.public_key)
    assert back.id == p.id
    # The order of the halves does not matter: the canonical form is the same.
    a, b = p.checkpoints
    assert SplitViewProof.of_roots(b, a) == p
    # Cosignatures are dropped from the evidence.
    cosigned = a.with_signature(cosign(a.checkpoint, WITNESS_NAME, WITNESS, 1))
    assert SplitViewProof.of_roots(cosigned, b) == p


def test_different_leaves_at_one_index_is_a_split_view() -> None:
    p = inclusion_proof_pair()
    p.verify(CITY.public_key)
    d = p.to_dict()
    assert d["kind"] == "inclusion"
    assert d["index"] == 6
    back = SplitViewProof.from_dict(d)
    assert back == p
    back.verify(CITY.public_key)


def test_a_split_view_fails_when_either_half_is_altered() -> None:
    for p in (roots_proof(), inclusion_proof_pair()):
        d = p.to_dict()
        for i in (0, 1):
            # Re-signed by another key.
            other = sign_checkpoint(p.checkpoints[i].checkpoint, WITNESS)
            cps = list(p.checkpoints)
            cps[i] = other
            with pytest.raises(ProofError, match=f"checkpoint {i}"):
                SplitViewProof(p.kind, (cps[0], cps[1]), p.index, p.leaves, p.proofs).verify(
                    CITY.public_key
                )
            # The checkpoint's body altered under its signature.
            t = d["checkpoints"][i]
            body, sigs = t.split("\n\n")
            lines = body.split("\n")
            lines[1] = str(int(lines[1]) + 1)
            forged = SignedCheckpoint.parse("\n".join(lines) + "\n\n" + sigs)
            cps = list(p.checkpoints)
            cps[i] = forged
            with pytest.raises(ProofError, match="does not verify"):
                SplitViewProof(p.kind, (cps[0], cps[1]), p.index, p.leaves, p.proofs).verify(
                    CITY.public_key
                )
        with pytest.raises(ProofError):
            p.verify(WITNESS.public_key)


def test_an_inclusion_split_view_fails_when_a_proof_or_leaf_is_altered() -> None:
    p = inclusion_proof_pair()
    assert p.leaves is not None
    assert p.proofs is not None
    for i in (0, 1):
        proofs = [list(p.proofs[0]), list(p.proofs[1])]
        proofs[i][0] = bytes([proofs[i][0][0] ^ 1]) + proofs[i][0][1:]
        bad = SplitViewProof(
            "inclusion", p.checkpoints, p.index, p.leaves, (tuple(proofs[0]), tuple(proofs[1]))
        )
        with pytest.raises(ProofError, match=f"inclusion proof {i}"):
            bad.verify(CITY.public_key)
        leaves = list(p.leaves)
        leaves[i] = leaf_hash(b"something else")
        bad = SplitViewProof("inclusion", p.checkpoints, p.index, (leaves[0], leaves[1]), p.proofs)
        with pytest.raises(ProofError, match=f"inclusion proof {i}"):
            bad.verify(CITY.public_key)
    for index in (5, 7, 12, None):
        bad = SplitViewProof("inclusion", p.checkpoints, index, p.leaves, p.proofs)
        with pytest.raises(ProofError):
            bad.verify(CITY.public_key)
    same = SplitViewProof("inclusion", p.checkpoints, p.index, (p.leaves[0], p.leaves[0]), p.proofs)
    with pytest.raises(ProofError, match="same leaf"):
        same.verify(CITY.public_key)
    with pytest.raises(ProofError, match="needs leaves"):
        SplitViewProof("inclusion", p.checkpoints, 6).to_dict()
    with pytest.raises(ProofError, match="unknown kind"):
        SplitViewProof("inclusion", p.checkpoints, 6).verify(CITY.public_key)


def test_honest_checkpoints_are_no_split_view() -> None:
    tree = tree_of(12)
    a, b = signed(tree, 6), signed(tree, 12)
    # Same size, same root (say, re-signed with an extension line): nothing to see.
    with pytest.raises(ProofError, match="same root"):
        SplitViewProof.of_roots(a, a)
    with pytest.raises(ProofError, match="same root"):
        SplitViewProof("roots", (a, a)).verify(CITY.public_key)
    # Two honest inclusion proofs at one index agree on the leaf.
    with pytest.raises(ProofError, match="same leaf"):
        SplitViewProof.of_inclusions(
            3,
            (a, tree.leaf(3), tree.inclusion_proof(3, 6)),
            (b, tree.leaf(3), tree.inclusion_proof(3, 12)),
        )
    # Different origins are different logs.
    other = sign_checkpoint(
        checkpoint_of(tree_of(12, fork_at=0), 12, origin="other.example/log"), CITY
    )
    with pytest.raises(ProofError, match="different origins"):
        SplitViewProof.of_roots(b, other)
    with pytest.raises(ProofError, match="different origins"):
        SplitViewProof.of_inclusions(0, (b, tree.leaf(0), []), (other, tree.leaf(1), []))
    # A checkpoint with no signature under its origin's name is no evidence.
    with pytest.raises(ProofError, match="no signature under"):
        SplitViewProof.of_roots(SignedCheckpoint(b.checkpoint, ()), signed(tree_of(12, fork_at=3)))


def test_a_failing_consistency_proof_is_not_a_split_view() -> None:
    # Two honest checkpoints of one log and a forged "consistency proof" between them that
    # fails. Anyone can forge such a proof, so it must not convict the log of anything.
    tree = tree_of(10)
    a, b = signed(tree, 5), signed(tree, 10)
    bogus = [leaf_hash(b"forged %d" % i) for i in range(4)]
    with pytest.raises(ProofError):
        verify_consistency(5, 10, a.checkpoint.root, b.checkpoint.root, bogus)
    # Not as a root conflict: the sizes differ.
    with pytest.raises(ProofError, match="sizes 5 and 10"):
        SplitViewProof.of_roots(a, b)
    with pytest.raises(ProofError, match="different sizes"):
        SplitViewProof("roots", (a, b)).verify(CITY.public_key)
    # Not as an inclusion conflict: the forged hashes do not prove any leaf under either root.
    forged = SplitViewProof.of_inclusions(
        2, (a, bogus[0], bogus[1:3]), (b, tree.leaf(2), tree.inclusion_proof(2, 10))
    )
    with pytest.raises(ProofError, match="inclusion proof"):
        forged.verify(CITY.public_key)
    # And there is no wire form for it.
    d = {
        "type": "split-view",
        "kind": "consistency",
        "origin": ORIGIN,
        "checkpoints": [a.to_text(), b.to_text()],
        "proof": [base64.b64encode(x).decode() for x in bogus],
    }
    with pytest.raises(ValidationError, match="kind"):
        SplitViewProof.from_dict(d)
    with pytest.raises(ProofError, match="unknown kind"):
        SplitViewProof("consistency", (a, b)).verify(CITY.public_key)  # type: ignore[arg-type]


def test_split_view_from_dict_is_strict() -> None:
    good = inclusion_proof_pair().to_dict()
    roots = roots_proof().to_dict()
    b64 = base64.b64encode
    cases: list[tuple[object, str]] = [
        ([], "type"),
        ({**good, "type": "equivocation"}, "type"),
        ({**good, "extra": 1}, "exactly"),
        ({k: v for k, v in good.items() if k != "index"}, "exactly"),
        ({**roots, "index": 1}, "exactly"),
        ({**good, "checkpoints": good["checkpoints"][:1]}, "two signed"),
        ({**good, "checkpoints": [1, 2]}, "two signed"),
        ({**good, "checkpoints": ["junk", good["checkpoints"][1]]}, r"checkpoints\[0\]"),
        ({**good, "origin": "other.example/log"}, "split_view.origin"),
        ({**good, "index": -1}, "split_view.index"),
        ({**good, "leaves": good["leaves"][:1]}, "split_view.leaves"),
        ({**good, "leaves": ["AAAA", good["leaves"][1]]}, r"leaves\[0\]"),
        ({**good, "leaves": [good["leaves"][0]] * 2}, "same leaf"),
        ({**good, "proofs": "x"}, "split_view.proofs"),
        ({**good, "proofs": [good["proofs"][0], "x"]}, r"proofs\[1\]"),
        ({**good, "proofs": [good["proofs"][0], [b64(b"x").decode()]]}, r"proofs\[1\]\[0\]"),
        ({**good, "proofs": [good["proofs"][0], [good["leaves"][0]] * 65]}, r"proofs\[1\]"),
        ({**roots, "checkpoints": roots["checkpoints"][::-1]}, "canonical"),
        (
            {
                **good,
                "checkpoints": good["checkpoints"][::-1],
                "leaves": good["leaves"][::-1],
                "proofs": good["proofs"][::-1],
            },
            "canonical",
        ),
    ]
    cosigned = SignedCheckpoint.parse(roots["checkpoints"][0])
    cosigned = cosigned.with_signature(cosign(cosigned.checkpoint, WITNESS_NAME, WITNESS, 1))
    cases.append(
        ({**roots, "checkpoints": [cosigned.to_text(), roots["checkpoints"][1]]}, "canonical")
    )
    for d, needle in cases:
        with pytest.raises(ValidationError, match=needle):
            SplitViewProof.from_dict(d)


# --- test vectors (tests/vectors/checkpoint.json, copied into docs/PROTOCOL.md) -----------------

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "checkpoint.json"
RFC_LEAVES = [
    bytes.fromhex(x)
    for x in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
VECTOR_TIME = 1_700_000_000


def build_vectors() -> dict[str, Any]:
    """The checkpoint vectors, rebuilt (Ed25519 signing is deterministic)."""
    tree = MemoryTree(leaf_hash(d) for d in RFC_LEAVES)
    cp = checkpoint_of(tree)
    sc = sign_checkpoint(cp, CITY)
    line = cosign(cp, WITNESS_NAME, WITNESS, VECTOR_TIME)
    cosigned = sc.with_signature(line)
    event_id = hashlib.sha256(b"example event").hexdigest()
    receipt = Receipt.create(CITY, ORIGIN, event_id, 7, time=VECTOR_TIME, size=8)
    batch_hashes = [leaf_hash(d) for d in RFC_LEAVES[5:8]]
    batch = BatchReceipt.create(CITY, ORIGIN, 5, batch_hashes, time=VECTOR_TIME)
    batched = batch.receipt(
        hashlib.sha256(b"example batch event").hexdigest(),
        6,
        batch_hashes[1],
        MemoryTree(batch_hashes).inclusion_proof(1),
    )
    fork = MemoryTree(leaf_hash(d) for d in [*RFC_LEAVES[:5], b"forked"])
    fork_sc = sign_checkpoint(checkpoint_of(fork), CITY)
    roots = SplitViewProof.of_roots(
        sc,
        sign_checkpoint(
            checkpoint_of(MemoryTree(leaf_hash(d) for d in [*RFC_LEAVES[:7], b"forked"])), CITY
        ),
    )
    incl = SplitViewProof.of_inclusions(
        5,
        (sc, tree.leaf(5), tree.inclusion_proof(5)),
        (fork_sc, fork.leaf(5), fork.inclusion_proof(5)),
    )
    return {
        "description": "Liquide v1 checkpoints (C2SP tlog-checkpoint signed notes, Ed25519 "
        "type 0x01, key name = origin), a C2SP cosignature/v1 (type 0x04), a receipt (Liquide "
        "context 'receipt' over the canonical unsigned form), a batch receipt (context "
        "'receipt-batch' over leaves 5..7, and the receipt of leaf 6 with its path) and "
        "split-view proofs. The tree is "
        "the 8-leaf tree of merkle.json. City key from seed 00..1f, witness key from 20..3f.",
        "city": {
            "seed_hex": CITY.seed.hex(),
            "public_key": CITY.public_key.to_text(),
            "origin": ORIGIN,
            "vkey": CITY.public_key.to_vkey(ORIGIN),
            "key_id_hex": CITY.public_key.note_key_id(ORIGIN).hex(),
        },
        "witness": {
            "seed_hex": WITNESS.seed.hex(),
            "public_key": WITNESS.public_key.to_text(),
            "name": WITNESS_NAME,
            "vkey": cosigner_vkey(WITNESS_NAME, WITNESS.public_key),
            "key_id_hex": cosigner_key_id(WITNESS_NAME, WITNESS.public_key).hex(),
        },
        "checkpoint": {
            "size": cp.size,
            "root_hex": cp.root.hex(),
            "body": cp.body().decode(),
            "signature_hex": sc.signatures[0].signature.hex(),
            "signed_note": sc.to_text(),
        },
        "cosignature": {
            "time": VECTOR_TIME,
            "signed_message": cosignature_message(cp, VECTOR_TIME).decode(),
            "signature_hex": Cosignature.from_line(line).signature.hex(),
            "line": line,
            "cosigned_note": cosigned.to_text(),
        },
        "receipt": {
            "unsigned": receipt.unsigned_bytes().decode(),
            "signed_message_hex": (b"liquide/v1/receipt\n" + receipt.unsigned_bytes()).hex(),
            "dict": receipt.to_dict(),
        },
        "batch_receipt": {
            "leaves_hex": [d.hex() for d in RFC_LEAVES[5:8]],
            "unsigned": batch.unsigned_bytes().decode(),
            "signed_message_hex": (b"liquide/v1/receipt-batch\n" + batch.unsigned_bytes()).hex(),
            "dict": batched.to_dict(),
        },
        "split_view_roots": roots.to_dict(),
        "split_view_inclusion": incl.to_dict(),
    }


def test_vectors_file_matches() -> None:
    if os.environ.get("LIQUIDE_WRITE_VECTORS"):
        VECTORS.write_text(json.dumps(build_vectors(), indent=2, ensure_ascii=False) + "\n")
    assert json.loads(VECTORS.read_text()) == build_vectors()


def test_vectors_check_independently() -> None:
    v = json.loads(VECTORS.read_text())
    city = SecretKey(bytes.fromhex(v["city"]["seed_hex"])).public_key
    assert city.to_text() == v["city"]["public_key"]
    assert PublicKey.from_vkey(v["city"]["vkey"]) == (v["city"]["origin"], city)
    witness = SecretKey(bytes.fromhex(v["witness"]["seed_hex"])).public_key
    assert parse_cosigner_vkey(v["witness"]["vkey"]) == (v["witness"]["name"], witness)
    c = v["checkpoint"]
    # The tree is merkle.json's: its root at size 8 is the published RFC 6962 one.
    assert c["root_hex"] == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    root_b64 = base64.b64encode(bytes.fromhex(c["root_hex"])).decode()
    assert c["body"] == f"{v['city']['origin']}\n{c['size']}\n{root_b64}\n"
    blob = bytes.fromhex(v["city"]["key_id_hex"]) + bytes.fromhex(c["signature_hex"])
    assert (
        c["signed_note"]
        == f"{c['body']}\n— {v['city']['origin']} {base64.b64encode(blob).decode()}\n"
    )
    city.verify_raw(c["body"].encode(), bytes.fromhex(c["signature_hex"]))
    s = v["cosignature"]
    assert s["signed_message"] == f"cosignature/v1\ntime {s['time']}\n{c['body']}"
    witness.verify_raw(s["signed_message"].encode(), bytes.fromhex(s["signature_hex"]))
    cblob = (
        bytes.fromhex(v["witness"]["key_id_hex"])
        + s["time"].to_bytes(8, "big")
        + bytes.fromhex(s["signature_hex"])
    )
    assert s["line"] == f"— {v['witness']['name']} {base64.b64encode(cblob).decode()}\n"
    assert s["cosigned_note"] == c["signed_note"] + s["line"]
    sc = SignedCheckpoint.parse(s["cosigned_note"])
    assert sc.verify(v["city"]["origin"], city).size == c["size"]
    assert sc.verify_cosignature(v["witness"]["name"], witness).time == s["time"]
    r = v["receipt"]
    unsigned = {k: x for k, x in r["dict"].items() if k != "sig"}
    assert r["unsigned"] == json.dumps(unsigned, sort_keys=True, separators=(",", ":"))
    message = bytes.fromhex(r["signed_message_hex"])
    assert message == b"liquide/v1/receipt\n" + r["unsigned"].encode()
    city.verify_raw(message, base64.b64decode(r["dict"]["sig"]))
    Receipt.from_dict(r["dict"]).verify(city)
    b = v["batch_receipt"]
    d = b["dict"]
    leaves = [bytes.fromhex(x) for x in b["leaves_hex"]]
    hashes = [hashlib.sha256(b"\x00" + x).digest() for x in leaves]

    def node(left: bytes, right: bytes) -> bytes:
        return hashlib.sha256(b"\x01" + left + right).digest()

    root = node(node(hashes[0], hashes[1]), hashes[2])  # RFC 9162: split 3 leaves as 2 + 1
    statement = {
        "count": d["batch"]["count"],
        "first": d["batch"]["first"],
        "origin": d["origin"],
        "root": base64.b64encode(root).decode(),
        "time": d["time"],
        "v": 1,
    }
    assert b["unsigned"] == json.dumps(statement, sort_keys=True, separators=(",", ":"))
    message = bytes.fromhex(b["signed_message_hex"])
    assert message == b"liquide/v1/receipt-batch\n" + b["unsigned"].encode()
    city.verify_raw(message, base64.b64decode(d["batch"]["sig"]))
    k = d["index"] - d["batch"]["first"]
    assert (k, d["leaf_hash"]) == (1, base64.b64encode(hashes[1]).decode())
    assert [base64.b64decode(h) for h in d["path"]] == [hashes[0], hashes[2]]
    BatchedReceipt.from_dict(d).verify(city, leaf=leaves[1])
    for name in ("split_view_roots", "split_view_inclusion"):
        SplitViewProof.from_dict(v[name]).verify(city)


def test_protocol_md_carries_the_vectors() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md").read_text()
    v = json.loads(VECTORS.read_text())
    for text in (
        v["checkpoint"]["signed_note"],
        v["cosignature"]["signed_message"],
        v["cosignature"]["cosigned_note"],
        v["receipt"]["unsigned"],
        v["batch_receipt"]["unsigned"],
        v["city"]["vkey"],
        v["witness"]["vkey"],
    ):
        assert text in doc
    assert json.dumps(v["receipt"]["dict"], indent=2) in doc
    assert json.dumps(v["batch_receipt"]["dict"], indent=2) in doc


# --- interoperability with Go's golang.org/x/mod/sumdb (note and tlog) ---------------------------

GOPATH = Path("/usr/share/gocode")  # where Debian installs Go library sources
GO_SRC = GOPATH / "src" / "golang.org" / "x" / "mod" / "sumdb"
GO_CHECK = r"""// Go's golang.org/x/mod/sumdb/note and tlog, run on Liquide's vectors (see the test).
package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func must(err error) {
	if err != nil {
		fmt.Println("FAIL:", err)
		os.Exit(1)
	}
}

func h(s string) tlog.Hash {
	b, err := hex.DecodeString(s)
	must(err)
	var x tlog.Hash
	copy(x[:], b)
	return x
}

func main() {
	var cp map[string]any
	b, _ := os.ReadFile(os.Args[1])
	must(json.Unmarshal(b, &cp))
	city := cp["city"].(map[string]any)
	v, err := note.NewVerifier(city["vkey"].(string))
	must(err)
	c := cp["checkpoint"].(map[string]any)
	n, err := note.Open([]byte(c["signed_note"].(string)), note.VerifierList(v))
	must(err)
	if n.Text != c["body"].(string) {
		must(fmt.Errorf("text mismatch"))
	}
	cs := cp["cosignature"].(map[string]any)
	n2, err := note.Open([]byte(cs["cosigned_note"].(string)), note.VerifierList(v))
	must(err)
	fmt.Println("note.Open ok; verified", len(n2.Sigs), "unverified", len(n2.UnverifiedSigs))
	// Sign with Go and compare bytes.
	seed, _ := hex.DecodeString(city["seed_hex"].(string))
	origin := city["origin"].(string)
	skey := fmt.Sprintf("PRIVATE+KEY+%s+%s+%s", origin, city["key_id_hex"].(string),
		base64.StdEncoding.EncodeToString(append([]byte{1}, seed...)))
	s, err := note.NewSigner(skey)
	must(err)
	msg, err := note.Sign(&note.Note{Text: c["body"].(string)}, s)
	must(err)
	if string(msg) != c["signed_note"].(string) {
		must(fmt.Errorf("Go signs differently:\n%s", msg))
	}
	fmt.Println("note.Sign byte-identical")
	// Split view notes too.
	for _, k := range []string{"split_view_roots", "split_view_inclusion"} {
		sv := cp[k].(map[string]any)
		for _, t := range sv["checkpoints"].([]any) {
			_, err := note.Open([]byte(t.(string)), note.VerifierList(v))
			must(err)
		}
	}
	// Merkle proofs.
	for _, f := range os.Args[2:] {
		var m map[string]any
		b, _ := os.ReadFile(f)
		must(json.Unmarshal(b, &m))
		roots := m["roots_hex"].([]any)
		leaves := m["leaf_hashes_hex"].([]any)
		ni, nc := 0, 0
		for _, e := range m["inclusion"].([]any) {
			e := e.(map[string]any)
			idx, size := int64(e["index"].(float64)), int64(e["size"].(float64))
			var p tlog.RecordProof
			for _, x := range e["proof_hex"].([]any) {
				p = append(p, h(x.(string)))
			}
			must(tlog.CheckRecord(p, size, h(roots[size].(string)), idx, h(leaves[idx].(string))))
			ni++
		}
		for _, e := range m["consistency"].([]any) {
			e := e.(map[string]any)
			o, nn := int64(e["old_size"].(float64)), int64(e["new_size"].(float64))
			var p tlog.TreeProof
			for _, x := range e["proof_hex"].([]any) {
				p = append(p, h(x.(string)))
			}
			must(tlog.CheckTree(p, nn, h(roots[nn].(string)), o, h(roots[o].(string))))
			nc++
		}
		fmt.Printf("%s: tlog accepted %d inclusion and %d consistency proofs\n", f, ni, nc)
	}
}
"""


@pytest.mark.skipif(
    os.environ.get("CI") != "true"
    and (shutil.which("go") is None or not (GO_SRC / "note").is_dir()),
    reason="needs a Go toolchain and the golang.org/x/mod sources in GOPATH "
    "(Debian: apt-get install golang-go golang-golang-x-mod-dev)",
)
def test_go_note_and_tlog_accept_liquide_output(tmp_path: Path) -> None:
    # Go's note.Open must accept the vectors' checkpoints, note.Sign must produce the same
    # bytes, and tlog.CheckRecord / CheckTree must accept the proofs of merkle.json and of a
    # random 500-leaf tree. The last run feeds one tampered proof, which Go must reject.
    tree = MemoryTree(leaf_hash(i.to_bytes(4, "big")) for i in range(500))
    rng = random.Random(1)
    incl: list[dict[str, Any]] = []
    cons: list[dict[str, Any]] = []
    for _ in range(500):
        s = rng.randint(1, tree.size)
        i, old = rng.randrange(s), rng.randint(1, s)
        incl.append(
            {"index": i, "size": s, "proof_hex": [p.hex() for p in tree.inclusion_proof(i, s)]}
        )
        cons.append(
            {
                "old_size": old,
                "new_size": s,
                "proof_hex": [p.hex() for p in tree.consistency_proof(old, s)],
            }
        )
    doc = {
        "roots_hex": [tree.root(k).hex() for k in range(tree.size + 1)],
        "leaf_hashes_hex": [tree.leaf(i).hex() for i in range(tree.size)],
        "inclusion": incl,
        "consistency": cons,
    }
    (tmp_path / "random.json").write_text(json.dumps(doc))
    bad: list[str] = incl[7]["proof_hex"]
    bad[0] = ("1" if bad[0][0] == "0" else "0") + bad[0][1:]
    (tmp_path / "tampered.json").write_text(json.dumps(doc))
    (tmp_path / "main.go").write_text(GO_CHECK)
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": str(GOPATH)}
    if not (env.get("GOCACHE") or env.get("XDG_CACHE_HOME") or env.get("HOME")):
        env["GOCACHE"] = str(tmp_path / "gocache")  # Go needs somewhere to cache builds
    merkle = VECTORS.parent / "merkle.json"

    def go(*files: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["go", "run", "main.go", str(VECTORS), *map(str, files)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )

    ok = go(merkle, tmp_path / "random.json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "note.Sign byte-identical" in ok.stdout
    assert "accepted 500 inclusion and 500 consistency proofs" in ok.stdout
    tampered = go(tmp_path / "tampered.json")
    assert tampered.returncode != 0
    assert "invalid transparency proof" in tampered.stdout

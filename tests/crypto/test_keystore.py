"""The encrypted keystore: round trips, every failure it must name, and the file rules."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto import (
    KDF_LEVELS,
    KdfParams,
    Keystore,
    KeystoreError,
    KeystoreExistsError,
    KeystoreFormatError,
    KeystoreNotFoundError,
    KeystorePermissionError,
    KeystoreVersionError,
    SecretKey,
    WeakPassphraseError,
    WrongPassphraseError,
    read_keystore,
    read_private_file,
    write_keystore,
    write_private_file,
)

FAST = KDF_LEVELS["min"]


@pytest.fixture
def key() -> SecretKey:
    return SecretKey(bytes(range(32)))


@pytest.fixture
def sealed(key: SecretKey) -> Keystore:
    return Keystore.seal(key, "correct horse battery staple", kdf=FAST)


def _doc(ks: Keystore) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(ks.to_bytes())
    return doc


def _load(doc: object) -> Keystore:
    return Keystore.from_bytes(json.dumps(doc).encode(), source="k.json")


# Round trips ----------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.binary(min_size=32, max_size=32), passphrase=st.text(min_size=1, max_size=40))
def test_roundtrip_through_bytes(seed: bytes, passphrase: str) -> None:
    key = SecretKey(seed)
    ks = Keystore.seal(key, passphrase, kdf=FAST)
    again = Keystore.from_bytes(ks.to_bytes())
    assert again == ks
    assert again.unlock(passphrase) == key
    assert again.public == key.public_key


def test_document_is_self_describing(sealed: Keystore, key: SecretKey) -> None:
    doc = _doc(sealed)
    assert doc["version"] == 1
    assert doc["kdf"]["alg"] == "argon2id"
    assert (doc["kdf"]["opslimit"], doc["kdf"]["memlimit"]) == (FAST.opslimit, FAST.memlimit)
    assert len(base64.b64decode(doc["kdf"]["salt"])) == 16
    assert doc["cipher"]["alg"] == "xsalsa20poly1305"
    assert len(base64.b64decode(doc["cipher"]["nonce"])) == 24
    assert len(base64.b64decode(doc["cipher"]["ciphertext"])) == 48
    assert doc["public"] == key.public_key.to_text()
    assert doc["fingerprint"] == key.public_key.fingerprint() == sealed.fingerprint
    # The seed never appears in clear.
    assert key.seed not in sealed.to_bytes()
    assert base64.b64encode(key.seed) not in sealed.to_bytes()


def test_fresh_salt_and_nonce_each_time(key: SecretKey) -> None:
    a = Keystore.seal(key, "pw", kdf=FAST)
    b = Keystore.seal(key, "pw", kdf=FAST)
    assert a.salt != b.salt
    assert a.nonce != b.nonce
    assert a.ciphertext != b.ciphertext


def test_default_kdf_is_moderate_not_min() -> None:
    # Tests pass kdf=FAST explicitly; the default must stay the strong one.
    defaults = Keystore.seal.__kwdefaults__
    assert defaults is not None
    default = defaults["kdf"]
    assert default == KDF_LEVELS["moderate"]
    assert default.memlimit >= 256 * 1024 * 1024


def test_passphrase_is_nfc_normalised(key: SecretKey) -> None:
    ks = Keystore.seal(key, "caf\u00e9", kdf=FAST)  # precomposed é
    assert ks.unlock("cafe\u0301") == key  # e + combining acute
    assert ks.unlock("caf\u00e9".encode()) == key


def test_bytes_passphrase(key: SecretKey) -> None:
    ks = Keystore.seal(key, b"\xff\x00raw", kdf=FAST)
    assert ks.unlock(b"\xff\x00raw") == key


# Passphrase errors ----------------------------------------------------------------------------


def test_wrong_passphrase(sealed: Keystore) -> None:
    with pytest.raises(WrongPassphraseError, match="wrong passphrase") as info:
        sealed.unlock("Correct horse battery staple", source="my.key")
    assert info.value.code == "wrong_passphrase"
    assert "my.key" in info.value.message
    assert info.value.hint


def test_empty_passphrase_refused(key: SecretKey) -> None:
    with pytest.raises(WeakPassphraseError, match="empty"):
        Keystore.seal(key, "", kdf=FAST)
    with pytest.raises(WeakPassphraseError):
        Keystore.seal(key, b"", kdf=FAST)


def test_tampered_ciphertext_fails_to_open(sealed: Keystore) -> None:
    doc = _doc(sealed)
    ct = bytearray(base64.b64decode(doc["cipher"]["ciphertext"]))
    ct[5] ^= 1
    doc["cipher"]["ciphertext"] = base64.b64encode(bytes(ct)).decode()
    with pytest.raises(WrongPassphraseError, match="altered"):
        _load(doc).unlock("correct horse battery staple")


def test_swapped_public_key_is_detected(sealed: Keystore) -> None:
    # Someone who can write the file replaces the public key (say, with theirs, hoping the
    # citizen enrols it): opening the key must notice.
    other = SecretKey(b"\x07" * 32).public_key
    doc = _doc(sealed)
    doc["public"] = other.to_text()
    doc["fingerprint"] = other.fingerprint()
    with pytest.raises(KeystoreFormatError, match="does not match the encrypted secret key"):
        _load(doc).unlock("correct horse battery staple")


# Format errors --------------------------------------------------------------------------------


def test_truncated_file(sealed: Keystore) -> None:
    data = sealed.to_bytes()
    for cut in (1, len(data) // 2, len(data) - 3):
        with pytest.raises(KeystoreFormatError, match=r"not valid JSON \(truncated"):
            Keystore.from_bytes(data[:cut], source="k.json")


def test_empty_file() -> None:
    with pytest.raises(KeystoreFormatError, match="empty"):
        Keystore.from_bytes(b"  \n")


def test_not_utf8() -> None:
    with pytest.raises(KeystoreFormatError, match="UTF-8"):
        Keystore.from_bytes(b"\xff\xfe{}")


def test_not_an_object() -> None:
    with pytest.raises(KeystoreFormatError, match="not a JSON object"):
        Keystore.from_bytes(b"[1, 2]")
    with pytest.raises(KeystoreFormatError, match="no 'version'"):
        Keystore.from_bytes(b"{}")


def test_duplicate_field(sealed: Keystore) -> None:
    data = sealed.to_bytes().replace(b'"version": 1', b'"version": 1, "version": 1')
    with pytest.raises(KeystoreFormatError, match="duplicate field 'version'"):
        Keystore.from_bytes(data)


@pytest.mark.parametrize("version", [0, 2, 99])
def test_unknown_version(sealed: Keystore, version: int) -> None:
    doc = _doc(sealed)
    doc["version"] = version
    with pytest.raises(KeystoreVersionError, match=f"unsupported keystore version {version}") as i:
        _load(doc)
    assert i.value.code == "keystore_unsupported"
    assert isinstance(i.value, KeystoreFormatError)


@pytest.mark.parametrize("version", ["1", True, 1.0, None])
def test_version_must_be_an_integer(sealed: Keystore, version: object) -> None:
    doc = _doc(sealed)
    doc["version"] = version
    with pytest.raises(KeystoreFormatError, match="version must be an integer"):
        _load(doc)


def test_unknown_algorithms(sealed: Keystore) -> None:
    doc = _doc(sealed)
    doc["kdf"]["alg"] = "scrypt"
    with pytest.raises(KeystoreVersionError, match="unsupported key derivation 'scrypt'"):
        _load(doc)
    doc = _doc(sealed)
    doc["cipher"]["alg"] = "aes-256-gcm"
    with pytest.raises(KeystoreVersionError, match="unsupported cipher 'aes-256-gcm'"):
        _load(doc)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (("kdf",), "missing field 'kdf'"),
        (("cipher",), "missing field 'cipher'"),
        (("public",), "missing field 'public'"),
        (("fingerprint",), "missing field 'fingerprint'"),
        (("kdf", "salt"), "missing field 'kdf.salt'"),
        (("kdf", "opslimit"), "missing field 'kdf.opslimit'"),
        (("cipher", "nonce"), "missing field 'cipher.nonce'"),
        (("cipher", "ciphertext"), "missing field 'cipher.ciphertext'"),
    ],
)
def test_missing_fields_are_named(sealed: Keystore, path: tuple[str, ...], message: str) -> None:
    doc = _doc(sealed)
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    del parent[path[-1]]
    with pytest.raises(KeystoreFormatError, match=message):
        _load(doc)


def test_unknown_fields_are_named(sealed: Keystore) -> None:
    doc = _doc(sealed)
    doc["comment"] = "hi"
    with pytest.raises(KeystoreFormatError, match="unknown field 'comment'"):
        _load(doc)
    doc = _doc(sealed)
    doc["kdf"]["parallelism"] = 4
    with pytest.raises(KeystoreFormatError, match=r"unknown field 'kdf\.parallelism'"):
        _load(doc)


def test_sections_must_be_objects(sealed: Keystore) -> None:
    doc = _doc(sealed)
    doc["kdf"] = "argon2id"
    with pytest.raises(KeystoreFormatError, match="kdf must be a JSON object"):
        _load(doc)


@pytest.mark.parametrize(
    ("section", "field", "value", "message"),
    [
        ("kdf", "salt", "!!!!", "kdf.salt is not valid base64"),
        ("kdf", "salt", 12, "kdf.salt must be a base64 string"),
        ("kdf", "salt", base64.b64encode(b"x" * 8).decode(), r"kdf.salt must be 16 bytes, got 8"),
        ("cipher", "nonce", base64.b64encode(b"x" * 23).decode(), "cipher.nonce must be 24"),
        (
            "cipher",
            "ciphertext",
            base64.b64encode(b"x" * 47).decode(),
            r"cipher.ciphertext must be 48 bytes, got 47 \(truncated\?\)",
        ),
        ("kdf", "opslimit", "3", "kdf.opslimit must be an integer"),
        ("kdf", "memlimit", False, "kdf.memlimit must be an integer"),
        ("kdf", "opslimit", 0, "kdf parameters out of range: opslimit"),
        ("kdf", "memlimit", 2**40, "kdf parameters out of range: memlimit"),
    ],
)
def test_bad_field_values_are_named(
    sealed: Keystore, section: str, field: str, value: object, message: str
) -> None:
    doc = _doc(sealed)
    doc[section][field] = value
    with pytest.raises(KeystoreFormatError, match=message):
        _load(doc)


def test_bad_public_key_and_fingerprint(sealed: Keystore) -> None:
    doc = _doc(sealed)
    text = doc["public"]
    doc["public"] = text[:-1] + ("q" if text[-1] != "q" else "p")
    with pytest.raises(KeystoreFormatError, match=r"public is not a valid public key: .*checksum"):
        _load(doc)
    doc = _doc(sealed)
    doc["public"] = 7
    with pytest.raises(KeystoreFormatError, match="public must be"):
        _load(doc)
    doc = _doc(sealed)
    doc["fingerprint"] = "aaaa-aaaa"
    with pytest.raises(KeystoreFormatError, match="fingerprint does not match"):
        _load(doc)


def test_from_dict(sealed: Keystore) -> None:
    assert Keystore.from_dict(sealed.to_dict()) == sealed
    with pytest.raises(KeystoreFormatError):
        Keystore.from_dict([])


def test_kdf_params_bounds() -> None:
    with pytest.raises(ValueError, match="opslimit"):
        KdfParams(0, FAST.memlimit)
    with pytest.raises(ValueError, match="memlimit"):
        KdfParams(1, 1024)
    assert set(KDF_LEVELS) == {"interactive", "moderate", "sensitive", "min"}


def test_all_errors_are_keystore_errors() -> None:
    for cls in (
        KeystoreExistsError,
        KeystoreFormatError,
        KeystoreNotFoundError,
        KeystorePermissionError,
        KeystoreVersionError,
        WeakPassphraseError,
        WrongPassphraseError,
    ):
        assert issubclass(cls, KeystoreError)
    codes = {
        c.code
        for c in (
            KeystoreExistsError,
            KeystoreFormatError,
            KeystoreNotFoundError,
            KeystorePermissionError,
            KeystoreVersionError,
            WeakPassphraseError,
            WrongPassphraseError,
        )
    }
    assert len(codes) == 7


# Files ----------------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_file_roundtrip_mode_0600(tmp_path: Path, sealed: Keystore, key: SecretKey) -> None:
    path = tmp_path / "default.key"
    old = os.umask(0)  # even with a permissive umask the file is private
    try:
        write_keystore(path, sealed)
    finally:
        os.umask(old)
    assert _mode(path) == 0o600
    assert read_keystore(path) == sealed
    assert read_keystore(path).unlock("correct horse battery staple") == key
    # No temporary file left behind.
    assert [p.name for p in tmp_path.iterdir()] == ["default.key"]


def test_existing_file_needs_overwrite(tmp_path: Path, sealed: Keystore) -> None:
    path = tmp_path / "default.key"
    write_keystore(path, sealed)
    before = path.read_bytes()
    other = Keystore.seal(SecretKey(b"\x09" * 32), "x", kdf=FAST)
    with pytest.raises(KeystoreExistsError, match="already exists") as info:
        write_keystore(path, other)
    assert "--force" in (info.value.hint or "")
    assert path.read_bytes() == before
    write_keystore(path, other, overwrite=True)
    assert read_keystore(path) == other
    assert _mode(path) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["default.key"]


def test_existing_symlink_is_not_followed(tmp_path: Path, sealed: Keystore) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    link = tmp_path / "default.key"
    link.symlink_to(victim)
    with pytest.raises(KeystoreExistsError):
        write_keystore(link, sealed)
    assert victim.read_text() == "keep me"


def test_race_between_check_and_link_is_caught(
    tmp_path: Path, sealed: Keystore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process creates the file after our existence check: the hard link refuses.
    path = tmp_path / "default.key"
    real_link = os.link

    def racing_link(src: str, dst: str) -> None:
        Path(dst).write_text("theirs")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", racing_link)
    with pytest.raises(KeystoreExistsError):
        write_keystore(path, sealed)
    assert path.read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["default.key"]


def test_filesystem_without_hard_links(
    tmp_path: Path, sealed: Keystore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_link(src: str, dst: str) -> None:
        raise PermissionError("operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    path = tmp_path / "default.key"
    write_keystore(path, sealed)
    assert read_keystore(path) == sealed
    assert _mode(path) == 0o600

    # The fallback still never replaces an existing file.
    calls = {"n": 0}
    real_lexists = os.path.lexists

    def late_lexists(p: object) -> bool:
        calls["n"] += 1
        return False if calls["n"] == 1 else real_lexists(p)  # type: ignore[arg-type]

    monkeypatch.setattr(os.path, "lexists", late_lexists)
    with pytest.raises(KeystoreExistsError):
        write_keystore(path, Keystore.seal(SecretKey(b"\x01" * 32), "y", kdf=FAST))
    assert read_keystore(path) == sealed


def test_failed_write_leaves_nothing(
    tmp_path: Path, sealed: Keystore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_fsync(fd: int) -> None:
        raise OSError(5, "I/O error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="I/O error"):
        write_keystore(tmp_path / "default.key", sealed)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o620, 0o700 | 0o001])
def test_group_or_world_accessible_file_is_refused(
    tmp_path: Path, sealed: Keystore, mode: int
) -> None:
    path = tmp_path / "default.key"
    write_keystore(path, sealed)
    path.chmod(mode)
    with pytest.raises(KeystorePermissionError, match="group or others") as info:
        read_keystore(path)
    assert str(path) in info.value.message
    assert info.value.hint == f"run: chmod 600 {path}"
    path.chmod(0o600)
    assert read_keystore(path) == sealed


def test_owner_only_modes_are_accepted(tmp_path: Path, sealed: Keystore) -> None:
    path = tmp_path / "default.key"
    write_keystore(path, sealed)
    path.chmod(0o400)
    assert read_keystore(path) == sealed


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeystoreNotFoundError, match="does not exist"):
        read_keystore(tmp_path / "nope.key")


def test_directory_and_fifo_are_refused(tmp_path: Path) -> None:
    with pytest.raises(KeystorePermissionError, match="directory"):
        read_private_file(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # a writer so the read-open does not block
    try:
        with pytest.raises(KeystorePermissionError, match="not a regular file"):
            read_private_file(fifo)
    finally:
        os.close(fd)


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.key"
    write_private_file(path, b"x" * 100)
    with pytest.raises(KeystoreFormatError, match="100 bytes, limit 50"):
        read_private_file(path, max_bytes=50)
    assert read_private_file(path, max_bytes=100) == b"x" * 100


def test_corrupted_file_on_disk_names_the_file(tmp_path: Path, sealed: Keystore) -> None:
    path = tmp_path / "default.key"
    write_private_file(path, sealed.to_bytes()[:40])
    with pytest.raises(KeystoreFormatError, match=f"{path}: not valid JSON"):
        read_keystore(path)

"""Ed25519 keys, their text forms and domain separation, against published vectors.

* RFC 8032 §7.1 (TEST 1, 2, 3, 1024, SHA(abc)) through SecretKey/PublicKey;
* BIP-350 Bech32m valid and invalid strings through the Bech32m codec;
* the C2SP signed-note example key of golang.org/x/mod/sumdb/note ("PeterNeumann").
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import (
    PUBLIC_HRP,
    SECRET_HRP,
    BadSignatureError,
    KeyFormatError,
    PublicKey,
    SecretKey,
    _bech32,
    domain_message,
    key_id,
    verify,
)

# RFC 8032 §7.1 ----------------------------------------------------------------------------------

_MSG_1024 = (
    "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98"
    "fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d8"
    "79de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d"
    "658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc"
    "1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4fe"
    "ba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e"
    "06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbef"
    "efd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7"
    "aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1"
    "85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2"
    "d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24"
    "554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270"
    "88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc"
    "2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b07"
    "07e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba"
    "b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51a"
    "ddd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429e"
    "c96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7"
    "51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c"
    "42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8"
    "ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df"
    "f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08"
    "d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649"
    "de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4"
    "88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a3"
    "2ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e"
    "6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f"
    "b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b5"
    "0d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1"
    "369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d"
    "b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c"
    "0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0"
)

RFC8032 = [
    pytest.param(
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        id="TEST 1",
    ),
    pytest.param(
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        id="TEST 2",
    ),
    pytest.param(
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        id="TEST 3",
    ),
    pytest.param(
        "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
        "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
        _MSG_1024,
        "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03",
        id="TEST 1024",
    ),
    pytest.param(
        "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        hashlib.sha512(b"abc").hexdigest(),
        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
        id="TEST SHA(abc)",
    ),
]


@pytest.mark.parametrize(("seed", "public", "message", "signature"), RFC8032)
def test_rfc8032_vectors(seed: str, public: str, message: str, signature: str) -> None:
    sk = SecretKey(bytes.fromhex(seed))
    msg = bytes.fromhex(message)
    sig = bytes.fromhex(signature)
    assert sk.public_key.raw.hex() == public
    assert sk.sign_raw(msg) == sig
    pk = PublicKey(bytes.fromhex(public))
    pk.verify_raw(msg, sig)
    flipped = bytearray(sig)
    flipped[0] ^= 0x01
    with pytest.raises(BadSignatureError):
        pk.verify_raw(msg, bytes(flipped))
    with pytest.raises(BadSignatureError):
        pk.verify_raw(msg + b"\x00", sig)


def test_vector_1024_message_length() -> None:
    assert len(bytes.fromhex(_MSG_1024)) == 1023


def test_sha_abc_message_is_sha512_of_abc() -> None:
    assert hashlib.sha512(b"abc").hexdigest().startswith("ddaf35a193617aba")


# Domain separation ----------------------------------------------------------------------------


def test_domain_message_layout() -> None:
    assert domain_message("ballot", b"{}") == b"liquide/v1/ballot\n{}"


@pytest.mark.parametrize("context", ["", "Ballot", "a b", "a/b", "x" * 65, "é", ".x", "-x"])
def test_invalid_contexts_are_refused(context: str) -> None:
    with pytest.raises(ValueError, match="invalid signing context"):
        domain_message(context, b"")


def test_valid_context_edge_cases() -> None:
    assert domain_message("x" * 64, b"").startswith(b"liquide/v1/x")
    assert domain_message("issue.adopt", b"m") == b"liquide/v1/issue.adopt\nm"
    assert domain_message("0a_b-c", b"m") == b"liquide/v1/0a_b-c\nm"


def test_signature_for_one_context_fails_under_another() -> None:
    sk = SecretKey(b"\x11" * 32)
    msg = b'{"issue":"x"}'
    sig = sk.sign("ballot", msg)
    sk.public_key.verify("ballot", msg, sig)
    verify(sk.public_key.raw, "ballot", msg, sig)
    for other in ("delegate", "withdraw", "receipt", "attest"):
        with pytest.raises(BadSignatureError):
            sk.public_key.verify(other, msg, sig)
    # Nor is it a plain Ed25519 signature of the message: that is what sign_raw is for.
    with pytest.raises(BadSignatureError):
        sk.public_key.verify_raw(msg, sig)
    assert sk.sign_raw(domain_message("ballot", msg)) == sig


def test_context_and_message_boundary_cannot_shift() -> None:
    # "a" + "\nb..." and "a\nb" + ... must not collide: the context alphabet has no newline.
    sk = SecretKey(b"\x12" * 32)
    sig = sk.sign("a", b"b")
    with pytest.raises(BadSignatureError):
        sk.public_key.verify("ab", b"", sig)


def test_verify_checks_lengths() -> None:
    pk = SecretKey(b"\x13" * 32).public_key
    with pytest.raises(BadSignatureError, match="64 bytes"):
        verify(pk.raw, "ballot", b"", b"\x00" * 63)
    with pytest.raises(BadSignatureError, match="32 bytes"):
        verify(pk.raw[:31], "ballot", b"", b"\x00" * 64)


def test_wrong_key_does_not_verify() -> None:
    a, b = SecretKey(b"\x01" * 32), SecretKey(b"\x02" * 32)
    sig = a.sign("ballot", b"m")
    with pytest.raises(BadSignatureError):
        b.public_key.verify("ballot", b"m", sig)


def test_invalid_public_point_is_bad_signature_not_crash() -> None:
    # y = 1 with the sign bit set has no valid point encoding in libsodium's strict decoder.
    bad = PublicKey(b"\x01" + b"\x00" * 30 + b"\x80")
    with pytest.raises(BadSignatureError):
        bad.verify_raw(b"m", b"\x00" * 64)


# Key objects ----------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"", b"\x00" * 31, b"\x00" * 33])
def test_key_lengths(raw: bytes) -> None:
    with pytest.raises(KeyFormatError):
        PublicKey(raw)
    with pytest.raises(KeyFormatError):
        SecretKey(raw)


def test_keys_must_be_bytes() -> None:
    with pytest.raises(KeyFormatError):
        PublicKey(bytearray(32))  # type: ignore[arg-type]
    with pytest.raises(KeyFormatError):
        SecretKey("0" * 32)  # type: ignore[arg-type]


def test_secret_key_repr_hides_the_seed() -> None:
    sk = SecretKey(b"\xab" * 32)
    assert "ab" * 4 not in repr(sk)
    assert sk.seed.hex() not in repr(sk)


def test_generate_gives_distinct_working_keys() -> None:
    a, b = SecretKey.generate(), SecretKey.generate()
    assert a != b
    a.public_key.verify("ballot", b"m", a.sign("ballot", b"m"))


# Text forms -----------------------------------------------------------------------------------


@settings(max_examples=100)
@given(st.binary(min_size=32, max_size=32))
def test_text_roundtrips(seed: bytes) -> None:
    sk = SecretKey(seed)
    pk = sk.public_key
    text = pk.to_text()
    assert text.startswith(PUBLIC_HRP + "1")
    assert len(text) == len("lqpk1") + 52 + 6
    assert PublicKey.from_text(text) == pk
    assert PublicKey.from_text(text.upper()) == pk
    assert str(pk) == text
    stext = sk.to_text()
    assert stext.startswith(SECRET_HRP + "1")
    assert SecretKey.from_text(stext) == sk


@settings(max_examples=100)
@given(st.binary(min_size=32, max_size=32), st.data())
def test_any_single_typo_is_detected(raw: bytes, data: st.DataObject) -> None:
    text = PublicKey(raw).to_text()
    pos = data.draw(st.integers(min_value=len("lqpk1"), max_value=len(text) - 1))
    new = data.draw(st.sampled_from([c for c in _bech32.CHARSET if c != text[pos]]))
    typo = text[:pos] + new + text[pos + 1 :]
    with pytest.raises(KeyFormatError, match="checksum"):
        PublicKey.from_text(typo)


def test_swapped_adjacent_characters_are_detected() -> None:
    text = SecretKey(b"\x21" * 32).public_key.to_text()
    for i in range(5, len(text) - 1):
        if text[i] == text[i + 1]:
            continue
        swapped = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
        with pytest.raises(KeyFormatError):
            PublicKey.from_text(swapped)


def test_secret_text_is_not_a_public_key() -> None:
    sk = SecretKey(b"\x22" * 32)
    with pytest.raises(KeyFormatError, match="expected a 'lqpk' key, got prefix 'lqsk'"):
        PublicKey.from_text(sk.to_text())
    with pytest.raises(KeyFormatError, match="expected a 'lqsk' key"):
        SecretKey.from_text(sk.public_key.to_text())


def test_wrong_payload_length_is_refused() -> None:
    short = _bech32.encode(PUBLIC_HRP, b"\x00" * 31)
    with pytest.raises(KeyFormatError, match="32 bytes, got 31"):
        PublicKey.from_text(short)
    with pytest.raises(KeyFormatError):
        SecretKey.from_text(_bech32.encode(SECRET_HRP, b"\x00" * 33))


def test_from_text_needs_a_string() -> None:
    with pytest.raises(KeyFormatError, match="must be a string"):
        PublicKey.from_text(b"lqpk1")  # type: ignore[arg-type]


def test_mixed_case_is_refused() -> None:
    text = SecretKey(b"\x23" * 32).public_key.to_text()
    with pytest.raises(KeyFormatError, match="mixed case"):
        PublicKey.from_text(text[:10] + text[10:].upper())


# Fingerprint ----------------------------------------------------------------------------------


def _fingerprint(raw: bytes) -> str:
    # An independent reading of the documented rule: the first 40 bits of SHA-256(key),
    # 5 bits per character, in the Bech32 alphabet, split 4-4.
    bits = bin(int.from_bytes(hashlib.sha256(raw).digest()[:5], "big"))[2:].zfill(40)
    chars = "".join(
        "qpzry9x8gf2tvdw0s3jn54khce6mua7l"[int(bits[i : i + 5], 2)] for i in range(0, 40, 5)
    )
    return chars[:4] + "-" + chars[4:]


@settings(max_examples=50)
@given(st.binary(min_size=32, max_size=32))
def test_fingerprint_rule(raw: bytes) -> None:
    fp = PublicKey(raw).fingerprint()
    assert fp == _fingerprint(raw)
    assert len(fp) == 9
    assert fp[4] == "-"


def test_fingerprint_of_rfc8032_test1_key() -> None:
    pk = PublicKey(
        bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    )
    assert pk.fingerprint() == _fingerprint(pk.raw)
    assert PublicKey(b"\x00" * 32).fingerprint() != pk.fingerprint()


# Bech32m (BIP-350) ----------------------------------------------------------------------------

BIP350_VALID = [
    "A1LQFN3A",
    "a1lqfn3a",
    "an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11sg7hg6",
    "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
    "11llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllludsr8",
    "split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
    "?1v759aa",
]

BIP350_INVALID = [
    (" 1xj0phk", "printable ASCII"),  # HRP character out of range
    ("\x7f1g6xzxy", "printable ASCII"),
    ("\x801vctc34", "printable ASCII"),
    (
        "an84characterslonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11d6pts4",
        "longer than 90",
    ),
    ("qyrz8wqd2c9m", "separator"),  # no separator
    ("1qyrz8wqd2c9m", "separator"),  # empty HRP
    ("y1b0jsk6g", "alphabet"),  # invalid data character
    ("lt1igcx5c0", "alphabet"),
    ("in1muywd", "separator or checksum"),  # too short checksum
    ("mm1crxm3i", "alphabet"),  # invalid character in checksum
    ("au1s5cgom", "alphabet"),
    ("M1VUXWEZ", "checksum mismatch"),  # checksum computed over the upper-case HRP
    ("16plkw9", "separator"),  # empty HRP
    ("1p2gdwpf", "separator"),
]

# Valid Bech32 (BIP-173), so invalid Bech32m: the two constants must not be confused.
BIP173_VALID = ["A12UEL5L", "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw"]


@pytest.mark.parametrize("text", BIP350_VALID)
def test_bip350_valid(text: str) -> None:
    hrp, data = _bech32.decode_raw(text)
    assert hrp == text.lower()[: text.lower().rfind("1")]
    # Re-encoding the 5-bit data under the same HRP gives the string back (case-insensitively).
    polymod = _bech32._polymod([*_bech32._hrp_expand(hrp), *data, 0, 0, 0, 0, 0, 0])
    checksum = [((polymod ^ _bech32._BECH32M_CONST) >> 5 * (5 - i)) & 31 for i in range(6)]
    again = hrp + "1" + "".join(_bech32.CHARSET[d] for d in data + checksum)
    assert again == text.lower()


@pytest.mark.parametrize(("text", "reason"), BIP350_INVALID)
def test_bip350_invalid(text: str, reason: str) -> None:
    with pytest.raises(KeyFormatError, match=reason):
        _bech32.decode_raw(text)


@pytest.mark.parametrize("text", BIP173_VALID)
def test_bech32_is_not_bech32m(text: str) -> None:
    with pytest.raises(KeyFormatError, match="checksum mismatch"):
        _bech32.decode_raw(text)


def test_bech32m_payload_roundtrip_and_padding() -> None:
    for n in range(40):
        payload = bytes(range(n))
        assert _bech32.decode("tst", _bech32.encode("tst", payload)) == payload
    # Non-zero padding bits are refused (a 1-byte payload leaves 2 padding bits).
    hrp, data = "tst", [31, 31]
    polymod = _bech32._polymod([*_bech32._hrp_expand(hrp), *data, 0, 0, 0, 0, 0, 0])
    checksum = [((polymod ^ _bech32._BECH32M_CONST) >> 5 * (5 - i)) & 31 for i in range(6)]
    text = hrp + "1" + "".join(_bech32.CHARSET[d] for d in data + checksum)
    with pytest.raises(KeyFormatError, match="padding"):
        _bech32.decode("tst", text)
    # And so is a whole spare group of padding (more than 4 bits left over).
    data = [0, 0, 0]
    polymod = _bech32._polymod([*_bech32._hrp_expand(hrp), *data, 0, 0, 0, 0, 0, 0])
    checksum = [((polymod ^ _bech32._BECH32M_CONST) >> 5 * (5 - i)) & 31 for i in range(6)]
    text = hrp + "1" + "".join(_bech32.CHARSET[d] for d in data + checksum)
    with pytest.raises(KeyFormatError, match="padding"):
        _bech32.decode("tst", text)


# C2SP signed-note verifier keys ---------------------------------------------------------------

# The example of golang.org/x/mod/sumdb/note (its package documentation and note_test.go).
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    b"If you think cryptography is the answer to your problem,\n"
    b"then you don't know what your problem is.\n"
)
GO_SIG = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)


def _go_secret() -> SecretKey:
    blob = base64.b64decode(GO_SKEY.split("+", 4)[4])
    assert blob[0] == 0x01
    return SecretKey(blob[1:])


def test_c2sp_vkey_matches_go_note_package() -> None:
    sk = _go_secret()
    assert sk.public_key.to_vkey("PeterNeumann") == GO_VKEY
    assert sk.public_key.note_key_id("PeterNeumann").hex() == "c74f20a3"
    assert key_id("PeterNeumann", b"\x01" + sk.public_key.raw).hex() == "c74f20a3"
    name, pk = PublicKey.from_vkey(GO_VKEY)
    assert (name, pk) == ("PeterNeumann", sk.public_key)


def test_c2sp_note_signature_matches_go_note_package() -> None:
    sk = _go_secret()
    blob = base64.b64decode(GO_SIG)
    assert blob[:4] == sk.public_key.note_key_id("PeterNeumann")
    assert sk.sign_raw(GO_TEXT) == blob[4:]
    sk.public_key.verify_raw(GO_TEXT, blob[4:])


@pytest.mark.parametrize(
    ("vkey", "reason"),
    [
        ("PeterNeumann+c74f20a3", "name\\+keyid\\+base64"),
        (GO_VKEY + "+x", "base64"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "name"),
        ("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "name"),
        ("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 lower-case hex"),
        ("PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 lower-case hex"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T", "base64"),
        ("PeterNeumann+c74f20a3+AhpcQcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW=", "Ed25519"),
        ("PeterNeumann+c74f20a3+" + base64.b64encode(b"\x01" * 32).decode(), "Ed25519"),
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
        ("PeterNeumanm+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
    ],
)
def test_bad_vkeys_are_refused(vkey: str, reason: str) -> None:
    with pytest.raises(KeyFormatError, match=reason):
        PublicKey.from_vkey(vkey)


def test_to_vkey_refuses_bad_names() -> None:
    pk = _go_secret().public_key
    for name in ("", "a b", "a+b", "tab\there"):
        with pytest.raises(KeyFormatError, match="key name"):
            pk.to_vkey(name)


# A type-0x01 key of transparency-dev/formats (note/note_cosigv1_test.go) whose base64 has a '+'.
PLUS_VKEY = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"


def test_vkey_whose_base64_contains_plus() -> None:
    name, pk = PublicKey.from_vkey(PLUS_VKEY)
    assert name == "TEST"
    assert pk.to_vkey("TEST") == PLUS_VKEY


def test_vkey_roundtrip_with_origin_names() -> None:
    pk = SecretKey(b"\x31" * 32).public_key
    for name in ("lyon.example/liquide", "example.com/foo", "ünï"):
        assert PublicKey.from_vkey(pk.to_vkey(name)) == (name, pk)


@settings(max_examples=100)
@given(st.binary(min_size=32, max_size=32))
def test_vkey_roundtrip_any_key(raw: bytes) -> None:
    pk = PublicKey(raw)
    assert PublicKey.from_vkey(pk.to_vkey("lyon.example/liquide")) == ("lyon.example/liquide", pk)


# --- the fast path for canonical key text equals the reference codec ----------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.binary(min_size=32, max_size=32),
    st.integers(0, 62),
    st.sampled_from(_bech32.CHARSET + "1bioAQ"),
)
def test_public_key_raw_agrees_with_the_reference_codec(raw: bytes, pos: int, char: str) -> None:
    from crypto import public_key_raw

    text = PublicKey(raw).to_text()
    assert public_key_raw(text) == raw
    mutated = text[:pos] + char + text[pos + 1 :]
    try:
        expected: bytes | None = _bech32.decode(PUBLIC_HRP, mutated)
    except KeyFormatError:
        expected = None
    if expected is not None and len(expected) != 32:
        expected = None
    assert public_key_raw(mutated) == expected
    assert public_key_raw(mutated.upper()) is None  # only canonical lower-case text is fast


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 31), min_size=52, max_size=52))
def test_public_key_raw_agrees_on_any_data_part_with_a_valid_checksum(data: list[int]) -> None:
    from crypto._bech32 import Fast32

    # Any 52 values (the padding bits included) under their own valid checksum.
    poly = _bech32._polymod([*_bech32._hrp_expand(PUBLIC_HRP), *data, 0, 0, 0, 0, 0, 0])
    poly ^= _bech32._BECH32M_CONST
    checksum = [(poly >> 5 * (5 - i)) & 31 for i in range(6)]
    text = PUBLIC_HRP + "1" + "".join(_bech32.CHARSET[d] for d in data + checksum)
    try:
        expected: bytes | None = _bech32.decode(PUBLIC_HRP, text)
    except KeyFormatError:
        expected = None
    assert Fast32(PUBLIC_HRP).decode(text) == expected


def test_public_key_raw_refuses_nonzero_padding_with_valid_checksum() -> None:
    from crypto import public_key_raw

    # 52 five-bit groups carry 260 bits; a payload with its padding bits set has a valid
    # checksum but is not canonical, and both paths must refuse it.
    data = [*_bech32._convertbits(bytes(32), 8, 5, pad=True)]
    data[-1] |= 1
    poly = _bech32._polymod([*_bech32._hrp_expand(PUBLIC_HRP), *data, 0, 0, 0, 0, 0, 0])
    poly ^= _bech32._BECH32M_CONST
    text = (
        PUBLIC_HRP
        + "1"
        + "".join(_bech32.CHARSET[d] for d in data + [(poly >> 5 * (5 - i)) & 31 for i in range(6)])
    )
    with pytest.raises(KeyFormatError, match="padding"):
        _bech32.decode(PUBLIC_HRP, text)
    assert public_key_raw(text) is None
    with pytest.raises(KeyFormatError):
        PublicKey.from_text(text)

"""gateway.sensors.mqtt_packets against MQTT 3.1.1 (OASIS 2014) and MQTT 5.0 (OASIS 2019).

Expected bytes are written out by hand from the specs wherever an independent
expectation is possible, so a test does not merely repeat what the encoder produces.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.sensors import mqtt_packets as mp
from gateway.sensors.mqtt_packets import Control, Framer, ProtocolError, Publish, Will

PUBLISH_QOS = st.sampled_from([0, 1, 2])
TOPICS = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
PAYLOADS = st.binary(max_size=300)
MIDS = st.integers(min_value=1, max_value=0xFFFF)


def h(text: str) -> bytes:
    """Bytes from spaced hex, the way the specs print packets."""
    return bytes.fromhex(text)


def decode_varint(data: bytes) -> tuple[int, int]:
    """Reference decoder from spec 1.5.5 / 2.2.3: (value, bytes used)."""
    value, mult = 0, 1
    for i, b in enumerate(data):
        value += (b & 0x7F) * mult
        if not b & 0x80:
            return value, i + 1
        mult *= 128
    raise AssertionError(f"unterminated varint {data.hex(' ')}")


# -- varint -----------------------------------------------------------------------------------------

VARINTS = [
    pytest.param(0, "00", id="0"),
    pytest.param(127, "7f", id="127"),
    pytest.param(128, "80 01", id="128"),
    pytest.param(16_383, "ff 7f", id="16383"),
    pytest.param(16_384, "80 80 01", id="16384"),
    pytest.param(2_097_151, "ff ff 7f", id="2097151"),
    pytest.param(2_097_152, "80 80 80 01", id="2097152"),
    pytest.param(268_435_455, "ff ff ff 7f", id="268435455"),
]


@pytest.mark.parametrize(("n", "expected"), VARINTS)
def test_varint_matches_the_spec_table(n: int, expected: str) -> None:
    assert mp.varint(n) == h(expected)


@pytest.mark.parametrize("n", [-1, 268_435_456, 1 << 40])
def test_varint_rejects_values_outside_four_bytes(n: int) -> None:
    with pytest.raises(ValueError, match="variable byte integer"):
        mp.varint(n)


@given(st.integers(min_value=0, max_value=mp.PROTOCOL_MAX_PACKET))
def test_varint_decodes_back_in_the_fewest_bytes(n: int) -> None:
    encoded = mp.varint(n)
    assert decode_varint(encoded) == (n, len(encoded))
    assert len(encoded) == 1 + (n >= 128) + (n >= 16_384) + (n >= 2_097_152)


# -- CONNECT ----------------------------------------------------------------------------------------

def test_connect_v311_with_will_username_and_password() -> None:
    """Spec 3.1: flags 0xEC = username, password, will retain, will QoS 1, will flag; clean session off."""
    got = mp.connect("c1", v5=False, keepalive=60, clean_start=False, username="u", password="p",
                     will=Will("gw/st", b"off", qos=1, retain=True))
    assert got == h(
        "10 20"                    # CONNECT, remaining length 32
        " 00 04 4d 51 54 54"       # protocol name "MQTT"
        " 04 ec 00 3c"             # level 4, flags, keep alive 60
        " 00 02 63 31"             # client id "c1"
        " 00 05 67 77 2f 73 74"    # will topic "gw/st"
        " 00 03 6f 66 66"          # will payload "off"
        " 00 01 75 00 01 70"       # user name "u", password "p"
    )


def test_connect_v311_minimal() -> None:
    assert mp.connect("", v5=False, keepalive=0, clean_start=True) == h("10 0c 00 04 4d 51 54 54 04 02 00 00 00 00")


CONNECT_FLAGS = [
    pytest.param({"clean_start": True}, 0x02, id="clean-start"),
    pytest.param({"clean_start": False}, 0x00, id="no-clean-start"),
    pytest.param({"clean_start": False, "username": "u"}, 0x80, id="username"),
    pytest.param({"clean_start": False, "username": "u", "password": "p"}, 0xC0, id="username-password"),
    pytest.param({"clean_start": False, "will": Will("t", b"", qos=0, retain=False)}, 0x04, id="will-qos0"),
    pytest.param({"clean_start": False, "will": Will("t", b"", qos=2, retain=False)}, 0x14, id="will-qos2"),
    pytest.param({"clean_start": True, "will": Will("t", b"")}, 0x2E, id="will-defaults-qos1-retain"),
]


@pytest.mark.parametrize("v5", [False, True], ids=["v3", "v5"])
@pytest.mark.parametrize(("kwargs", "flags"), CONNECT_FLAGS)
def test_connect_flags(kwargs: dict[str, object], flags: int, v5: bool) -> None:
    """Byte 8 of the variable header (after the 2+4 byte protocol name and the level) is the flags byte."""
    got = mp.connect("c", v5=v5, keepalive=10, **kwargs)  # type: ignore[arg-type]
    assert got[2:8] == h("00 04 4d 51 54 54")
    assert got[8] == (5 if v5 else 4)
    assert got[9] == flags


def test_connect_v5_properties_with_maximum_packet_size() -> None:
    """Spec 3.1.2.11: session expiry (0x11, u32), receive maximum (0x21, u16), maximum packet size (0x27, u32)."""
    got = mp.connect("c1", v5=True, keepalive=30, clean_start=True, session_expiry=3600, receive_maximum=100,
                     maximum_packet=1 << 20)
    assert got == h(
        "10 1c"                    # CONNECT, remaining length 28
        " 00 04 4d 51 54 54 05 02 00 1e"
        " 0d 11 00 00 0e 10 21 00 64 27 00 10 00 00"
        " 00 02 63 31"
    )


def test_connect_v5_leaves_maximum_packet_size_out_unless_given() -> None:
    got = mp.connect("c1", v5=True, keepalive=30, clean_start=True, session_expiry=3600, receive_maximum=100)
    assert got == h("10 17 00 04 4d 51 54 54 05 02 00 1e 08 11 00 00 0e 10 21 00 64 00 02 63 31")
    assert b"\x27" not in got[12:21]


def test_connect_v5_defaults() -> None:
    """Session expiry 0 and receive maximum 65535 are the spec's defaults, sent explicitly."""
    got = mp.connect("c1", v5=True, keepalive=30, clean_start=False)
    assert got[12:21] == h("08 11 00 00 00 00 21 ff ff")


def test_connect_v5_will_has_empty_will_properties() -> None:
    """Spec 3.1.3.2: in v5 the will topic is preceded by the will properties (length 0 here)."""
    got = mp.connect("c1", v5=True, keepalive=60, clean_start=False, username="u", password="p",
                     will=Will("gw/st", b"off"), session_expiry=0, receive_maximum=10)
    assert got == h(
        "10 2a"
        " 00 04 4d 51 54 54 05 ec 00 3c"
        " 08 11 00 00 00 00 21 00 0a"
        " 00 02 63 31"
        " 00"                      # will properties: none
        " 00 05 67 77 2f 73 74 00 03 6f 66 66"
        " 00 01 75 00 01 70"
    )


def test_connect_remaining_length_grows_past_one_byte() -> None:
    got = mp.connect("x" * 200, v5=False, keepalive=1, clean_start=True)
    assert got[:3] == h("10 d4 01")  # 10 + 2 + 200 = 212
    assert len(got) == 3 + 212


def test_connect_rejects_a_client_id_over_65535_bytes() -> None:
    with pytest.raises(ValueError, match="65535"):
        mp.connect("x" * 65_536, v5=False, keepalive=1, clean_start=True)


# -- SUBSCRIBE --------------------------------------------------------------------------------------

SUBSCRIBES = [
    pytest.param(1, "a/#", 1, False, False, "82 08 00 01 00 03 61 2f 23 01", id="v3-qos1"),
    pytest.param(1, "a/#", 1, False, True, "82 08 00 01 00 03 61 2f 23 01", id="v3-no-local-ignored"),
    pytest.param(0x1234, "a/#", 0, False, False, "82 08 12 34 00 03 61 2f 23 00", id="v3-qos0"),
    pytest.param(1, "a/#", 1, True, False, "82 09 00 01 00 00 03 61 2f 23 01", id="v5-qos1"),
    pytest.param(1, "a/#", 1, True, True, "82 09 00 01 00 00 03 61 2f 23 05", id="v5-no-local"),
    pytest.param(7, "a/#", 2, True, True, "82 09 00 07 00 00 03 61 2f 23 06", id="v5-qos2-no-local"),
]


@pytest.mark.parametrize(("mid", "topic", "qos", "v5", "no_local", "expected"), SUBSCRIBES)
def test_subscribe(mid: int, topic: str, qos: int, v5: bool, no_local: bool, expected: str) -> None:
    """Spec 3.8.1: the fixed header is 0x82 (reserved flags 0010); v5 adds a properties byte and No Local (bit 2)."""
    assert mp.subscribe(mid, topic, qos, v5=v5, no_local=no_local) == h(expected)


# -- PUBLISH and PUBACK -----------------------------------------------------------------------------

PUBLISHES = [
    pytest.param({}, False, "30 05 00 01 74 68 69", id="v3-qos0"),
    pytest.param({"mid": 10}, False, "30 05 00 01 74 68 69", id="v3-qos0-no-packet-id"),
    pytest.param({"qos": 1, "mid": 10}, False, "32 07 00 01 74 00 0a 68 69", id="v3-qos1"),
    pytest.param({"qos": 2, "mid": 10}, False, "34 07 00 01 74 00 0a 68 69", id="v3-qos2"),
    pytest.param({"qos": 1, "mid": 10, "retain": True}, False, "33 07 00 01 74 00 0a 68 69", id="v3-retain"),
    pytest.param({"qos": 1, "mid": 10, "dup": True}, False, "3a 07 00 01 74 00 0a 68 69", id="v3-dup"),
    pytest.param({"dup": True, "retain": True}, False, "31 05 00 01 74 68 69", id="v3-dup-dropped-at-qos0"),
    pytest.param({}, True, "30 06 00 01 74 00 68 69", id="v5-qos0"),
    pytest.param({"qos": 1, "mid": 10}, True, "32 08 00 01 74 00 0a 00 68 69", id="v5-qos1"),
    pytest.param({"qos": 1, "mid": 0xABCD, "retain": True, "dup": True}, True, "3b 08 00 01 74 ab cd 00 68 69",
                 id="v5-all-flags"),
]


@pytest.mark.parametrize(("kwargs", "v5", "expected"), PUBLISHES)
def test_publish(kwargs: dict[str, object], v5: bool, expected: str) -> None:
    """Spec 3.3.1: DUP bit 3 (must be 0 at QoS 0), QoS bits 1-2, RETAIN bit 0; packet id only when QoS > 0."""
    assert mp.publish("t", b"hi", v5=v5, **kwargs) == h(expected)  # type: ignore[arg-type]


def test_publish_large_payload_has_a_three_byte_remaining_length() -> None:
    got = mp.publish("t", b"\x00" * 20_000, v5=False)
    assert got[:4] == h("30 a3 9c 01")  # 3 + 20000 = 20003 = 35 + 28*128 + 1*128^2
    assert len(got) == 4 + 20_003


@pytest.mark.parametrize(("mid", "expected"), [(1, "40 02 00 01"), (0x1234, "40 02 12 34"), (0xFFFF, "40 02 ff ff")])
def test_puback(mid: int, expected: str) -> None:
    assert mp.puback(mid) == h(expected)


def test_fixed_packets() -> None:
    assert h("c0 00") == mp.PINGREQ_PACKET
    assert h("e0 00") == mp.DISCONNECT_PACKET


# -- Framer: well-formed streams --------------------------------------------------------------------

@pytest.mark.parametrize("v5", [False, True], ids=["v3", "v5"])
@pytest.mark.parametrize(("kwargs", "expected"), [
    pytest.param({}, Publish("a/b", b"payload", 0, 0, False), id="qos0"),
    pytest.param({"qos": 1, "mid": 42}, Publish("a/b", b"payload", 1, 42, False), id="qos1"),
    pytest.param({"qos": 2, "mid": 0xFFFF, "retain": True}, Publish("a/b", b"payload", 2, 0xFFFF, True), id="qos2"),
    pytest.param({"qos": 1, "mid": 7, "dup": True}, Publish("a/b", b"payload", 1, 7, False), id="dup"),
])
def test_framer_round_trips_a_publish(kwargs: dict[str, object], expected: Publish, v5: bool) -> None:
    packet = mp.publish("a/b", b"payload", v5=v5, **kwargs)  # type: ignore[arg-type]
    assert Framer(v5).feed(packet) == [expected]


def test_framer_decodes_a_hand_written_publish() -> None:
    assert Framer(False).feed(h("33 07 00 01 74 00 0a 68 69")) == [Publish("t", b"hi", 1, 10, True)]


def test_framer_publish_with_empty_payload_and_topic() -> None:
    assert Framer(False).feed(h("30 02 00 00")) == [Publish("", b"", 0, 0, False)]
    assert Framer(True).feed(h("30 03 00 00 00")) == [Publish("", b"", 0, 0, False)]


def test_framer_decodes_a_utf8_topic() -> None:
    topic = "楼宇/3F/烟感"
    assert Framer(True).feed(mp.publish(topic, b"x", v5=True, qos=1, mid=1)) == [Publish(topic, b"x", 1, 1, False)]


def test_framer_skips_v5_publish_properties() -> None:
    """Payload format indicator (0x01) and a user property (0x26) sit between packet id and payload."""
    packet = h(
        "32 11 00 01 74 00 0a"
        " 09 01 01 26 00 01 6b 00 01 76"   # properties: length 9
        " 68 69"
    )
    assert Framer(True).feed(packet) == [Publish("t", b"hi", 1, 10, False)]


def test_framer_skips_v5_properties_with_a_two_byte_length() -> None:
    """A property length over 127 takes a two-byte varint."""
    props = b"\x26\x00\x01k\x00\xc8" + b"v" * 200  # 1 + 3 + 202 = 206 bytes
    body = b"\x00\x01t" + h("ce 01") + props + b"data"
    packet = bytes((0x30,)) + mp.varint(len(body)) + body
    assert Framer(True).feed(packet) == [Publish("t", b"data", 0, 0, False)]


MIXED = (
    mp.publish("s/1", b"one", v5=False, qos=1, mid=1)
    + h("90 03 00 05 01")          # SUBACK for packet 5, granted QoS 1
    + h("d0 00")                   # PINGRESP
    + h("40 02 00 09")             # PUBACK for packet 9
    + h("20 02 01 00")             # CONNACK, session present
    + mp.publish("s/2", b"two", v5=False)
)
MIXED_PACKETS: list[Publish | Control] = [
    Publish("s/1", b"one", 1, 1, False),
    Control(mp.SUBACK, 0, h("00 05 01")),
    Control(mp.PINGRESP, 0, b""),
    Control(mp.PUBACK, 0, h("00 09")),
    Control(mp.CONNACK, 0, h("01 00")),
    Publish("s/2", b"two", 0, 0, False),
]


def test_framer_splits_mixed_packets_in_one_chunk() -> None:
    assert Framer(False).feed(MIXED) == MIXED_PACKETS


def test_framer_keeps_control_flags() -> None:
    """Control keeps the low nibble: PUBREL's reserved flags are 0010."""
    assert Framer(False).feed(h("62 02 00 03")) == [Control(6, 0x02, h("00 03"))]


def test_framer_one_byte_at_a_time() -> None:
    framer = Framer(False)
    got: list[Publish | Control] = []
    for i in range(len(MIXED)):
        got += framer.feed(MIXED[i:i + 1])
    assert got == MIXED_PACKETS


def test_framer_buffers_an_incomplete_trailing_packet() -> None:
    second = mp.publish("t", b"later", v5=True, qos=1, mid=2)
    framer = Framer(True)
    assert framer.feed(mp.publish("t", b"now", v5=True, qos=1, mid=1) + second[:4]) == [
        Publish("t", b"now", 1, 1, False)]
    assert framer.feed(b"") == []
    assert framer.feed(second[4:-1]) == []
    assert framer.feed(second[-1:]) == [Publish("t", b"later", 1, 2, False)]
    assert framer.feed(b"") == []


def test_framer_buffers_a_remaining_length_cut_mid_varint() -> None:
    packet = mp.publish("t", b"x" * 20_000, v5=False)
    framer = Framer(False)
    assert framer.feed(packet[:2]) == []  # first byte and one continuation byte of three
    assert framer.feed(packet[2:3]) == []
    assert framer.feed(packet[3:]) == [Publish("t", b"x" * 20_000, 0, 0, False)]


@pytest.mark.parametrize("v5", [False, True], ids=["v3", "v5"])
@pytest.mark.parametrize("size", [16_383, 16_384, 70_000, 2_097_152])
def test_framer_large_payloads(size: int, v5: bool) -> None:
    """Remaining lengths past 16383 take three bytes, past 2097151 four."""
    payload = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    packet = mp.publish("big", payload, v5=v5, qos=1, mid=3)
    assert len(mp.varint(len(packet) - 1)) in (3, 4)
    framer = Framer(v5)
    assert framer.feed(packet[: len(packet) // 2]) == []
    assert framer.feed(packet[len(packet) // 2:]) == [Publish("big", payload, 1, 3, False)]


def test_framer_accepts_a_packet_exactly_at_max_packet() -> None:
    packet = mp.publish("t", b"x" * 5, v5=False)  # remaining length 8, 10 bytes in all
    assert Framer(False, max_packet=10).feed(packet) == [Publish("t", b"xxxxx", 0, 0, False)]


# -- Framer: property tests -------------------------------------------------------------------------

@st.composite
def publishes(draw: st.DrawFn, v5: bool) -> tuple[bytes, Publish]:
    topic, payload, qos, retain = draw(TOPICS), draw(PAYLOADS), draw(PUBLISH_QOS), draw(st.booleans())
    mid = draw(MIDS) if qos else 0
    packet = mp.publish(topic, payload, v5=v5, qos=qos, mid=mid, retain=retain, dup=draw(st.booleans()))
    return packet, Publish(topic, payload, qos, mid, retain)


@st.composite
def controls(draw: st.DrawFn) -> tuple[bytes, Control]:
    kind = draw(st.sampled_from([mp.CONNACK, mp.PUBACK, mp.SUBACK, mp.PINGRESP, mp.DISCONNECT]))
    body = draw(st.binary(max_size=200))
    return bytes((kind << 4,)) + mp.varint(len(body)) + body, Control(kind, 0, body)


@st.composite
def streams(draw: st.DrawFn) -> tuple[bool, bytes, list[Publish | Control]]:
    v5 = draw(st.booleans())
    items = draw(st.lists(st.one_of(publishes(v5), controls()), max_size=12))
    return v5, b"".join(raw for raw, _ in items), [packet for _, packet in items]


@given(st.booleans().flatmap(lambda v5: st.tuples(st.just(v5), publishes(v5))))
def test_framer_round_trips_any_publish(case: tuple[bool, tuple[bytes, Publish]]) -> None:
    v5, (packet, expected) = case
    assert Framer(v5).feed(packet) == [expected]


@given(streams(), st.data())
def test_framer_gives_the_same_packets_whatever_the_split(
    stream: tuple[bool, bytes, list[Publish | Control]], data: st.DataObject
) -> None:
    """TCP may cut the stream anywhere; the framer must hand out exactly the packets that were sent."""
    v5, raw, expected = stream
    cuts = sorted(data.draw(st.lists(st.integers(min_value=0, max_value=len(raw)), max_size=20)))
    framer = Framer(v5)
    got: list[Publish | Control] = []
    for start, end in zip([0, *cuts], [*cuts, len(raw)], strict=True):
        got += framer.feed(raw[start:end])
    assert got == expected
    assert Framer(v5).feed(raw) == expected
    assert framer.feed(b"") == []


# -- Framer: malformed streams ----------------------------------------------------------------------

MALFORMED = [
    pytest.param(False, "30 ff ff ff ff 7f 00", "longer than 4 bytes", id="remaining-length-5-bytes"),
    pytest.param(False, "30 80 80 80 80", "longer than 4 bytes", id="remaining-length-4-continuations"),
    pytest.param(False, "36 03 00 01 74", "QoS 3", id="qos3"),
    pytest.param(True, "36 04 00 01 74 00", "QoS 3", id="qos3-v5"),
    pytest.param(False, "32 03 00 01 74", "packet identifier", id="qos1-without-packet-id"),
    pytest.param(False, "34 04 00 01 74 00", "packet identifier", id="qos2-with-half-a-packet-id"),
    pytest.param(True, "30 03 00 01 74", "properties", id="v5-without-properties"),
    pytest.param(True, "32 05 00 01 74 00 01", "properties", id="v5-qos1-without-properties"),
    pytest.param(True, "30 05 00 01 74 05 41", "shorter", id="v5-properties-past-the-packet"),
    pytest.param(True, "30 05 00 01 74 80 80", "properties", id="v5-property-length-cut-short"),
    pytest.param(False, "30 04 00 05 61 62", "shorter", id="topic-past-the-packet"),
    pytest.param(True, "30 04 00 05 61 62", "properties", id="topic-past-the-packet-v5"),
    pytest.param(False, "32 06 00 05 61 62 00 01", "packet identifier", id="topic-past-the-packet-qos1"),
    pytest.param(False, "30 00", "without a topic", id="empty-publish"),
    pytest.param(False, "30 01 00", "without a topic", id="publish-with-one-byte"),
]


@pytest.mark.parametrize(("v5", "data", "message"), MALFORMED)
def test_framer_rejects_malformed_packets(v5: bool, data: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        Framer(v5).feed(h(data))


def test_framer_rejects_a_malformed_packet_after_good_ones() -> None:
    framer = Framer(False)
    with pytest.raises(ProtocolError):
        framer.feed(mp.publish("t", b"ok", v5=False) + h("36 03 00 01 74"))


def test_framer_rejects_a_packet_over_max_packet_before_it_arrives() -> None:
    """The declared length is enough: the framer must not buffer a packet it will refuse."""
    framer = Framer(True, max_packet=1000)
    with pytest.raises(ProtocolError, match="over the limit"):
        framer.feed(h("30 e9 07"))  # remaining length 1001, no body yet


@pytest.mark.parametrize("v5", [False, True], ids=["v3", "v5"])
def test_framer_rejects_a_publish_over_max_packet(v5: bool) -> None:
    packet = mp.publish("t", b"x" * 200, v5=v5)
    with pytest.raises(ProtocolError, match="over the limit"):
        Framer(v5, max_packet=100).feed(packet)


def test_protocol_error_is_a_value_error() -> None:
    assert issubclass(ProtocolError, ValueError)


# -- properties, CONNACK, SUBACK, packet ids --------------------------------------------------------

PROPERTIES = [
    pytest.param("00", 0, {}, 1, id="empty"),
    pytest.param("05 11 00 00 0e 10", 0, {0x11: 3600}, 6, id="session-expiry-u32"),
    pytest.param("03 13 00 3c", 0, {0x13: 60}, 4, id="server-keep-alive-u16"),
    pytest.param("03 21 01 00", 0, {0x21: 256}, 4, id="receive-maximum-u16"),
    pytest.param("05 27 00 10 00 00", 0, {0x27: 1 << 20}, 6, id="maximum-packet-size-u32"),
    pytest.param("02 01 01", 0, {0x01: 1}, 3, id="payload-format-byte"),
    pytest.param("02 24 01", 0, {0x24: 1}, 3, id="maximum-qos-byte"),
    pytest.param("03 0b c8 01", 0, {0x0B: 200}, 4, id="subscription-identifier-varint"),
    pytest.param("05 1f 00 02 6f 6b", 0, {0x1F: "ok"}, 6, id="reason-string"),
    pytest.param("05 12 00 02 63 31", 0, {0x12: "c1"}, 6, id="assigned-client-id"),
    pytest.param("04 09 00 01 ff", 0, {0x09: b"\xff"}, 5, id="correlation-data-binary"),
    pytest.param("07 26 00 01 6b 00 01 76", 0, {}, 8, id="user-property-dropped"),
    pytest.param("00 07 03 13 00 3c 80", 2, {0x13: 60}, 6, id="at-an-offset"),
    pytest.param(
        "0f 13 00 3c 26 00 01 6b 00 01 76 1f 00 02 6f 6b",
        0, {0x13: 60, 0x1F: "ok"}, 16, id="several",
    ),
]


@pytest.mark.parametrize(("data", "pos", "expected", "end"), PROPERTIES)
def test_properties(data: str, pos: int, expected: dict[int, object], end: int) -> None:
    assert mp.properties(h(data), pos) == (expected, end)


MALFORMED_PROPERTIES = [
    pytest.param("", "cut short", id="no-length"),
    pytest.param("80", "cut short", id="length-cut-short"),
    pytest.param("05 11 00 00", "past the packet", id="length-past-the-packet"),
    pytest.param("02 00 00", "unknown property 0x00", id="unknown-0x00"),
    pytest.param("01 ff", "unknown property 0xff", id="unknown-0xff"),
    pytest.param("02 13 00 3c", "runs past the properties", id="u16-overruns-the-length"),
    pytest.param("03 1f 00 05 6f 6b 21", "runs past the properties", id="string-overruns-the-length"),
]


@pytest.mark.parametrize(("data", "message"), MALFORMED_PROPERTIES)
def test_properties_reject_malformed_input(data: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        mp.properties(h(data), 0)


TRUNCATED_PROPERTY_VALUES = [
    pytest.param("01 01", id="byte-value-missing"),
    pytest.param("02 13 00", id="u16-value-half-there"),
    pytest.param("03 11 00 00", id="u32-value-half-there"),
    pytest.param("01 1f", id="string-length-missing"),
    pytest.param("02 1f 00", id="string-length-half-there"),
    pytest.param("04 26 00 01 6b", id="user-property-value-missing"),
]


@pytest.mark.parametrize("data", TRUNCATED_PROPERTY_VALUES)
def test_properties_reject_a_value_cut_off_by_the_end_of_the_packet(data: str) -> None:
    """A broker's truncated property must be a ProtocolError (the transport catches only that), not a crash."""
    with pytest.raises(ProtocolError):
        mp.properties(h(data), 0)


@pytest.mark.parametrize("data", TRUNCATED_PROPERTY_VALUES)
def test_connack_v5_with_a_truncated_property_is_a_protocol_error(data: str) -> None:
    with pytest.raises(ProtocolError):
        mp.connack(h("00 00") + h(data), v5=True)


@pytest.mark.parametrize("data", TRUNCATED_PROPERTY_VALUES)
def test_suback_v5_with_a_truncated_property_is_a_protocol_error(data: str) -> None:
    with pytest.raises(ProtocolError):
        mp.suback(h("00 07") + h(data), v5=True)


CONNACKS = [
    pytest.param("00 00", False, (False, 0, {}), id="v3-accepted"),
    pytest.param("01 00", False, (True, 0, {}), id="v3-session-present"),
    pytest.param("00 01", False, (False, 1, {}), id="v3-bad-protocol-version"),
    pytest.param("00 04", False, (False, 4, {}), id="v3-bad-credentials"),
    pytest.param("00 05", False, (False, 5, {}), id="v3-not-authorized"),
    pytest.param("00 00 00", True, (False, 0, {}), id="v5-no-properties"),
    pytest.param("01 00 00", True, (True, 0, {}), id="v5-session-present"),
    pytest.param("00 00", True, (False, 0, {}), id="v5-property-length-left-out"),
    pytest.param("00 87 00", True, (False, 0x87, {}), id="v5-not-authorized"),
    pytest.param("00 00 03 13 00 3c", True, (False, 0, {0x13: 60}), id="v5-server-keep-alive"),
    pytest.param(
        "01 86 0b 13 00 1e 1f 00 05 62 61 64 20 70",
        True, (True, 0x86, {0x13: 30, 0x1F: "bad p"}), id="v5-keep-alive-and-reason-string",
    ),
    pytest.param(
        "00 00 07 21 00 0a 24 01 25 00",
        True, (False, 0, {0x21: 10, 0x24: 1, 0x25: 0}), id="v5-receive-maximum-max-qos-retain",
    ),
]


@pytest.mark.parametrize(("data", "v5", "expected"), CONNACKS)
def test_connack(data: str, v5: bool, expected: tuple[bool, int, dict[int, object]]) -> None:
    assert mp.connack(h(data), v5) == expected


@pytest.mark.parametrize("v5", [False, True], ids=["v3", "v5"])
@pytest.mark.parametrize("data", ["", "00"])
def test_connack_too_short(data: str, v5: bool) -> None:
    with pytest.raises(ProtocolError, match="CONNACK too short"):
        mp.connack(h(data), v5)


def test_connack_reason_tables() -> None:
    """Spec 3.2.2.3 (v3 return codes 1-5) and 3.2.2.2 (v5 refusals, all >= 0x80)."""
    assert sorted(mp.CONNACK_V3) == [1, 2, 3, 4, 5]
    assert all(code >= 0x80 for code in mp.CONNACK_V5)
    assert mp.CONNACK_V5[0x86] == "bad user name or password"
    assert mp.CONNACK_V5[0x87] == "not authorized"


SUBACKS = [
    pytest.param("00 07 01", False, (7, [1]), id="v3-granted-qos1"),
    pytest.param("00 07 80", False, (7, [0x80]), id="v3-refused"),
    pytest.param("12 34 00 01 02", False, (0x1234, [0, 1, 2]), id="v3-several"),
    pytest.param("00 07 00 01", True, (7, [1]), id="v5-granted-qos1"),
    pytest.param("00 07 00 87", True, (7, [0x87]), id="v5-not-authorized"),
    pytest.param("00 07 00 80", True, (7, [0x80]), id="v5-unspecified-error"),
    pytest.param("ff ff 05 1f 00 02 6e 6f 87", True, (0xFFFF, [0x87]), id="v5-with-reason-string"),
]


@pytest.mark.parametrize(("data", "v5", "expected"), SUBACKS)
def test_suback(data: str, v5: bool, expected: tuple[int, list[int]]) -> None:
    assert mp.suback(h(data), v5) == expected


@pytest.mark.parametrize("v5", [False, True], ids=["v3", "v5"])
@pytest.mark.parametrize("data", ["", "00", "00 07"])
def test_suback_too_short(data: str, v5: bool) -> None:
    with pytest.raises(ProtocolError, match="SUBACK too short"):
        mp.suback(h(data), v5)


def test_suback_v5_with_properties_past_the_packet() -> None:
    with pytest.raises(ProtocolError, match="past the packet"):
        mp.suback(h("00 07 09 1f"), v5=True)


@pytest.mark.parametrize(("data", "expected"), [("00 01", 1), ("12 34", 0x1234), ("ff ff 00", 0xFFFF)])
def test_packet_id(data: str, expected: int) -> None:
    assert mp.packet_id(h(data)) == expected


@pytest.mark.parametrize("data", ["", "01"])
def test_packet_id_missing(data: str) -> None:
    with pytest.raises(ProtocolError, match="packet identifier missing"):
        mp.packet_id(h(data))


def test_framed_suback_and_puback_bodies_parse() -> None:
    """What the transport does: frame, then parse the Control body."""
    suback, puback = Framer(True).feed(h("90 04 00 05 00 01") + mp.puback(9))
    assert isinstance(suback, Control)
    assert isinstance(puback, Control)
    assert mp.suback(suback.body, v5=True) == (5, [1])
    assert mp.packet_id(puback.body) == 9

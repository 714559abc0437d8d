"""Time on air against the Semtech formula (SX1276 datasheet 4.1.1.7 / AN1200.13)."""

from __future__ import annotations

import pytest

from station.mesh.airtime import PRESETS, ModemPreset, airtime_seconds, parse_preset


def test_long_fast_10_bytes() -> None:
    # SF11, 250 kHz, CR 4/5, 16-symbol preamble, explicit header, CRC, no LDRO (8.192 ms
    # symbols): preamble 20.25 x 8.192 ms = 165.9 ms + 18 payload symbols = 147.5 ms,
    # 313.3 ms in all - the same figure Semtech's LoRa calculator gives.
    assert airtime_seconds(10, ModemPreset.LONG_FAST) == pytest.approx(0.3133, abs=0.001)
    assert 0.3 <= airtime_seconds(10, "LONG_FAST") <= 0.4


def test_short_fast_10_bytes() -> None:
    # SF7, 250 kHz, CR 4/5: 0.512 ms symbols; 20.25 preamble + 28 payload symbols = 24.7 ms
    assert airtime_seconds(10, ModemPreset.SHORT_FAST) == pytest.approx(0.0247, abs=0.0005)
    assert airtime_seconds(10, "SHORT_FAST") < airtime_seconds(10, "LONG_FAST") / 10


def test_longer_payload_takes_longer() -> None:
    times = [airtime_seconds(n, ModemPreset.LONG_FAST) for n in (0, 16, 64, 128, 255)]
    assert times == sorted(times)
    assert times[-1] > 1.0  # a full frame on LongFast is over a second


def test_low_data_rate_optimisation_above_16_ms_symbols() -> None:
    assert PRESETS[ModemPreset.LONG_SLOW].low_data_rate_optimize  # SF12/125 kHz: 32.8 ms
    assert PRESETS[ModemPreset.LONG_MODERATE].low_data_rate_optimize  # SF11/125 kHz: 16.4 ms
    assert not PRESETS[ModemPreset.LONG_FAST].low_data_rate_optimize
    # LONG_SLOW 10 bytes: 32.768 ms symbols, 20.25 + 24 symbols = 1.45 s
    assert airtime_seconds(10, ModemPreset.LONG_SLOW) == pytest.approx(1.450, abs=0.002)


def test_every_preset_has_parameters() -> None:
    assert set(PRESETS) == set(ModemPreset)


@pytest.mark.parametrize("name", ["LONG_FAST", "long_fast", "long-fast", "LongFast"])
def test_preset_names(name: str) -> None:
    assert parse_preset(name) is ModemPreset.LONG_FAST


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown modem preset"):
        airtime_seconds(10, "LONG_FASTER")
    with pytest.raises(ValueError, match="outside"):
        airtime_seconds(256, ModemPreset.LONG_FAST)

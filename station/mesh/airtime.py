"""LoRa time-on-air for Meshtastic modem presets.

Owns the preset table (spreading factor, bandwidth, coding rate as the firmware's
`settingsForPreset` sets them for non-2.4 GHz regions) and the Semtech time-on-air
formula (SX1276 datasheet section 4.1.1.7 / AN1200.13). Pure and dependency-free: the
station's outbox and the radio simulator both import it, so it must not import
protobufs, do I/O or keep state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

PREAMBLE_SYMBOLS = 16  # Meshtastic firmware sets a 16-symbol preamble on every preset
MESH_HEADER_BYTES = 16  # the unencrypted Meshtastic PacketHeader in front of every payload
MAX_PHY_PAYLOAD_BYTES = 255  # a LoRa frame's length field is one byte
LOW_DATA_RATE_SYMBOL_S = 0.016  # Semtech requires low data rate optimisation above 16 ms/symbol
_EXPLICIT_HEADER = True  # Meshtastic always sends the LoRa PHY header
_CRC_ON = True  # and a payload CRC


class ModemPreset(StrEnum):
    """Meshtastic modem presets; values are the protobuf enum names."""

    LONG_FAST = "LONG_FAST"
    LONG_SLOW = "LONG_SLOW"
    VERY_LONG_SLOW = "VERY_LONG_SLOW"
    MEDIUM_SLOW = "MEDIUM_SLOW"
    MEDIUM_FAST = "MEDIUM_FAST"
    SHORT_SLOW = "SHORT_SLOW"
    SHORT_FAST = "SHORT_FAST"
    LONG_MODERATE = "LONG_MODERATE"
    SHORT_TURBO = "SHORT_TURBO"
    LONG_TURBO = "LONG_TURBO"
    LITE_FAST = "LITE_FAST"
    LITE_SLOW = "LITE_SLOW"
    NARROW_FAST = "NARROW_FAST"
    NARROW_SLOW = "NARROW_SLOW"


@dataclass(frozen=True, slots=True)
class PresetParams:
    spreading_factor: int  # 7..12
    bandwidth_hz: float
    coding_rate: int  # denominator of 4/x: 5..8
    channel_name: str  # the name firmware gives an unnamed primary channel on this preset

    @property
    def symbol_seconds(self) -> float:
        return float(2**self.spreading_factor) / self.bandwidth_hz

    @property
    def low_data_rate_optimize(self) -> bool:
        return self.symbol_seconds > LOW_DATA_RATE_SYMBOL_S


PRESETS: dict[ModemPreset, PresetParams] = {
    ModemPreset.SHORT_TURBO: PresetParams(7, 500_000, 5, "ShortTurbo"),
    ModemPreset.SHORT_FAST: PresetParams(7, 250_000, 5, "ShortFast"),
    ModemPreset.SHORT_SLOW: PresetParams(8, 250_000, 5, "ShortSlow"),
    ModemPreset.MEDIUM_FAST: PresetParams(9, 250_000, 5, "MediumFast"),
    ModemPreset.MEDIUM_SLOW: PresetParams(10, 250_000, 5, "MediumSlow"),
    ModemPreset.LONG_TURBO: PresetParams(11, 500_000, 8, "LongTurbo"),
    ModemPreset.LONG_FAST: PresetParams(11, 250_000, 5, "LongFast"),
    ModemPreset.LONG_MODERATE: PresetParams(11, 125_000, 8, "LongMod"),
    ModemPreset.LONG_SLOW: PresetParams(12, 125_000, 8, "LongSlow"),
    ModemPreset.VERY_LONG_SLOW: PresetParams(12, 62_500, 8, "VLongSlow"),
    ModemPreset.LITE_FAST: PresetParams(9, 125_000, 5, "LiteFast"),
    ModemPreset.LITE_SLOW: PresetParams(10, 125_000, 5, "LiteSlow"),
    ModemPreset.NARROW_FAST: PresetParams(7, 62_500, 6, "NarrowFast"),
    ModemPreset.NARROW_SLOW: PresetParams(8, 62_500, 6, "NarrowSlow"),
}


def parse_preset(name: ModemPreset | str) -> ModemPreset:
    """'LONG_FAST', 'long_fast', 'long-fast' or 'LongFast' -> ModemPreset.LONG_FAST."""
    if isinstance(name, ModemPreset):
        return name
    wanted = name.strip().upper().replace("-", "_")
    for preset, params in PRESETS.items():
        if wanted in (preset.value, params.channel_name.upper()):
            return preset
    choices = ", ".join(preset.value for preset in ModemPreset)
    raise ValueError(f"unknown modem preset {name!r}; choose one of {choices}")


def airtime_seconds(payload_bytes: int, preset: ModemPreset | str) -> float:
    """Time on air of a LoRa frame carrying `payload_bytes` PHY payload bytes.

    For a Meshtastic packet pass MESH_HEADER_BYTES + the encoded `Data` length.
    Preamble of PREAMBLE_SYMBOLS, explicit header, CRC on, low data rate
    optimisation when a symbol lasts longer than 16 ms.
    """
    if not 0 <= payload_bytes <= MAX_PHY_PAYLOAD_BYTES:
        raise ValueError(f"payload of {payload_bytes} bytes is outside 0..{MAX_PHY_PAYLOAD_BYTES}")
    params = PRESETS[parse_preset(preset)]
    sf = params.spreading_factor
    symbol = params.symbol_seconds
    ldro = 1 if params.low_data_rate_optimize else 0
    implicit = 0 if _EXPLICIT_HEADER else 1
    crc = 1 if _CRC_ON else 0
    preamble = (PREAMBLE_SYMBOLS + 4.25) * symbol
    bits = 8 * payload_bytes - 4 * sf + 28 + 16 * crc - 20 * implicit
    blocks = max(math.ceil(bits / (4 * (sf - 2 * ldro))), 0)
    payload_symbols = 8 + blocks * params.coding_rate  # (CR + 4) with CR = coding_rate - 4
    return preamble + payload_symbols * symbol

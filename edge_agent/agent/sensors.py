"""Sensors a board reads for telemetry, heartbeats and the read_sensor command.

Names: "temperature" (degrees C, float) and "battery" (millivolts, int). On a board they
come from the hardware (the MCU's temperature sensor, an ADC pin behind a divider);
where the port has no ADC (the unix port, CPython) they are simulated: values drift
from a seed with a xorshift32 generator, so MicroPython and CPython agents given the
same seed report the same series. Owns readings only; when to send them is runtime.py's.
"""

from edge_agent.agent import _port

try:  # noqa: SIM105 - MicroPython has no contextlib.suppress
    from typing import Any
except ImportError:  # MicroPython has no typing module and never evaluates annotations
    pass

SENSOR_NAMES = ("temperature", "battery")
SIM_BATTERY_FULL_MV = 4200  # a charged Li-ion cell
SIM_BATTERY_EMPTY_MV = 3300  # where a real board browns out; the simulated one "recharges"
ADC_REFERENCE_MV = 3300  # rp2040 and esp32 (11 dB attenuation) full-scale, near enough for a gauge
RP2040_TEMP_ADC = 4  # the rp2040's internal temperature sensor channel


class SensorError(Exception):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"sensor {name}: {reason}")
        self.name = name
        self.reason = reason


class SimulatedSensors:
    """A temperature and a battery that drift one step per reading, from `seed`."""

    def __init__(self, seed: int) -> None:
        self._state = (seed * 2654435761 + 1) & 0xFFFFFFFF or 1
        self._temperature_c10 = 180 + self._next() % 80  # tenths of a degree: 18.0 .. 25.9 C
        self._battery_mv = SIM_BATTERY_FULL_MV - self._next() % 100

    def _next(self) -> int:
        x = self._state
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self._state = x
        return x

    def read(self, name: str) -> Any:
        if name == "temperature":
            self._temperature_c10 += self._next() % 5 - 2  # -0.2 .. +0.2 C a step
            return self._temperature_c10 / 10
        if name == "battery":
            self._battery_mv -= self._next() % 4  # slowly discharging
            if self._battery_mv < SIM_BATTERY_EMPTY_MV:
                self._battery_mv = SIM_BATTERY_FULL_MV
            return self._battery_mv
        raise SensorError(name, "unknown sensor")


class BoardSensors:
    """The MCU's temperature and an ADC battery gauge, through `machine` (untested here:
    written to the MicroPython esp32 and rp2 APIs)."""

    def __init__(self, machine: Any, options: dict[str, Any]) -> None:
        self._machine = machine
        self._options = options

    def read(self, name: str) -> Any:
        if name == "temperature":
            esp32 = _port.optional_module("esp32")
            if esp32 is not None and hasattr(esp32, "mcu_temperature"):
                return float(esp32.mcu_temperature())
            volts = self._machine.ADC(RP2040_TEMP_ADC).read_u16() * 3.3 / 65535
            return round(27 - (volts - 0.706) / 0.001721, 1)  # RP2040 datasheet, section 4.9.5
        if name == "battery":
            pin = self._options.get("battery_adc_pin")
            if pin is None:
                raise SensorError(name, "no battery_adc_pin in the profile")
            raw = self._machine.ADC(self._machine.Pin(int(pin))).read_u16()
            return int(raw * ADC_REFERENCE_MV * float(self._options.get("battery_divider", 2.0)) / 65535)
        raise SensorError(name, "unknown sensor")


class Sensors:
    """The configured sensors of this board, hardware or simulated."""

    def __init__(self, names: list[str], options: dict[str, Any]) -> None:
        for name in names:
            if name not in SENSOR_NAMES:
                raise SensorError(name, "unknown sensor")
        self.names = list(names)
        machine = _port.MACHINE
        self.simulated = machine is None or not hasattr(machine, "ADC")
        if self.simulated:
            self._source: Any = SimulatedSensors(int(options.get("sensor_seed", 1)))
        else:
            self._source = BoardSensors(machine, options)

    def read(self, name: str) -> Any:
        if name not in self.names:
            raise SensorError(name, "not configured on this board")
        return self._source.read(name)

    def read_all(self) -> dict[str, Any]:
        return {name: self.read(name) for name in self.names}

    def battery_mv(self) -> int | None:
        """For heartbeats: None when the board has no battery gauge (mains power)."""
        if "battery" not in self.names:
            return None
        try:
            return int(self.read("battery"))
        except (SensorError, OSError):
            return None

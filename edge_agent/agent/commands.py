"""The station's commands (protocol COMMAND_NAMES): read_config, write_config, reboot,
run (a named handler from the profile) and read_sensor; each answered by one `result`.

Owns argument checks and the answers. It changes the shared options dict in place on
write_config (the runtime's tasks read it on every tick) and only *requests* a reboot:
the runtime sends the result first, then resets the board.
"""

from edge_agent.agent import config
from edge_agent.agent.handlers import HandlerError
from edge_agent.agent.sensors import SensorError
from edge_agent.agent.storage import StorageError
from edge_agent.protocol import COMMAND_NAMES, RESULT, make

try:
    from collections.abc import Callable
    from typing import Any
except ImportError:  # MicroPython has no typing module and never evaluates annotations
    pass

ERROR_TEXT_LIMIT = 120  # result.error is for a person reading the station's log, not a traceback


class CommandError(Exception):
    """A command the board refuses; the text goes back in result.error."""


class Commands:
    def __init__(self, options: dict[str, Any], profile_agent: dict[str, Any], storage: Any,
                 sensors: Any, handlers: dict[str, Callable[[dict[str, Any]], Any]]) -> None:
        self.options = options
        self._profile_agent = profile_agent
        self._storage = storage
        self._sensors = sensors
        self._handlers = handlers
        self.reboot_requested = False
        self.handled = 0
        self.refused = 0

    async def handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        """The `result` for a `command` message; never raises for a bad command."""
        command_id = msg["id"]
        args = msg.get("args", {})
        try:
            value = await self._dispatch(msg["cmd"], args)
        except (CommandError, config.ConfigError, SensorError, HandlerError, StorageError, OSError) as exc:
            self.refused += 1
            return make(RESULT, id=command_id, ok=False, error=str(exc)[:ERROR_TEXT_LIMIT])
        self.handled += 1
        if value is None:
            return make(RESULT, id=command_id, ok=True)
        return make(RESULT, id=command_id, ok=True, value=value)

    async def _dispatch(self, name: str, args: dict[str, Any]) -> Any:
        if name not in COMMAND_NAMES:
            raise CommandError(f"unknown command {name!r}")
        if name == "read_config":
            return config.public(self.options)
        if name == "write_config":
            return self._write_config(args)
        if name == "reboot":
            self.reboot_requested = True
            return None
        if name == "read_sensor":
            return self._read_sensor(args)
        return await self._run(args)

    def _write_config(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Merge `changes` into the stored overrides, persist them, apply them."""
        if not changes:
            raise CommandError("write_config needs args: the options to change")
        overrides = config.apply_changes(self._storage.load_config(), self._profile_agent, changes)
        self._storage.save_config(overrides)
        merged = config.merge(self._profile_agent, overrides)
        self.options.clear()
        self.options.update(merged)
        return config.public(self.options)

    def _read_sensor(self, args: dict[str, Any]) -> Any:
        name = args.get("name")
        if name is None:
            return self._sensors.read_all()
        if not isinstance(name, str):
            raise CommandError("read_sensor: name must be text")
        return self._sensors.read(name)

    async def _run(self, args: dict[str, Any]) -> Any:
        name = args.get("name")
        handler = self._handlers.get(name) if isinstance(name, str) else None
        if handler is None:
            raise CommandError(f"run: no handler named {name!r} (known: {', '.join(sorted(self._handlers))})")
        handler_args = args.get("args", {})
        if not isinstance(handler_args, dict):
            raise CommandError("run: args must be a map")
        try:
            value = handler(handler_args)
            if hasattr(value, "send"):  # a coroutine (a generator on MicroPython): await it
                value = await value
        except HandlerError:
            raise
        except Exception as exc:  # a handler's bug is contained: the agent keeps running
            raise HandlerError(str(name), f"failed: {exc!r}") from None
        return value

"""Keyword bots: a received mesh text that matches a bot's pattern fires the bot
(BotTriggerFired, which bot_trigger_fired triggers listen to) and, if the bot has a reply,
answers the sender through the outbox.

Owns bot matching only; what a bot does beyond its reply is up to processes.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from station.bus import EventBus
from station.config import BotConfig
from station.mesh.events import MeshMessageReceived
from station.mesh.outbox import SendRequest
from station.processes.events import BotTriggerFired

logger = logging.getLogger(__name__)

MATCHED_TEXT_LIMIT = 1024  # bots look at the start of a text only: bounded regex work per packet


class Bots:
    def __init__(self, bots: list[BotConfig], bus: EventBus, mesh: Any) -> None:
        self._bots = [(bot, re.compile(bot.pattern)) for bot in bots]
        self._bus = bus
        self._mesh = mesh

    def attach(self) -> Any:
        return self._bus.subscribe(MeshMessageReceived, self._heard)

    def _heard(self, event: MeshMessageReceived) -> None:
        text = event.text[:MATCHED_TEXT_LIMIT]
        for bot, pattern in self._bots:
            match = pattern.search(text)
            if match is None:
                continue
            self._bus.publish(BotTriggerFired(bot=bot.name, source="mesh", input={
                "text": event.text, "from_node": event.from_node, "channel": event.channel,
                "groups": list(match.groups())}))
            if bot.reply:
                key = f"bot:{bot.name}:{event.radio}:{event.from_node}:{event.packet_id}"
                self._mesh.send([SendRequest(bot.reply, event.from_node, event.channel, want_ack=False,
                                             idempotency_key=key)])
            logger.info("bot fired", extra={"bot": bot.name, "node": event.from_node})

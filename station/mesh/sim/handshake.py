"""The answer to `ToRadio.want_config_id`: what a radio tells a client that connects.

Owns the order and content of the config download (my_info, node DB, metadata, config,
channels, config_complete_id). Builds messages only; the radio decides when to send.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from meshtastic.protobuf import channel_pb2, config_pb2, mesh_pb2

from station.mesh.airtime import PRESETS, ModemPreset
from station.mesh.sim import packets
from station.mesh.sim.nodes import SimNode

ONLY_CONFIG_NONCE = 69420  # firmware's SPECIAL_NONCE_ONLY_CONFIG: skip the other nodes
ONLY_NODES_NONCE = 69421  # firmware's SPECIAL_NONCE_ONLY_NODES: skip config and channels
CHANNEL_SLOTS = 8
FIRMWARE_VERSION = "2.7.0.firefly-sim"
MIN_APP_VERSION = 30200
DEVICE_STATE_VERSION = 24
DEFAULT_PSK = b"\x01"  # "use the well-known default key": what a fresh radio has


def config_sequence(
    nonce: int,
    local: SimNode,
    nodes: Sequence[SimNode],
    now: float,
    preset: ModemPreset,
    secondary_channels: Sequence[str],
) -> list[Any]:
    """The FromRadio messages, in firmware order, ending with config_complete_id = nonce."""
    out: list[Any] = [
        mesh_pb2.FromRadio(
            my_info=mesh_pb2.MyNodeInfo(
                my_node_num=local.num,
                min_app_version=MIN_APP_VERSION,
                nodedb_count=len(nodes) + 1,
            )
        ),
        mesh_pb2.FromRadio(node_info=packets.node_info(local, now, local=True)),
    ]
    if nonce != ONLY_CONFIG_NONCE:
        out += [mesh_pb2.FromRadio(node_info=packets.node_info(n, now)) for n in nodes]
    if nonce != ONLY_NODES_NONCE:
        out.append(mesh_pb2.FromRadio(metadata=_metadata(local)))
        out += [mesh_pb2.FromRadio(config=config) for config in _configs(preset)]
        out += [mesh_pb2.FromRadio(channel=ch) for ch in _channels(preset, secondary_channels)]
    out.append(mesh_pb2.FromRadio(config_complete_id=nonce))
    return out


def _metadata(local: SimNode) -> Any:
    return mesh_pb2.DeviceMetadata(
        firmware_version=FIRMWARE_VERSION,
        device_state_version=DEVICE_STATE_VERSION,
        hasWifi=True,
        hw_model=mesh_pb2.HardwareModel.Value(local.hw_model),
    )


def _configs(preset: ModemPreset) -> list[Any]:
    lora = config_pb2.Config.LoRaConfig(
        use_preset=True,
        modem_preset=config_pb2.Config.LoRaConfig.ModemPreset.Value(preset.value),
        region=config_pb2.Config.LoRaConfig.RegionCode.Value("EU_868"),
        hop_limit=packets.HOP_LIMIT,
        tx_enabled=True,
        tx_power=27,
    )
    device = config_pb2.Config.DeviceConfig(
        role=config_pb2.Config.DeviceConfig.Role.Value("CLIENT"),
        serial_enabled=True,
        node_info_broadcast_secs=10800,
    )
    position = config_pb2.Config.PositionConfig(position_broadcast_secs=900)
    return [
        config_pb2.Config(device=device),
        config_pb2.Config(position=position),
        config_pb2.Config(lora=lora),
    ]


def _channels(preset: ModemPreset, secondary: Sequence[str]) -> list[Any]:
    role = channel_pb2.Channel.Role
    channels = [
        channel_pb2.Channel(
            index=0,
            role=role.Value("PRIMARY"),
            settings=channel_pb2.ChannelSettings(name=PRESETS[preset].channel_name, psk=DEFAULT_PSK),
        )
    ]
    for index in range(1, CHANNEL_SLOTS):
        channel = channel_pb2.Channel(index=index, role=role.Value("DISABLED"))
        if index <= len(secondary):
            channel.role = role.Value("SECONDARY")
            channel.settings.name = secondary[index - 1]
            channel.settings.psk = DEFAULT_PSK
        channels.append(channel)
    return channels

"""The simulated nodes: who they are (deterministic from the seed) and where they are.

Owns node identity (numbers, names, hardware), positions and their random walk, battery
and link quality. Pure state and arithmetic: no protobufs, no clock reads (callers pass
`now`), no asyncio.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

AREA_RADIUS_M = 2000.0  # nodes start within this distance of the centre and stay near it
WALK_STEP_M = 4.0  # standard deviation of one random-walk step: a person strolling
HOP_DISTANCE_M = 700.0  # beyond this a packet needs one more relay to reach us
MAX_HOPS = 2  # stays below the hop limit of 3 so every node is reachable
METRES_PER_DEGREE = 111_320.0
NODE_NUM_MIN = 0x10000000  # keep clear of firmware's reserved low numbers
NODE_NUM_MAX = 0xFFFFFFF0  # and of the broadcast address

_ADJECTIVES = (
    "Amber", "Birch", "Cedar", "Dusk", "Ember", "Fern", "Granite", "Hazel", "Iris", "Juniper",
    "Kestrel", "Lichen", "Moss", "Nettle", "Oak", "Pine", "Quartz", "Rowan", "Sage", "Thistle",
)  # fmt: skip
_ANIMALS = (
    "Badger", "Crane", "Deer", "Eagle", "Fox", "Grouse", "Heron", "Ibex", "Jay", "Kite",
    "Lynx", "Marmot", "Newt", "Otter", "Pika", "Quail", "Raven", "Stoat", "Toad", "Vole",
)  # fmt: skip
HARDWARE = (
    "TBEAM", "HELTEC_V3", "T_ECHO", "RAK4631", "TLORA_T3_S3", "STATION_G2",
    "HELTEC_WIRELESS_TRACKER", "T_DECK",
)  # fmt: skip
LOCAL_LONG_NAME = "Firefly Sim Radio"
LOCAL_SHORT_NAME = "FFSR"
LOCAL_HARDWARE = "PORTDUINO"  # what firmware built for Linux reports


@dataclass(slots=True)
class SimNode:
    num: int
    long_name: str
    short_name: str
    hw_model: str  # HardwareModel enum name
    lat: float
    lon: float
    altitude_m: int
    boot_time: float
    battery_level: int = 100  # percent
    hops: int = 0  # relays between this node and ours
    snr: float = 10.0
    rssi: int = -60
    last_heard: float = 0.0
    channel_utilization: float = 0.0  # percent of airtime this node hears in use
    air_util_tx: float = 0.0  # percent of the last hour this node transmitted

    @property
    def node_id(self) -> str:
        return f"!{self.num:08x}"

    @property
    def voltage(self) -> float:
        return round(3.3 + 0.9 * self.battery_level / 100, 3)  # a LiPo between 3.3 and 4.2 V


def make_local_node(seed: int, lat: float, lon: float, now: float) -> SimNode:
    rng = random.Random(f"local-{seed}")
    return SimNode(
        num=rng.randrange(NODE_NUM_MIN, NODE_NUM_MAX),
        long_name=LOCAL_LONG_NAME,
        short_name=LOCAL_SHORT_NAME,
        hw_model=LOCAL_HARDWARE,
        lat=lat,
        lon=lon,
        altitude_m=500,
        boot_time=now,
    )


def make_nodes(seed: int, count: int, lat: float, lon: float, now: float, taken: set[int]) -> list[SimNode]:
    """`count` nodes whose identity and start position depend only on the seed."""
    rng = random.Random(f"nodes-{seed}")
    names = [(a, b) for a in _ADJECTIVES for b in _ANIMALS]
    rng.shuffle(names)
    nodes: list[SimNode] = []
    used = set(taken)
    for index in range(count):
        num = rng.randrange(NODE_NUM_MIN, NODE_NUM_MAX)
        while num in used:
            num = rng.randrange(NODE_NUM_MIN, NODE_NUM_MAX)
        used.add(num)
        adjective, animal = names[index % len(names)]
        distance = AREA_RADIUS_M * math.sqrt(rng.random())  # uniform over the disc
        bearing = rng.uniform(0, 2 * math.pi)
        node = SimNode(
            num=num,
            long_name=f"{adjective} {animal}",
            short_name=(adjective[:2] + animal[:2]),
            hw_model=HARDWARE[rng.randrange(len(HARDWARE))],
            lat=lat,
            lon=lon,
            altitude_m=rng.randint(400, 900),
            boot_time=now - rng.uniform(600, 86400),
            battery_level=rng.randint(40, 100),
            last_heard=now - rng.uniform(0, 900),  # heard within the last quarter hour
        )
        move_by(node, distance * math.cos(bearing), distance * math.sin(bearing))
        update_link(node, lat, lon, rng)
        nodes.append(node)
    return nodes


def move_by(node: SimNode, north_m: float, east_m: float) -> None:
    node.lat += north_m / METRES_PER_DEGREE
    node.lon += east_m / (METRES_PER_DEGREE * max(math.cos(math.radians(node.lat)), 0.01))


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Equirectangular distance: exact enough over a few kilometres."""
    north = (lat2 - lat1) * METRES_PER_DEGREE
    east = (lon2 - lon1) * METRES_PER_DEGREE * math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot(north, east)


def random_walk(node: SimNode, centre_lat: float, centre_lon: float, rng: random.Random) -> None:
    """One step of a few metres; a node past the area's edge drifts back toward the centre."""
    north, east = rng.gauss(0, WALK_STEP_M), rng.gauss(0, WALK_STEP_M)
    away = distance_m(centre_lat, centre_lon, node.lat, node.lon)
    if away > AREA_RADIUS_M:
        north -= (node.lat - centre_lat) * METRES_PER_DEGREE * WALK_STEP_M / away
        east -= (
            (node.lon - centre_lon)
            * METRES_PER_DEGREE
            * math.cos(math.radians(node.lat))
            * WALK_STEP_M
            / away
        )
    move_by(node, north, east)
    update_link(node, centre_lat, centre_lon, rng)


def update_link(node: SimNode, centre_lat: float, centre_lon: float, rng: random.Random) -> None:
    """Hops, SNR and RSSI as our radio (at the centre) would see this node's packets."""
    away = distance_m(centre_lat, centre_lon, node.lat, node.lon)
    node.hops = min(MAX_HOPS, int(away // HOP_DISTANCE_M))
    last_leg = away - node.hops * HOP_DISTANCE_M  # the relay nearest us is this far away
    node.snr = round(max(-20.0, min(12.0, 12.0 - last_leg / 60 + rng.gauss(0, 1))), 2)
    node.rssi = round(max(-125.0, min(-30.0, -45.0 - last_leg / 12 + rng.gauss(0, 2))))


def tick_metrics(node: SimNode, rng: random.Random) -> None:
    """Advance the numbers a telemetry report carries."""
    node.battery_level -= rng.choice((0, 0, 1))
    if node.battery_level < 10:  # someone swapped the battery
        node.battery_level = 100
    node.channel_utilization = round(rng.uniform(2.0, 18.0), 2)
    node.air_util_tx = round(rng.uniform(0.1, 2.5), 3)

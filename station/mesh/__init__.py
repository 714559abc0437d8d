"""The Meshtastic mesh subsystem."""

from station.mesh._deferred import defer_unused_imports

defer_unused_imports()  # before anything below imports meshtastic

"""The Meshtastic mesh subsystem."""

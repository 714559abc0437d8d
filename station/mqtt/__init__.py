"""The station's MQTT client for automation: mqtt_message triggers and mqtt_publish actions."""

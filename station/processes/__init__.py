"""The process engine: automation rules (trigger -> conditions -> actions) run by the station."""

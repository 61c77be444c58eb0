"""Notifiers: turn Alertmanager's notifications into the messages of channels it cannot talk to itself."""

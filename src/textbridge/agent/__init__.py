"""``textbridge agent``: a device that speaks the SMSGate device protocol, as the Android app
does, for GSM modems, Termux and tests.

``core`` is the protocol side (register, listen, pull, report, post received SMS);
``backend`` says what a sender must do and holds the simulated one; ``modem`` drives a serial
GSM modem with AT commands; ``termux`` uses the Termux:API commands on Android.
"""

from textbridge.agent.backend import Backend, Incoming, SimulatedBackend
from textbridge.agent.core import Agent

__all__ = ["Agent", "Backend", "Incoming", "SimulatedBackend"]
